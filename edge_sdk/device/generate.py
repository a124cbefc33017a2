"""`generate`: text in, text out with a decoder bundle (greedy), on the device.

    python3 -m edge_device generate --bundle DIR --prompt TEXT [--max-new-tokens 32]
                                    [--engine auto|onnxruntime-genai|onnxruntime] [--threads N]

One JSON object on stdout: {"text", "tokens", "prompt_tokens", "stopped" ("eos" | "max_new_tokens"), "engine",
"ttft_ms", "decode_tokens_per_s"}. Generation ends at the model's EOS token or after --max-new-tokens. Text is
tokenized by the `tokenizers` package from the bundle's tokenizer.json (without it: onnxruntime-genai's tokenizer,
engine onnxruntime-genai only); the model's BOS token is put first when it has one. Exit codes: errors.py.
"""

import json
import os
import sys

from .engines.generation import open_generator, read_genai_config
from .errors import EXIT_BAD_INPUT, EXIT_RUNTIME, DeviceError
from .integrity import choose_artifact, read_manifest, verify_decoder_dir


def add_arguments(p):
    p.add_argument("--bundle", default=".", help="bundle directory (holds manifest.json)")
    p.add_argument("--prompt", required=True, help="the text to continue")
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--engine", default="auto", choices=("auto", "onnxruntime-genai", "onnxruntime"))
    p.add_argument("--threads", type=int, help="runtime CPU threads")


def _text_codec(gen, model_dir, tokenizer_rel):
    """(encode, decode): the `tokenizers` package on tokenizer.json (the same text whatever the engine), else
    onnxruntime-genai's own tokenizer."""
    try:
        from tokenizers import Tokenizer
    except ImportError as exc:
        if gen.runtime == "onnxruntime-genai":
            import numpy as np

            tok = gen.og.Tokenizer(gen.model)
            return (lambda text: [int(x) for x in tok.encode(text)],
                    lambda ids: tok.decode(np.asarray(ids, dtype=np.int32)))
        raise DeviceError("text needs the `tokenizers` package with the onnxruntime engine (%s); install it with "
                          "'python3 -m pip install tokenizers'" % exc, EXIT_RUNTIME)
    tok = Tokenizer.from_file(os.path.join(model_dir, os.path.basename(tokenizer_rel)))
    return (lambda text: list(tok.encode(text, add_special_tokens=False).ids), lambda ids: tok.decode(ids))


class TextGenerator(object):
    """A decoder bundle loaded once (files verified, engine opened, tokenizer read); `generate` many times.
    `Model(bundle).generate(...)` (predict.py) uses it for decoder bundles."""

    def __init__(self, bundle, engine="auto", threads=None, manifest=None, artifact=None):
        self.bundle = os.path.abspath(str(bundle))
        if manifest is None:
            manifest, _ = read_manifest(self.bundle)
        art = artifact if artifact is not None else choose_artifact(manifest, None)
        dec = art.get("decoder")
        if not isinstance(dec, dict):
            raise DeviceError("%s is not a decoder bundle (its artifact %s has no `decoder` entry)"
                              % (self.bundle, art["path"]), EXIT_BAD_INPUT)
        model_dir = verify_decoder_dir(self.bundle, manifest, art)
        self.bos = read_genai_config(model_dir)["model"].get("bos_token_id")
        self.context = int(dec.get("context_length") or 0)
        self.stop = tuple(int(x) for x in (dec.get("eos_token_id") or []))
        self.engine = open_generator(model_dir, engine, art.get("provider"), threads)
        self.encode, self.decode = _text_codec(self.engine, model_dir, dec["tokenizer"])

    def generate(self, prompt, max_new_tokens=32):
        """Greedy continuation of `prompt` (text): the result object (see the module docstring)."""
        if max_new_tokens < 1:
            raise DeviceError("--max-new-tokens must be >= 1, got %d" % max_new_tokens, EXIT_BAD_INPUT)
        ids = self.encode(prompt)
        if isinstance(self.bos, int) and (not ids or ids[0] != self.bos):
            ids = [self.bos] + ids
        if self.context and len(ids) >= self.context:
            raise DeviceError("the prompt is %d tokens; the model's context is %d" % (len(ids), self.context),
                              EXIT_BAD_INPUT)
        new = min(max_new_tokens, self.context - len(ids)) if self.context else max_new_tokens
        g = self.engine.generate(ids, new, stop_ids=self.stop or (-1,))
        tokens = g.tokens[:-1] if g.tokens and g.tokens[-1] in self.stop else g.tokens
        decode_s = sum(g.decode_ms) / 1e3
        return {"text": self.decode(tokens), "tokens": tokens, "prompt_tokens": len(ids),
                "stopped": "eos" if len(tokens) < len(g.tokens) else "max_new_tokens", "engine": self.engine.runtime,
                "ttft_ms": round(g.ttft_ms, 3),
                "decode_tokens_per_s": round(len(g.decode_ms) / decode_s, 2) if decode_s > 0 else None}


def generate_text(bundle, prompt, max_new_tokens=32, engine="auto", threads=None):
    """The result object (see the module docstring)."""
    if max_new_tokens < 1:  # before the model loads, not after
        raise DeviceError("--max-new-tokens must be >= 1, got %d" % max_new_tokens, EXIT_BAD_INPUT)
    return TextGenerator(bundle, engine, threads).generate(prompt, max_new_tokens)


def run(args):
    try:
        out = generate_text(args.bundle, args.prompt, args.max_new_tokens, args.engine, args.threads)
    except DeviceError as exc:
        sys.stderr.write("edge_device generate: error: %s\n" % exc)
        return exc.code
    sys.stdout.write(json.dumps(out) + "\n")
    return 0
