"""Does OpenVINO's CPU plugin really run this graph? Convert it and ask the plugin.

`Core.read_model` on the exported ONNX is OpenVINO's real conversion (its ONNX frontend); an op it cannot convert
fails there, with the op named. `Core.query_model(model, "CPU")` then lists every converted op the CPU plugin
supports, so an op that converts but has no CPU implementation is named too.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

from ..schemas.graph import OpenvinoCheck


def check_openvino_cpu(path: Path) -> OpenvinoCheck | None:
    """None when openvino is not installed here (the report then says the runtime was not checked)."""
    try:
        import openvino as ov
    except ImportError:
        return None
    version = ov.__version__.split("-")[0]
    machine = f"{platform.machine()} {platform.system()}"
    core = ov.Core()
    try:
        model = core.read_model(os.fspath(path))
    except Exception as exc:  # noqa: BLE001 - the frontend's message names the op it could not convert
        return OpenvinoCheck(openvino_version=version, converted=False, error=" ".join(str(exc).split())[:400],
                             machine=machine)
    ops = model.get_ordered_ops()
    try:
        supported = core.query_model(model, "CPU")
    except Exception as exc:  # noqa: BLE001
        return OpenvinoCheck(openvino_version=version, converted=True, error=" ".join(str(exc).split())[:400],
                             op_types=len({o.get_type_name() for o in ops}), machine=machine)
    missing = sorted({o.get_type_name() for o in ops if o.get_friendly_name() not in supported
                      and o.get_type_name() not in ("Parameter", "Result", "Constant")})
    return OpenvinoCheck(openvino_version=version, converted=True, ops_not_on_cpu=missing,
                         op_types=len({o.get_type_name() for o in ops}), nodes=len(ops), machine=machine)
