"""What every engine offers: load a model file, describe its inputs, run it (timed or for its outputs)."""

import sys


class Engine(object):
    """Subclasses set these in __init__(path, provider, threads) and implement prepare().

    runtime: "onnxruntime" | "litert" | ...; module/version: the Python module that runs the model;
    provider_requested/provider_used/fallback_reason: the execution provider or delegate asked for and used;
    load_ms: model load time; inputs: [{"name", "shape" (None for dynamic dims), "dtype" (numpy name)}];
    output_names: the model's output names, in the order prepare()'s callable returns them.
    op_profile_unavailable: why this engine cannot profile ops (None when it can: then end_profiling() returns the
    path of the runtime's trace file after an engine opened with a profile_prefix has run).
    """

    runtime = None
    module = None
    version = None
    provider_requested = None
    provider_used = None
    fallback_reason = None
    load_ms = 0.0
    inputs = ()
    output_names = ()
    op_profile_unavailable = "this engine has no op profiler"

    def end_profiling(self):
        """Path of the runtime's profile (trace) file; None when nothing was profiled."""
        return None

    def prepare(self, feeds):
        """A callable that runs the model once on `feeds` ({input name: array}) and returns the outputs (a list).
        Everything that need not be timed (resizing, allocation) happens here, once."""
        raise NotImplementedError

    def run(self, feeds):
        """{output name: array} for one call."""
        return dict(zip(self.output_names, self.prepare(feeds)()))


def dist_version(*names):
    """Version from package metadata (no import needed); None before Python 3.8 or when not installed."""
    try:
        from importlib import metadata
    except ImportError:  # Python < 3.8
        return None
    for name in names:
        try:
            return metadata.version(name)
        except Exception:
            continue
    return None


def module_version(module):
    mod = sys.modules.get(module)
    return getattr(mod, "__version__", None) if mod is not None else None
