"""Using a bundle, not only benchmarking it: `Model(bundle).run / embed / classify`, and the `predict` command.

    from edge_device import Model          # on the device: the package shipped in every bundle
    m = Model("/path/to/bundle")           # verifies the model file's sha256, loads it in the bundle's runtime
    m.run({"input_ids": ids, "attention_mask": mask})   # {output name: numpy array}
    m.embed(["a sentence", "another"])     # (N, D) float32, pooled the way the build's quality gate measured it
    m.classify(["great movie"])            # ["POSITIVE"], from the id2label the build shipped
    Model("/path/to/llm-bundle").generate("Once upon a time", max_new_tokens=32)   # decoder bundles: greedy text

Inputs: a dict of arrays (batch on axis 0; a single unbatched sequence is accepted; token_type_ids default to
zeros), or text (a string or a list of strings) when the `tokenizers` package is installed (see text.py).

    python3 -m edge_device predict --bundle DIR (--text T [--text T ...] | --npz FILE) [--json]
                                   [--max-new-tokens N]   (decoder bundles: each text is a prompt to continue)
"""

import os

from .engines import open_engine
from .errors import EXIT_BAD_INPUT, DeviceError
from .inputs import make_feed, match_inputs, plain_name
from .integrity import choose_artifact, read_manifest, verify_model_files

EMBEDDING_OUTPUTS = ("embeddings", "sentence_embedding", "pooler_output")


def _is_text(inputs):
    return isinstance(inputs, str) or (isinstance(inputs, (list, tuple)) and bool(inputs)
                                       and all(isinstance(t, str) for t in inputs))


class Model(object):
    """A bundle's model, loaded in its runtime (see the module docstring)."""

    def __init__(self, bundle, artifact=None, provider=None, threads=None, max_length=None):
        self.bundle = os.path.abspath(str(bundle))
        self.manifest, self.manifest_sha256 = read_manifest(self.bundle)
        self.artifact = choose_artifact(self.manifest, artifact)
        self.generator = None
        if isinstance(self.artifact.get("decoder"), dict):  # decoder LLM: generation with its KV cache
            from .generate import TextGenerator

            self.generator = TextGenerator(self.bundle, threads=threads, manifest=self.manifest,
                                           artifact=self.artifact)
            self.engine = None
            self.id2label = None
            return
        path = verify_model_files(self.bundle, self.manifest, self.artifact["path"])
        self.engine = open_engine(path, self.artifact.get("format"), provider or self.artifact.get("provider"),
                                  threads, runtime_config=self.artifact.get("runtime_config"))
        labels = self.manifest.get("id2label")
        self.id2label = dict((str(k), str(v)) for k, v in labels.items()) if isinstance(labels, dict) else None
        self._max_length = max_length
        self._text = None

    # ---- what the model takes and gives ----

    @property
    def input_names(self):
        self._encoder()
        return [s["name"] for s in self.engine.inputs]

    @property
    def output_names(self):
        self._encoder()
        return list(self.engine.output_names)

    @property
    def is_classifier(self):
        names = [plain_name(n) for n in self.output_names]
        return "logits" in names or (self.id2label is not None and not any(n in EMBEDDING_OUTPUTS for n in names))

    def tokenize(self, texts):
        """Token arrays for `texts` with the bundle's tokenizer (needs the `tokenizers` package)."""
        if self._text is None:
            from .text import TextEncoder

            self._text = TextEncoder(self.bundle, self.manifest, self._max_length)
        return self._text([texts] if isinstance(texts, str) else list(texts))

    # ---- running ----

    def generate(self, prompt, max_new_tokens=32):
        """Decoder bundles: greedy continuation of `prompt` (text) up to EOS or max_new_tokens, as
        {"text", "tokens", "prompt_tokens", "stopped", "engine", "ttft_ms", "decode_tokens_per_s"}."""
        if self.generator is None:
            raise DeviceError("generate() needs a decoder bundle; %s is an encoder (use run, embed or classify)"
                              % self.artifact["path"], EXIT_BAD_INPUT)
        return self.generator.generate(prompt, max_new_tokens)

    def _encoder(self):
        if self.engine is None:
            raise DeviceError("%s is a decoder bundle: use generate(prompt) (run, embed and classify take encoder "
                              "bundles)" % self.bundle, EXIT_BAD_INPUT)

    def _arrays(self, inputs):
        import numpy as np

        if _is_text(inputs):
            return self.tokenize(inputs)
        if not isinstance(inputs, dict) or not inputs:
            raise DeviceError("inputs must be a dict of arrays ({input name: array}) or text (a string or a list of "
                              "strings); got %s" % type(inputs).__name__, EXIT_BAD_INPUT)
        arrays = {}
        for name, value in inputs.items():
            try:
                arrays[plain_name(str(name))] = np.asarray(value)
            except Exception as exc:
                raise DeviceError("input %s: not an array (%s)" % (name, exc), EXIT_BAD_INPUT)
        return arrays

    def _feeds(self, arrays):
        """{model input name: feed}: matched by name, single sequences batched, missing token types zeroed."""
        import numpy as np

        arrays = dict(arrays)
        specs = self.engine.inputs
        wanted = [plain_name(s["name"]) for s in specs]
        if "token_type_ids" in wanted and "token_type_ids" not in arrays and "input_ids" in arrays:
            arrays["token_type_ids"] = np.zeros_like(arrays["input_ids"])
        manifest_names = [s.get("name") for s in self.artifact.get("inputs") or [] if isinstance(s, dict)]
        try:
            matched = match_inputs(specs, arrays, manifest_names)
        except DeviceError:
            raise DeviceError("the model takes inputs %s; got %s" % (", ".join(wanted), ", ".join(sorted(arrays))),
                              EXIT_BAD_INPUT)
        feeds = {}
        for s in specs:
            a = matched[s["name"]]
            if a.ndim == len(s["shape"]) - 1:  # one unbatched sequence
                a = a[None]
            if a.dtype.kind not in "biuf":
                raise DeviceError("input %s: expected numbers, got dtype %s" % (s["name"], a.dtype), EXIT_BAD_INPUT)
            feeds[s["name"]] = make_feed(a, None, s)
        rows = set(a.shape[0] for a in feeds.values())
        if len(rows) != 1:
            raise DeviceError("inputs need the same number of rows (axis 0); got %s"
                              % dict((n, list(a.shape)) for n, a in feeds.items()), EXIT_BAD_INPUT)
        return feeds

    def _forward(self, inputs):
        """(outputs {name: array}, the arrays given by plain name) — one call, or one per row for a static batch."""
        import numpy as np

        self._encoder()
        arrays = self._arrays(inputs)
        feeds = self._feeds(arrays)
        rows = next(iter(feeds.values())).shape[0]
        static = [s["shape"][0] for s in self.engine.inputs if s["shape"] and s["shape"][0]]
        if not static or static[0] == rows:
            return self.engine.run(feeds), arrays
        if static[0] != 1:
            raise DeviceError("the model has a static batch of %d; got %d rows" % (static[0], rows), EXIT_BAD_INPUT)
        parts = [self.engine.run(dict((n, a[i:i + 1]) for n, a in feeds.items())) for i in range(rows)]
        return dict((n, np.concatenate([p[n] for p in parts], axis=0)) for n in self.output_names), arrays

    def run(self, inputs):
        """{output name: numpy array} for a batch of inputs."""
        return self._forward(inputs)[0]

    def embed(self, inputs):
        """(N, D) float32 embeddings: the graph's pooled `embeddings` output (mean over real tokens, L2-normalised,
        for text encoders; CLS for vision) when it has one, else its token vectors pooled the same way here."""
        import numpy as np

        outputs, arrays = self._forward(inputs)
        by_plain = dict((plain_name(n), v) for n, v in outputs.items())
        for name in EMBEDDING_OUTPUTS:
            if name in by_plain:
                return np.asarray(by_plain[name], dtype=np.float32)
        if "logits" in by_plain:
            raise DeviceError("this bundle is a classifier (output 'logits'); use classify()", EXIT_BAD_INPUT)
        two_d = [v for v in outputs.values() if v.ndim == 2 and v.dtype.kind == "f"]
        if two_d:
            return np.asarray(two_d[0], dtype=np.float32)
        tokens = next((v for v in outputs.values() if v.ndim == 3), None)
        if tokens is None:
            raise DeviceError("no embedding output among %s" % ", ".join(self.output_names), EXIT_BAD_INPUT)
        tokens = tokens.astype(np.float32)
        mask = arrays.get("attention_mask")
        if mask is not None and "pixel_values" not in arrays:
            m = np.zeros(tokens.shape[:2], dtype=np.float32)
            n = min(mask.shape[-1], tokens.shape[1])
            m[:, :n] = np.asarray(mask, dtype=np.float32).reshape(tokens.shape[0], -1)[:, :n]
            pooled = (tokens * m[..., None]).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)[:, None]
        else:
            pooled = tokens[:, 0]
        return pooled / np.clip(np.linalg.norm(pooled, axis=-1, keepdims=True), 1e-12, None)

    def logits(self, inputs):
        """(N, classes) logits of a classifier."""
        outputs = self.run(inputs)
        by_plain = dict((plain_name(n), v) for n, v in outputs.items())
        if "logits" in by_plain:
            return by_plain["logits"]
        n = len(self.id2label or {})
        fits = [v for v in outputs.values() if v.ndim == 2 and n and v.shape[1] == n]
        if not fits:
            raise DeviceError("this bundle is not a classifier (outputs: %s); use embed() or run()"
                              % ", ".join(self.output_names), EXIT_BAD_INPUT)
        return fits[0]

    def label(self, index):
        return (self.id2label or {}).get(str(int(index)), "LABEL_%d" % int(index))

    def classify(self, inputs, scores=False):
        """The label of each row (from the build's id2label; LABEL_<i> without one); with scores=True,
        (label, softmax probability) pairs."""
        import numpy as np

        z = np.asarray(self.logits(inputs), dtype=np.float64)
        best = z.argmax(axis=1)
        labels = [self.label(i) for i in best]
        if not scores:
            return labels
        e = np.exp(z - z.max(axis=1, keepdims=True))
        p = e / e.sum(axis=1, keepdims=True)
        return [(lab, float(p[r, i])) for r, (lab, i) in enumerate(zip(labels, best))]


# ----------------------------------------------------------------------------------------------- the command


def add_arguments(p):
    p.add_argument("--bundle", required=True, help="bundle directory (holds manifest.json)")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--text", action="append", help="a text to run (repeat for a batch; needs `tokenizers`)")
    g.add_argument("--npz", help=".npz of input arrays by input name ('<kind>/<name>' keys: the 'real' kind)")
    p.add_argument("--artifact", help="model file to run, relative to the bundle (default: the first artifact)")
    p.add_argument("--threads", type=int, help="runtime CPU threads (default: the runtime's choice)")
    p.add_argument("--max-new-tokens", type=int, default=32, help="decoder bundles: tokens generated per prompt")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def load_npz(path):
    """{input name: array} from an .npz: plain input names, or a sample-inputs file ('real' kind preferred)."""
    import numpy as np

    try:
        npz = np.load(path, allow_pickle=False)
    except (IOError, OSError, ValueError, EOFError) as exc:  # an empty file: EOFError
        raise DeviceError("%s: not a readable .npz (%s)" % (path, exc or type(exc).__name__), EXIT_BAD_INPUT)
    if not hasattr(npz, "files"):
        raise DeviceError("%s: a single array (.npy), expected an .npz of arrays by input name" % path,
                          EXIT_BAD_INPUT)
    with npz:
        arrays = dict((k, npz[k]) for k in npz.files)
    if not arrays:
        raise DeviceError("%s holds no arrays" % path, EXIT_BAD_INPUT)
    if all("/" in k for k in arrays):
        kinds = sorted(set(k.split("/", 1)[0] for k in arrays))
        kind = "real" if "real" in kinds else kinds[0]
        arrays = dict((k.split("/", 1)[1], v) for k, v in arrays.items() if k.startswith(kind + "/"))
    return arrays


def prediction(model, inputs, max_new_tokens=32):
    """What `predict` prints, as data: labels (classifiers), embeddings (encoders), greedy continuations (decoders,
    up to max_new_tokens each), else every output."""
    if model.generator is not None:
        if not _is_text(inputs):
            raise DeviceError("%s is a decoder bundle: give prompts as text" % model.bundle, EXIT_BAD_INPUT)
        prompts = [inputs] if isinstance(inputs, str) else list(inputs)
        return {"model_name": model.manifest.get("model_name"), "artifact": model.artifact["path"],
                "runtime": model.generator.engine.runtime, "task": "generate", "prompts": prompts,
                "generations": [model.generate(p, max_new_tokens) for p in prompts]}
    record = {"model_name": model.manifest.get("model_name"), "artifact": model.artifact["path"],
              "runtime": model.engine.runtime}
    if model.is_classifier:
        pairs = model.classify(inputs, scores=True)
        record.update(task="classify", labels=[p[0] for p in pairs], scores=[round(p[1], 6) for p in pairs])
        return record
    try:
        emb = model.embed(inputs)
        record.update(task="embed", dim=int(emb.shape[1]), embeddings=emb.round(6).tolist())
    except DeviceError:
        outs = model.run(inputs)
        record.update(task="run", outputs=dict((n, v.tolist()) for n, v in outs.items()))
    return record


def render(record, texts=None):
    """Lines for people."""
    import numpy as np

    rows = texts or []
    lines = []
    if record["task"] == "classify":
        for i, (lab, p) in enumerate(zip(record["labels"], record["scores"])):
            lines.append("%s\t%.4f%s" % (lab, p, ("\t" + rows[i]) if i < len(rows) else ""))
    elif record["task"] == "embed":
        for i, vec in enumerate(record["embeddings"]):
            head = ", ".join("%.4f" % x for x in vec[:4])
            lines.append("%d-dim embedding [%s, ...] norm %.3f%s" % (record["dim"], head,
                         float(np.linalg.norm(vec)), ("\t" + rows[i]) if i < len(rows) else ""))
    elif record["task"] == "generate":
        for prompt, g in zip(record["prompts"], record["generations"]):
            lines.append("%s\t→ %s\t(%d tokens, %s; time to first token %.3g ms, %.4g tokens/s)"
                         % (prompt, g["text"], len(g["tokens"]), g["stopped"], g["ttft_ms"],
                            g["decode_tokens_per_s"] or 0))
    else:
        for name, value in record["outputs"].items():
            a = np.asarray(value)
            lines.append("%s: shape %s %s" % (name, list(a.shape), a.dtype))
    return lines


def run(args):
    """The `predict` command; returns the exit code (DeviceError propagates to the caller)."""
    import json
    import sys

    inputs = args.text if args.text else load_npz(args.npz)
    model = Model(args.bundle, artifact=args.artifact, threads=args.threads)
    record = prediction(model, inputs, args.max_new_tokens)
    if args.json:
        sys.stdout.write(json.dumps(record) + "\n")
    else:
        sys.stdout.write("\n".join(render(record, args.text)) + "\n")
    return 0
