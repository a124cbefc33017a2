"""How are a decoder's time to first token and tokens/s predicted? With the cost model, twice.

- Prefill: one forward pass over the prompt (`block_costs(decode=False)` on the ModelSpec at the prompt length).
  The prompt's logits give the first token, so TTFT = prefill time; prefill tokens/s = batch × prompt / that time.
- Decode: one generated token at the plan's context (`block_costs(decode=True)`): the plan's own `latency_ms`.

The ModelSpec at the prompt length is the plan's ModelSpec rescaled with modelspec/flops.py's formulas: per-token ops
(linears, norms, activations, embeddings, the LM head) scale with the tokens; the FLOPs of the attention scores,
softmax and probs·V, and the bytes of the seq × seq score matrices, with their square. No weights and no second inspection are needed.
"""

from __future__ import annotations

from ..schemas.modelspec import ModelSpec
from ..schemas.plan import GenerationPrediction, bench_prompt_tokens
from ..schemas.profile import DeviceProfile
from .costmodel import SEQ_QUADRATIC, CostEstimate, block_costs, predict

S_BY_S_OUTPUT = frozenset({"attention_scores", "softmax"})  # ops whose output is seq × seq per head


def spec_at_seq_len(spec: ModelSpec, seq_len: int) -> ModelSpec:
    """The same model at another sequence length (a prefill of `seq_len` tokens)."""
    if seq_len == spec.seq_len:
        return spec
    r = seq_len / spec.seq_len
    probs = {l.block: l.activation_bytes for l in spec.layers if l.kind == "attention_scores"}
    layers = []
    for l in spec.layers:
        f = r * r if l.kind in SEQ_QUADRATIC else r
        out = r * r if l.kind in S_BY_S_OUTPUT else r  # probs·V writes s × d again
        inp = l.input_bytes * (r * r if l.kind == "softmax" else r)  # the scores read Q and K (s × d)
        if l.kind == "attention_context" and l.block in probs:  # reads the probs (s × s) and V (s × d)
            inp = probs[l.block] * r * r + (l.input_bytes - probs[l.block]) * r
        upd = {"flops": round(l.flops * f), "activation_bytes": round(l.activation_bytes * out),
               "input_bytes": round(inp)}
        if l.tokens == spec.batch * spec.seq_len:  # batch × sequence rows (a pooler's batch rows stay)
            upd["tokens"] = spec.batch * seq_len
        layers.append(l.model_copy(update=upd))
    return spec.model_copy(update={"seq_len": seq_len, "layers": layers,
                                   "total_flops": sum(l.flops for l in layers)})


def predict_generation(spec: ModelSpec, profile: DeviceProfile, target, precision: str, decode: CostEstimate, *,
                       float_kinds: frozenset[str] = frozenset(), sparse_24: bool = False, dp: int = 1, tp: int = 1,
                       pp: int = 1, prompt_tokens: int | None = None) -> GenerationPrediction:
    """TTFT, prefill and decode tokens/s and peak memory of one decoder candidate whose per-token cost is `decode`."""
    prompt = prompt_tokens or bench_prompt_tokens(spec.seq_len)
    pspec = spec_at_seq_len(spec, prompt)
    costs = block_costs(pspec, profile, target.unit, precision, sparse_24=sparse_24, decode=False,
                        float_kinds=float_kinds, runtime=target.runtime, batch_scale=1.0 / dp)
    pre = predict(pspec, profile, target.runtime, target.unit, precision, costs, tp=tp, pp=pp, dp=dp,
                  decode=False, sparse_24=sparse_24)
    ttft = pre.latency_ms
    extra_act = max(pre.activations_mb - decode.activations_mb, 0.0) / tp
    return GenerationPrediction(
        prompt_tokens=prompt, context=spec.seq_len, ttft_ms=round(ttft, 4),
        prefill_tokens_per_s=round(spec.batch * prompt / (ttft / 1e3), 2) if ttft > 0 else 0.0,
        decode_ms_per_token=round(decode.latency_ms, 4), decode_tokens_per_s=round(decode.throughput_per_s, 2),
        peak_memory_mb=round(decode.total_mb + extra_act, 3),
        basis=f"roofline: prefill = one forward over the {prompt}-token prompt ({pre.bound}-bound); decode = one "
              f"token at context {spec.seq_len}; batch {spec.batch}")
