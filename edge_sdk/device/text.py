"""Raw text → model inputs with the bundle's own tokenizer (tokenizer/tokenizer.json), when `tokenizers` is here.

The `tokenizers` package (Hugging Face's Rust tokenizer, no torch/transformers needed) is optional on a device:
without it, callers pass token arrays (input_ids, attention_mask) they made elsewhere.
"""

import sys

from .errors import EXIT_BAD_INPUT, EXIT_RUNTIME, DeviceError
from .integrity import verify_file

DEFAULT_MAX_LENGTH = 512


class TextEncoder(object):
    """Pads a batch to its longest text and truncates to `max_length` (the plan's seq_len by default)."""

    def __init__(self, bundle, manifest, max_length=None):
        rel = (manifest.get("preprocessing") or {}).get("tokenizer")
        if not rel:
            raise DeviceError("this bundle has no tokenizer (manifest.json: preprocessing.tokenizer); pass token "
                              "arrays (input_ids, attention_mask) instead of text", EXIT_BAD_INPUT)
        rel = rel.rstrip("/") + "/tokenizer.json"
        if rel not in manifest["files"]:
            raise DeviceError("this bundle's tokenizer has no %s; pass token arrays (input_ids, attention_mask) "
                              "instead of text" % rel, EXIT_BAD_INPUT)
        path = verify_file(bundle, manifest, rel)
        try:
            from tokenizers import Tokenizer
        except ImportError:
            raise DeviceError("raw text needs the 'tokenizers' package, which %s cannot import: install it with "
                              "'python3 -m pip install tokenizers', or pass token arrays (input_ids, "
                              "attention_mask) instead of text" % sys.executable, EXIT_RUNTIME)
        plan = manifest.get("plan") if isinstance(manifest.get("plan"), dict) else {}
        self.max_length = int(max_length or plan.get("seq_len") or DEFAULT_MAX_LENGTH)
        tok = Tokenizer.from_file(path)
        pad_token = next((t for t in ("[PAD]", "<pad>") if tok.token_to_id(t) is not None), None)
        pad_id = tok.token_to_id(pad_token) if pad_token else 0
        tok.enable_padding(pad_id=pad_id, pad_token=pad_token or "[PAD]")
        tok.enable_truncation(max_length=self.max_length)
        self.tokenizer = tok

    def __call__(self, texts):
        """{"input_ids", "attention_mask", "token_type_ids"}: int64 arrays of shape (len(texts), longest)."""
        import numpy as np

        encs = self.tokenizer.encode_batch(list(texts))
        return {"input_ids": np.array([e.ids for e in encs], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in encs], dtype=np.int64),
                "token_type_ids": np.array([e.type_ids for e in encs], dtype=np.int64)}
