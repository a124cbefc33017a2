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


def ort_session_options(ort, threads, entries=None):
    """onnxruntime SessionOptions as both onnxruntime engines open them: `threads` intra-op threads (None: onnxruntime's
    default, one per physical core) and thread spinning during a run but not after it.

    onnxruntime's pool threads spin while they wait for work. Between runs that steals the cores from whatever runs
    next, so they stop spinning when a run ends (`session.force_spinning_stop`). Within a run, spinning is what
    hands each kernel to the pool fast: with spinning off altogether, MiniLM int8 on 2 Zen 5 vCPUs took 6.5 ms
    instead of 5.1 ms at 128 tokens and 1.3 ms instead of 0.9 ms at 16 tokens, and a 32-token decoder prefill 0.36 ms
    instead of 0.20 ms (measured with 0.5 ms of Python work between runs; a PyTorch matmul run after each onnxruntime
    run kept its speed, 12.8 ms either way, while threads that keep spinning after a run made it 27 ms).
    `entries`: session config entries that replace these (calibrate keeps the threads spinning between runs)."""
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    config = {"session.intra_op.allow_spinning": "1", "session.force_spinning_stop": "1"}
    config.update((k, str(v)) for k, v in (entries or {}).items())
    for key, value in config.items():
        opts.add_session_config_entry(key, value)
    return opts


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
