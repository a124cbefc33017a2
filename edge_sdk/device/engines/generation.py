"""Generation engines for decoder bundles (ONNX with a KV cache, laid out by onnxruntime-genai's model builder).

Two engines with one interface, `generate(prompt_ids, new_tokens, stop_ids=()) -> Generation`, greedy; without
`stop_ids` EOS is ignored (a benchmark wants a fixed number of tokens), with them generation ends at one:
- GenaiGenerator: onnxruntime-genai (its own KV-cache management, tokenizer, search), where it is installed;
- OrtKvGenerator: plain onnxruntime and a Python loop that feeds present.* back as past_key_values.* — what a device
  without onnxruntime-genai runs.
Both time the prompt pass (prefill), the first token, and every decode step separately; time to first token
runs from the prompt going in to the first token coming out (genai's per-request Generator setup is kept apart).
"""

import json
import os
import time

from ..errors import EXIT_BAD_INPUT, EXIT_RUNTIME, DeviceError
from ..probe import physical_cores
from .base import ort_session_options

ENGINE_NAMES = ("onnxruntime-genai", "onnxruntime")


class Generation(object):
    def __init__(self, tokens, prefill_ms, ttft_ms, decode_ms, setup_ms=0.0):
        self.tokens = tokens          # generated token ids (the first one included)
        self.setup_ms = setup_ms      # before the prompt goes in (onnxruntime-genai: creating the Generator)
        self.prefill_ms = prefill_ms  # the prompt's forward pass
        self.ttft_ms = ttft_ms        # start → first generated token known (prefill + picking it)
        self.decode_ms = decode_ms    # one entry per later token: one forward pass of one token + picking it


def read_genai_config(model_dir):
    path = os.path.join(model_dir, "genai_config.json")
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as exc:
        raise DeviceError("%s: cannot read (%s)" % (path, exc), EXIT_BAD_INPUT)


class GenaiGenerator(object):
    runtime = "onnxruntime-genai"
    module = "onnxruntime_genai"

    def __init__(self, model_dir, provider, threads):
        import onnxruntime_genai as og

        self.og = og
        self.version = getattr(og, "__version__", None)
        self.provider_requested = provider or "CPUExecutionProvider"
        self.provider_used = "CPUExecutionProvider"
        self.fallback_reason = None
        config = og.Config(model_dir)
        # Without intra_op_num_threads onnxruntime-genai ran the model on one thread (measured with 0.18 on 2 Zen 5
        # vCPUs: SmolLM-135M int4 took 45 ms to the first token and 5.7 ms per token, as with 1 thread, against 25 ms
        # and 4.0 ms with 2), so the default is plain onnxruntime's: one thread per physical core.
        self.threads = threads or physical_cores()
        config.overlay(json.dumps({"model": {"decoder": {"session_options": {"intra_op_num_threads": self.threads}}}}))
        if self.provider_requested.lower().startswith("cuda"):
            self.provider_used = "CUDAExecutionProvider"
        t0 = time.perf_counter_ns()
        try:
            self.model = og.Model(config)
        except Exception as exc:
            raise DeviceError("onnxruntime-genai cannot load %s: %s" % (model_dir, exc), EXIT_RUNTIME)
        self.load_ms = (time.perf_counter_ns() - t0) / 1e6

    def generate(self, prompt_ids, new_tokens, stop_ids=()):
        import numpy as np

        og = self.og
        params = og.GeneratorParams(self.model)
        total = len(prompt_ids) + new_tokens
        if stop_ids:  # the model's EOS ends the generation (genai stops on the config's eos_token_id)
            params.set_search_options(max_length=total, do_sample=False)
        else:  # a fixed number of tokens: EOS ignored
            params.set_search_options(max_length=total, min_length=total, do_sample=False)
        clock = time.perf_counter_ns
        ts = clock()
        gen = og.Generator(self.model, params)
        t0 = clock()
        gen.append_tokens(np.asarray(prompt_ids, dtype=np.int32))
        t1 = clock()
        gen.generate_next_token()
        tokens = [int(gen.get_next_tokens()[0])]
        t2 = clock()
        decode = []
        while len(tokens) < new_tokens and not gen.is_done() and tokens[-1] not in stop_ids:
            a = clock()
            gen.generate_next_token()
            tokens.append(int(gen.get_next_tokens()[0]))
            decode.append((clock() - a) / 1e6)
        return Generation(tokens, (t1 - t0) / 1e6, (t2 - t0) / 1e6, decode, (t0 - ts) / 1e6)


class OrtKvGenerator(object):
    runtime = "onnxruntime"
    module = "onnxruntime"

    def __init__(self, model_dir, provider, threads):
        import onnxruntime as ort

        cfg = read_genai_config(model_dir)["model"]
        dec = cfg["decoder"]
        self.version = ort.__version__
        self.layers = int(dec["num_hidden_layers"])
        self.kv_shape = (1, int(dec["num_key_value_heads"]), 0, int(dec["head_size"]))
        names = dec.get("inputs") or {}
        outs = dec.get("outputs") or {}
        self.past_k = names.get("past_key_names", "past_key_values.%d.key")
        self.past_v = names.get("past_value_names", "past_key_values.%d.value")
        self.present_k = outs.get("present_key_names", "present.%d.key")
        self.present_v = outs.get("present_value_names", "present.%d.value")
        self.provider_requested = provider or "CPUExecutionProvider"
        available = ort.get_available_providers()
        self.fallback_reason = None
        providers = ["CPUExecutionProvider"]
        if self.provider_requested in available and self.provider_requested != "CPUExecutionProvider":
            providers.insert(0, self.provider_requested)
        elif self.provider_requested != "CPUExecutionProvider":
            self.fallback_reason = "%s is not available in this onnxruntime build" % self.provider_requested
        opts = ort_session_options(ort, threads)
        opts.log_severity_level = 3
        t0 = time.perf_counter_ns()
        try:
            self.session = ort.InferenceSession(os.path.join(model_dir, dec.get("filename", "model.onnx")), opts,
                                                providers=providers)
        except Exception as exc:
            raise DeviceError("onnxruntime cannot load the decoder in %s: %s" % (model_dir, exc), EXIT_RUNTIME)
        self.load_ms = (time.perf_counter_ns() - t0) / 1e6
        self.provider_used = self.session.get_providers()[0]
        self.inputs = dict((i.name, i.type) for i in self.session.get_inputs())
        self.outputs = ["logits"] + [p % i for i in range(self.layers) for p in (self.present_k, self.present_v)]

    def _feed(self, ids, total, past):
        import numpy as np

        feed = {"input_ids": np.asarray([ids], dtype=np.int64)}
        if "attention_mask" in self.inputs:
            feed["attention_mask"] = np.ones((1, total), dtype=np.int64)
        if "position_ids" in self.inputs:
            feed["position_ids"] = np.arange(total - len(ids), total, dtype=np.int64)[None]
        for i in range(self.layers):
            feed[self.past_k % i], feed[self.past_v % i] = past[2 * i], past[2 * i + 1]
        return feed

    def generate(self, prompt_ids, new_tokens, stop_ids=()):
        import numpy as np

        dtype = np.float16 if "float16" in self.inputs.get(self.past_k % 0, "") else np.float32
        past = [np.zeros(self.kv_shape, dtype=dtype) for _ in range(2 * self.layers)]
        clock = time.perf_counter_ns
        total = len(prompt_ids)
        t0 = clock()
        out = self.session.run(self.outputs, self._feed(list(prompt_ids), total, past))
        t1 = clock()
        tokens = [int(out[0][0, -1].argmax())]
        t2 = clock()
        decode = []
        while len(tokens) < new_tokens and tokens[-1] not in stop_ids:
            a = clock()
            total += 1
            out = self.session.run(self.outputs, self._feed(tokens[-1:], total, out[1:]))
            tokens.append(int(out[0][0, -1].argmax()))
            decode.append((clock() - a) / 1e6)
        return Generation(tokens, (t1 - t0) / 1e6, (t2 - t0) / 1e6, decode)


def open_generator(model_dir, engine="auto", provider=None, threads=None):
    """`auto`: onnxruntime-genai when it imports, else plain onnxruntime."""
    if engine not in ("auto",) + ENGINE_NAMES:
        raise DeviceError("--engine %s: expected auto, %s" % (engine, ", ".join(ENGINE_NAMES)), EXIT_BAD_INPUT)
    if engine in ("auto", "onnxruntime-genai"):
        try:
            import onnxruntime_genai  # noqa: F401
        except ImportError as exc:
            if engine == "onnxruntime-genai":
                raise DeviceError("onnxruntime-genai is not installed on this device (%s)" % exc, EXIT_RUNTIME)
        else:
            return GenaiGenerator(model_dir, provider, threads)
    try:
        return OrtKvGenerator(model_dir, provider, threads)
    except ImportError as exc:
        raise DeviceError("neither onnxruntime-genai nor onnxruntime is installed on this device (%s)" % exc,
                          EXIT_RUNTIME)
