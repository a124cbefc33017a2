"""`edge-sdk predict BUNDLE`: run a bundle's model here on text or arrays, through the bundle's device API
(edge_sdk.device, the package every bundle ships as `edge_device/`), in-process."""

from __future__ import annotations

from typing import Optional

import typer

from ._common import JsonOpt, app, user_errors


@app.command("predict")
@user_errors
def predict_cmd(bundle: str = typer.Argument(..., help="Bundle directory or .edgepkg archive"),
                text: Optional[list[str]] = typer.Option(None, "--text", help="A text to run (repeat for a batch)"),
                npz: Optional[str] = typer.Option(None, "--npz", help=".npz of input arrays by input name"),
                threads: Optional[int] = typer.Option(None, "--threads", help="Runtime CPU threads"),
                max_new_tokens: int = typer.Option(32, "--max-new-tokens", min=1,
                                                   help="Decoder bundles: tokens generated per prompt at most"),
                as_json: bool = JsonOpt) -> None:
    """Labels (classifiers), embeddings (encoders), greedy continuations (decoders) or raw outputs of a bundle's
    model for the given inputs."""
    import json
    import tempfile
    from contextlib import ExitStack
    from pathlib import Path

    from ..device import predict as device_predict
    from ..device.errors import EXIT_RUNTIME, DeviceError
    from ..errors import InputError, ToolError

    if bool(text) == (npz is not None):
        raise InputError("give the inputs as --text T (repeatable) or as --npz FILE, one of the two")
    src = Path(bundle)
    if not src.exists():
        raise InputError(f"{src}: bundle not found (expected a bundle directory or a .edgepkg archive)")
    with ExitStack() as stack:
        if src.is_file():
            from ..bundle import extract_archive

            src = extract_archive(src, Path(stack.enter_context(tempfile.TemporaryDirectory())) / "bundle")
        try:
            inputs = list(text) if text else device_predict.load_npz(npz)
            model = device_predict.Model(src, threads=threads)
            record = device_predict.prediction(model, inputs, max_new_tokens)
        except DeviceError as exc:
            raise (ToolError if exc.code == EXIT_RUNTIME else InputError)(f"{bundle}: {exc}") from None
    if as_json:
        print(json.dumps(record))
        return
    for line in device_predict.render(record, text):  # tab-separated, as the device command prints it
        typer.echo(line)
