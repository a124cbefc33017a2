"""Model inputs on the device: the bundle's sample inputs, matching arrays to the model's inputs, making feeds.

Sample inputs (the bundle's `sample_inputs` .npz; edge_sdk.benchmark.inputs.save_sample_inputs writes it):
  * key "<kind>/<input name>", e.g. "real/input_ids", "real/attention_mask", "padded/input_ids".
  * kind "real": sentences at their real token lengths (padded only to the longest of them);
    kind "padded": padded to the plan's sequence length. `auto` takes "padded" when present, else "real".
  * axis 0 is the batch: every array of a kind has the same number of rows. A batch of b is rows 0..b-1,
    repeated cyclically when b exceeds the rows.
  * arrays are matched to the model's inputs by name (LiteRT's "serving_default_input_ids:0" counts as
    "input_ids"); failing that, the i-th name of the manifest artifact's `inputs` list names the array for the
    model's i-th input (litert-torch names positional inputs args_0, args_1, ...).
  * where the model has a static dimension (LiteRT exports do), rows are zero-padded or truncated to it;
    values are cast to the model's input dtype (LiteRT: int32).
"""

import re

from .errors import EXIT_BAD_INPUT, DeviceError
from .integrity import verify_file

INPUT_KINDS = ("real", "padded")


def load_sample_inputs(bundle, manifest):
    """{kind: {input name: array}} from the bundle's .npz (see the module docstring for the keys)."""
    import numpy as np

    rel = manifest.get("sample_inputs")
    if not rel:
        raise DeviceError("the bundle has no sample inputs (manifest.json: sample_inputs is null)", EXIT_BAD_INPUT)
    path = verify_file(bundle, manifest, rel)
    kinds = {}
    try:
        with np.load(path, allow_pickle=False) as npz:
            for key in npz.files:
                kind, sep, name = key.partition("/")
                if not sep or not name:
                    raise DeviceError("%s: key %r is not '<kind>/<input name>'" % (rel, key), EXIT_BAD_INPUT)
                kinds.setdefault(kind, {})[name] = npz[key]
    except (ValueError, OSError) as exc:
        raise DeviceError("%s: not a readable .npz (%s)" % (rel, exc), EXIT_BAD_INPUT)
    for kind, arrays in kinds.items():
        rows = set(a.shape[0] if a.ndim else 0 for a in arrays.values())
        if len(rows) != 1 or 0 in rows:
            raise DeviceError("%s: arrays of kind %r need the same, non-zero number of rows (axis 0); got %s"
                              % (rel, kind, {n: a.shape for n, a in arrays.items()}), EXIT_BAD_INPUT)
    return kinds


def select_kinds(available, wanted):
    if wanted == "auto":
        for kind in ("padded", "real"):
            if kind in available:
                return [kind]
        wanted = "all"
    if wanted == "all":
        order = [k for k in INPUT_KINDS if k in available] + sorted(k for k in available if k not in INPUT_KINDS)
        if not order:
            raise DeviceError("the sample inputs hold no arrays", EXIT_BAD_INPUT)
        return order
    if wanted not in available:
        raise DeviceError("the sample inputs have no %r arrays (they have: %s)"
                          % (wanted, ", ".join(sorted(available)) or "none"), EXIT_BAD_INPUT)
    return [wanted]


def plain_name(name):
    """LiteRT tensor names carry the signature and an output index: serving_default_input_ids:0 → input_ids."""
    name = re.sub(r":\d+$", "", name)
    return name[len("serving_default_"):] if name.startswith("serving_default_") else name


def match_inputs(model_inputs, arrays, manifest_names):
    """{model input name: array}: by name, by undecorated name, else by the manifest's input order."""
    names = [spec["name"] for spec in model_inputs]
    for key in (lambda n: n, plain_name):
        if all(key(n) in arrays for n in names):
            return dict((n, arrays[key(n)]) for n in names)
    if len(manifest_names) == len(names) and all(n in arrays for n in manifest_names):
        return dict((n, arrays[m]) for n, m in zip(names, manifest_names))
    raise DeviceError("cannot match the model's inputs %s to the sample arrays %s (manifest order: %s)"
                      % (names, sorted(arrays), manifest_names or "none"), EXIT_BAD_INPUT)


def make_feed(array, batch, spec):
    """Tile rows up to `batch` (None: keep the rows), fit static dimensions (zero-pad or truncate) and cast to the
    model's dtype."""
    import numpy as np

    shape = spec["shape"]
    if array.ndim != len(shape):
        raise DeviceError("input %s: the model wants %d dimensions %s, the array has shape %s"
                          % (spec["name"], len(shape), shape, list(array.shape)), EXIT_BAD_INPUT)
    out = array if batch is None else array[np.arange(batch) % array.shape[0]]
    for axis in range(1, out.ndim):
        want = shape[axis]
        if not isinstance(want, int) or want <= 0 or out.shape[axis] == want:
            continue
        if out.shape[axis] > want:
            out = out[(slice(None),) * axis + (slice(0, want),)]
        else:
            pad = [(0, 0)] * out.ndim
            pad[axis] = (0, want - out.shape[axis])
            out = np.pad(out, pad)
    return np.ascontiguousarray(out.astype(spec["dtype"], copy=False))
