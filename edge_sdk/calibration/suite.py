"""Which microbenchmarks does `calibrate` time? Small ONNX graphs at the shapes transformer encoders run, made here.

Each kernel isolates one term of the cost model (planner/costmodel.py), so the fit can read it off:
- `gemm`: a linear layer (MatMul + bias Add) at BERT-family shapes — tokens 16…1024 × (hidden, FFN) widths of
  tiny (64) and small (128) encoders, MiniLM and BERT-base — in every precision the runtime builds: fp32, int8 dynamic
  (onnxruntime.quantization `quantize_dynamic`, what `build` makes) and int8 static QDQ (`quantize_static`, per
  channel; the same functions the build's quantize pass calls, so the kernels are the ones a bundle runs), and, for
  onnxruntime, int4 weight-only as the decoder builder writes it (MatMulNBits, see NBITS_KERNEL);
- `attention`: the batched QKᵀ matmul of one layer (heads × seq × seq);
- `softmax`, `layernorm`, `gelu` (the erf decomposition the exporter emits): bandwidth-bound non-GEMM kernels;
- `bandwidth`: a large elementwise Add (64 MiB per operand, STREAM-like "add": 2 reads + 1 write);
- `overhead`: chains of 1 and 64 tiny Adds — what dispatching one graph node costs (the slope), and what one
  session run costs on its own (the intercept), which every isolated kernel's time includes once;
- `dispatch`: a toy BERT encoder (1 layer, hidden 32, 8 tokens; edge-sdk's own ONNX export, then each precision's
  quantizer) whose FLOPs are negligible: its time is what a real exported graph pays per ModelSpec op in shape
  arithmetic, reshapes and kernel launches, which the 64-Add chain alone under-counts several times over;
- `layer`: one encoder layer at MiniLM's width (hidden 384, 12 heads, FFN 1536) on 128 tokens, exported and
  quantized the same way. A runtime that compiles and fuses the whole graph (OpenVINO) is fitted to its own IR of
  such encoders instead (OPENVINO_LAYER_POINTS: 6-layer stacks at several shapes, compiled at f32 and the fixed
  shape as bundles are), because its isolated single-GEMM graphs pay a per-inference cost that a real model
  amortises and one layer alone keeps its weights in cache. onnxruntime times the same exported layer (and one at
  width 768, 12 heads of 64) at several (batch, sequence) points (LAYER_POINTS): the real graph runs an
  attention-mask Add, the Softmax, a NaN guard (IsNaN + Where) over every heads × seq² score, transposes around
  attention and, for static int8, Q/DQ pairs — terms no isolated kernel shows. One random-weight
  layer is a microbenchmark, not a model: the fit (calibration/fit.py) scales it to other widths, depths, lengths
  and batches through the cost model's FLOP and byte counts;

Every fourth GEMM (and one non-GEMM kernel of each kind) is held out of the fit to report the fit error.
Graphs are written once per (runtime precisions, reduce_range) into a suite directory with `suite.json`; the
device package's `calibrate` command times them (edge_sdk/device/calibrate.py) with nothing but numpy and the
runtime.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable

import numpy as np

from ..planner.costmodel import INT4_BLOCK, int4_weight_bytes
from ..quiet import quiet

SUITE_FORMAT = 5
GEMM_TOKENS = (16, 128, 384, 1024)
# (in, out) widths: tiny (64) and small (128) encoders', MiniLM's (384) and BERT-base's (768) hidden and FFN widths.
# Small widths run far below the per-FLOP speed of large ones, and the table takes the nearest widths' per-FLOP
# time (without the 64 rows a hidden-64 ViT was predicted 0.81x of measured from the 128 rows).
GEMM_WIDTHS = ((64, 64), (64, 256), (256, 64), (128, 128), (128, 512), (512, 128), (384, 384), (384, 1536),
               (1536, 384), (768, 768), (768, 3072), (3072, 768))
NONGEMM_ROWS = ((128, 384), (1024, 768))
ATTENTION = ((12, 128, 32), (12, 384, 64))   # heads, seq, head_dim
SOFTMAX = ((12, 128), (12, 384))             # heads, seq  → [heads, seq, seq]
BANDWIDTH_ELEMS = 16 * 1024 * 1024           # 64 MiB of float32 per operand
OVERHEAD_NODES = 64
TOY = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64,
       "vocab_size": 128, "max_position_embeddings": 64}
TOY_SEQ = 8
# One encoder layer at MiniLM's width, 128 tokens: what graph-compiling runtimes (OpenVINO) are fitted to, since
# they fuse a layer's ops into kernels that isolated GEMMs do not show (see calibration/fit.py)
LAYER = {"hidden_size": 384, "num_hidden_layers": 1, "num_attention_heads": 12, "intermediate_size": 1536,
         "vocab_size": 1024, "max_position_embeddings": 512}
LAYER_SEQ = 128
# ... and one at BERT-base's width (12 heads of 64): head width and FFN width change the attention/GEMM balance
WIDE_LAYER = {"hidden_size": 768, "num_hidden_layers": 1, "num_attention_heads": 12, "intermediate_size": 3072,
              "vocab_size": 1024, "max_position_embeddings": 512}
ENCODERS = {"dispatch": ("toy_bert", TOY, TOY_SEQ), "layer": ("minilm_layer", LAYER, LAYER_SEQ)}
#: (layer file, config, batch, seq, held out): the exported layers onnxruntime times (LAYER_SEQ first: the kernel
#: OpenVINO calibrations also use). One point is held out to report the fit error of whole-layer predictions.
#: Batched points matter: at batch 1 tokens and sequence grow together, and a fit cannot tell the heads × seq² work
#: of attention from the per-token work (LayerNorm, GELU, transposes) — batch > 1 separates them.
LAYER_POINTS = (("minilm_layer", LAYER, 1, LAYER_SEQ, False), ("minilm_layer", LAYER, 1, 32, False),
                ("minilm_layer", LAYER, 1, 320, False), ("minilm_layer", LAYER, 4, 64, False),
                ("minilm_layer", LAYER, 8, 32, False), ("wide_layer", WIDE_LAYER, 1, 64, False),
                ("wide_layer", WIDE_LAYER, 1, 256, False), ("wide_layer", WIDE_LAYER, 4, 32, False),
                ("wide_layer", WIDE_LAYER, 2, 96, True))
OPSET = 17
#: timed between kernels by the device's `calibrate` to measure (and divide out) load from other processes
REFERENCE_KERNEL = "gemm_fp32_128x384x1536"
#: int4 weight-only linear layers as onnxruntime-genai's model builder writes a CPU decoder: MatMulNBits, 4 bits,
#: symmetric, blocks of INT4_BLOCK (ExportGenaiConfig's 32), accuracy_level 4 (the builder's CPU default, read off a
#: built SmolLM-135M graph: the kernel quantizes its activations to int8 and computes in int8). Timed by onnxruntime
#: only (a contrib op), at the table's widths from 128 up: a decoder's prompt (prefill) is costed from them (one
#: generated token is a GEMV streaming weights from DRAM, which these hot-cache kernels do not show: fit.TABLE_ONLY).
NBITS_KERNEL = {"int4_weight_only": {"bits": 4, "block_size": INT4_BLOCK, "accuracy_level": 4, "symmetric": True}}
#: the precisions of the whole-encoder kernels (dispatch, layer): what `build` makes of an encoder
ENCODER_PRECISIONS = ("fp32", "int8_dynamic", "int8_static")


def _model(nodes, inputs, outputs, inits=()):
    from onnx import helper

    g = helper.make_graph(nodes, "calibration", inputs, outputs, list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)])
    m.ir_version = 8
    return m


def _vi(name, shape):
    from onnx import TensorProto, helper

    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))


def _linear(m: int, k: int, n: int, seed: int):
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(seed)
    w = numpy_helper.from_array((rng.standard_normal((k, n)) / np.sqrt(k)).astype(np.float32), "W")
    b = numpy_helper.from_array((rng.standard_normal(n) * 0.02).astype(np.float32), "B")
    nodes = [helper.make_node("MatMul", ["X", "W"], ["H"], name="linear/MatMul"),
             helper.make_node("Add", ["H", "B"], ["Y"], name="linear/Add")]
    # the token count is a symbolic dimension: one file (one copy of the weights) serves every M
    return _model(nodes, [_vi("X", ("tokens", k))], [_vi("Y", ("tokens", n))], [w, b])


def _attention(h: int, s: int, d: int):
    from onnx import helper

    nodes = [helper.make_node("MatMul", ["Q", "K"], ["Y"], name="attention/MatMul")]
    return _model(nodes, [_vi("Q", (h, s, d)), _vi("K", (h, d, s))], [_vi("Y", (h, s, s))])


def _softmax(h: int, s: int):
    from onnx import helper

    return _model([helper.make_node("Softmax", ["X"], ["Y"], axis=-1)], [_vi("X", (h, s, s))], [_vi("Y", (h, s, s))])


def _layernorm(m: int, n: int):
    from onnx import helper, numpy_helper

    g = numpy_helper.from_array(np.ones(n, np.float32), "G")
    b = numpy_helper.from_array(np.zeros(n, np.float32), "Bn")
    node = helper.make_node("LayerNormalization", ["X", "G", "Bn"], ["Y"], axis=-1, epsilon=1e-12)
    return _model([node], [_vi("X", (m, n))], [_vi("Y", (m, n))], [g, b])


def _gelu(m: int, n: int):
    """x · 0.5 · (1 + erf(x / √2)): the five nodes torch's exporter writes for nn.GELU."""
    from onnx import helper, numpy_helper

    c = [numpy_helper.from_array(np.array(v, np.float32), k) for k, v in
         (("sqrt2", np.sqrt(2.0)), ("one", 1.0), ("half", 0.5))]
    nodes = [helper.make_node("Div", ["X", "sqrt2"], ["a"]), helper.make_node("Erf", ["a"], ["e"]),
             helper.make_node("Add", ["e", "one"], ["p"]), helper.make_node("Mul", ["X", "p"], ["q"]),
             helper.make_node("Mul", ["q", "half"], ["Y"])]
    return _model(nodes, [_vi("X", (m, n))], [_vi("Y", (m, n))], c)


def _bandwidth(n: int):
    from onnx import helper

    return _model([helper.make_node("Add", ["A", "B"], ["Y"])], [_vi("A", (n,)), _vi("B", (n,))], [_vi("Y", (n,))])


def _overhead(nodes: int):
    from onnx import helper, numpy_helper

    one = numpy_helper.from_array(np.ones((1, 16), np.float32), "one")
    chain, prev = [], "X"
    for i in range(nodes):
        out = "Y" if i == nodes - 1 else f"t{i}"
        chain.append(helper.make_node("Add", [prev, "one"], [out], name=f"add{i}"))
        prev = out
    return _model(chain, [_vi("X", (1, 16))], [_vi("Y", (1, 16))], [one])


def _encoder(dest: Path, name: str, config: dict, shapes: list[tuple[int, int]]) -> Path:
    """A small BERT encoder in fp32, exported the way `build` exports (dynamic batch and sequence axes), and its
    ModelSpec at each (batch, seq) of `shapes` (for the fit) beside it."""
    import torch
    from transformers import BertConfig, BertModel

    from ..modelspec import inspect_module
    from ..passes.export_onnx import export_onnx

    torch.manual_seed(0)
    model = BertModel(BertConfig(**config)).eval()
    path = dest / f".{name}.float.onnx"
    export_onnx(model, path, model_kind="text")
    for batch, seq in shapes:
        spec = inspect_module(model, batch=batch, seq_len=seq)
        (dest / _spec_file(name, batch, seq)).write_text(spec.model_dump_json())
    return path


def _spec_file(name: str, batch: int, seq: int) -> str:
    return f"{name}.modelspec.json" if (batch, seq) == (1, _SEQ.get(name)) else f"{name}_b{batch}s{seq}.modelspec.json"


_SEQ = {name: seq for name, _, seq in ENCODERS.values()}
#: encoder file name → its config (the named encoders and the layers of LAYER_POINTS)
_CONFIG = {name: config for name, config, _ in ENCODERS.values()} | {p[0]: p[1] for p in LAYER_POINTS}


def _quantized(src: Path, dst: Path, precision: str, reduce_range: bool, inputs: dict[str, list[int]],
               int_inputs: bool = False) -> int:
    """Quantize a float kernel with the build's own functions; returns the node count of the result."""
    import onnx

    from ..passes.quantize_onnx import quantize_dynamic_int8, quantize_static_int8

    if precision in NBITS_KERNEL:
        from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

        q = NBITS_KERNEL[precision]
        quantizer = MatMulNBitsQuantizer(onnx.load(os.fspath(src)), bits=q["bits"], block_size=q["block_size"],
                                         is_symmetric=q["symmetric"], accuracy_level=q["accuracy_level"])
        with quiet():
            quantizer.process()
        quantizer.model.save_model_to_file(os.fspath(dst))
        return len(quantizer.model.model.graph.node)
    if precision == "int8_dynamic":
        quantize_dynamic_int8(src, dst, per_channel=True)
    else:
        rng = np.random.default_rng(1)
        feeds = [{k: (np.ones(v, np.int64) if int_inputs else rng.standard_normal(v).astype(np.float32))
                  for k, v in inputs.items()} for _ in range(8)]
        # the toy keeps its FFN down-projection in float, as the planner's mixed static int8 does
        quantize_static_int8(src, dst, feeds, per_channel=True, exclude_ffn_down=int_inputs,
                             reduce_range=reduce_range)
    return len(onnx.load(os.fspath(dst), load_external_data=False).graph.node)


def kernel_plan(precisions: tuple[str, ...], openvino: bool = False) -> list[dict]:
    """Every kernel's name, kind, precision, shape, input shapes, FLOPs and bytes (fp32 activations; weights at the
    kernel's precision), before any file is written."""
    out: list[dict] = []
    i = 0
    for prec in precisions:
        nbits = NBITS_KERNEL.get(prec)
        # weight bytes per element; MatMulNBits: the packed bits and an fp32 scale per block
        wbytes = int4_weight_bytes(4.0) if nbits else 1.0 if prec.startswith("int8") else 4.0
        for m in GEMM_TOKENS:
            for k, n in GEMM_WIDTHS:
                if nbits and min(k, n) < 128:
                    continue
                extra = 1.25 * m * k if prec == "int8_dynamic" else 0.0  # DynamicQuantizeLinear, as costmodel counts
                out.append(dict(name=f"gemm_{prec}_{m}x{k}x{n}", kind="gemm", precision=prec,
                                shape={"m": m, "k": k, "n": n}, inputs={"X": [m, k]}, flops=2.0 * m * k * n,
                                bytes_moved=k * n * wbytes + 4.0 * (m * k + m * n) + extra, held_out=i % 4 == 3,
                                **({"runtimes": ["onnxruntime"]} if nbits else {})))
                i += 1
    precisions = tuple(p for p in precisions if p in ENCODER_PRECISIONS)
    for h, s, d in ATTENTION:
        out.append(dict(name=f"attention_{h}x{s}x{d}", kind="attention", precision="fp32",
                        shape={"heads": h, "seq": s, "head_dim": d}, inputs={"Q": [h, s, d], "K": [h, d, s]},
                        flops=2.0 * h * s * s * d, bytes_moved=4.0 * (2 * h * s * d + h * s * s),
                        held_out=s == ATTENTION[-1][1]))
    for h, s in SOFTMAX:
        out.append(dict(name=f"softmax_{h}x{s}x{s}", kind="softmax", precision="fp32", shape={"heads": h, "seq": s},
                        inputs={"X": [h, s, s]}, flops=0.0, bytes_moved=8.0 * h * s * s, held_out=s == SOFTMAX[-1][1]))
    for m, n in NONGEMM_ROWS:
        out.append(dict(name=f"layernorm_{m}x{n}", kind="layernorm", precision="fp32", shape={"m": m, "n": n},
                        inputs={"X": [m, n]}, flops=0.0, bytes_moved=8.0 * m * n, held_out=m == NONGEMM_ROWS[-1][0]))
        out.append(dict(name=f"gelu_{m}x{n}", kind="gelu", precision="fp32", shape={"m": m, "n": n},
                        inputs={"X": [m, n]}, flops=0.0, bytes_moved=8.0 * m * n, held_out=m == NONGEMM_ROWS[-1][0]))
    out.append(dict(name="bandwidth_add_64MiB", kind="bandwidth", precision="fp32", shape={"elements": BANDWIDTH_ELEMS},
                    inputs={"A": [BANDWIDTH_ELEMS], "B": [BANDWIDTH_ELEMS]}, flops=0.0,
                    bytes_moved=12.0 * BANDWIDTH_ELEMS, held_out=False))
    for nodes in (1, OVERHEAD_NODES):
        out.append(dict(name=f"overhead_{nodes}_adds", kind="overhead", precision="fp32",
                        shape={"nodes": nodes}, inputs={"X": [1, 16]}, flops=0.0, bytes_moved=0.0,
                        held_out=False))
    ids = ("input_ids", "attention_mask", "token_type_ids")
    name, config, seq = ENCODERS["dispatch"]
    for prec in precisions:
        out.append(dict(name=f"dispatch_{name}_{prec}", kind="dispatch", precision=prec,
                        shape={"layers": config["num_hidden_layers"], "hidden": config["hidden_size"], "seq": seq},
                        inputs={n: [1, seq] for n in ids}, dtypes={n: "int64" for n in ids}, flops=0.0,
                        bytes_moved=0.0, held_out=False, spec_file=_spec_file(name, 1, seq), encoder=name))
    for prec in precisions:
        for name, config, batch, seq, held in LAYER_POINTS:
            tag = "" if (batch, seq) == (1, _SEQ.get(name)) else f"_b{batch}s{seq}"
            out.append(dict(name=f"layer_{name}_{prec}{tag}", kind="layer", precision=prec,
                            shape={"layers": config["num_hidden_layers"], "hidden": config["hidden_size"],
                                   "heads": config["num_attention_heads"], "batch": batch, "seq": seq},
                            inputs={n: [batch, seq] for n in ids}, dtypes={n: "int64" for n in ids},
                            flops=0.0, bytes_moved=0.0, held_out=held, spec_file=_spec_file(name, batch, seq),
                            encoder=name, runtimes=["onnxruntime"]))
    if openvino:  # the layer as an OpenVINO build makes it: converted from PyTorch, int8 by NNCF
        from ..device.engines.openvino import STATIC_SHAPES

        for prec in [p for p in precisions if p in OPENVINO_LAYER]:
            for encoder, depth, batch, seq, held in OPENVINO_LAYER_POINTS:
                name = _openvino_stem(encoder, depth, prec)
                tag = "" if (encoder, depth, batch, seq) == OPENVINO_LAYER_POINTS[0][:4] else f"_b{batch}s{seq}"
                out.append(dict(name=f"{name}{tag}", kind="layer", precision=prec,
                                shape={"layers": depth, "hidden": _CONFIG[encoder]["hidden_size"], "batch": batch,
                                       "seq": seq},
                                inputs={n: [batch, seq] for n in ids}, dtypes={n: "int64" for n in ids},
                                flops=0.0, bytes_moved=0.0, held_out=held, encoder=encoder,
                                spec_file=f"openvino_{encoder}{depth}_b{batch}s{seq}.modelspec.json",
                                runtimes=["openvino"], ir=f"{name}.xml",
                                # compiled as a bundle compiles its plan's shape (engines/openvino.py)
                                runtime_config={"INFERENCE_PRECISION_HINT": "f32",
                                                STATIC_SHAPES: f"{batch}x{seq}"}))
    return out


#: precision → the OpenVINO export's `quantize` for the OpenVINO-native layer kernels
OPENVINO_LAYER = {"fp32": "none", "int8_static": "int8"}
#: (encoder, layers, batch, seq, held out) of the encoders OpenVINO is fitted to. One layer alone keeps its weights
#: in cache from run to run; a real model's do not (measured on 2 Zen 5 vCPUs, int8 at 1x128: 6 layers took 0.47 ms
#: per layer against 0.40 for one layer alone, fp32 1.25 against 0.82 ms), so a 6-layer MiniLM-width stack is timed
#: at several shapes: batched points separate the per-token work from attention's heads × seq² work, as for
#: onnxruntime. A 6-layer stack of the toy encoder is nearly all per-op and per-call cost: it separates the two.
OPENVINO_LAYER_POINTS = (("minilm_layer", 1, 1, LAYER_SEQ, False), ("minilm_layer", 6, 1, LAYER_SEQ, False),
                         ("minilm_layer", 6, 1, 32, False), ("minilm_layer", 6, 1, 320, False),
                         ("minilm_layer", 6, 4, 64, False), ("minilm_layer", 6, 2, 96, True),
                         ("toy_bert", 6, 1, TOY_SEQ, False))


def _openvino_stem(encoder: str, depth: int, precision: str) -> str:
    return f"layer_{encoder}{'' if depth == 1 else depth}_{precision}_openvino"


def _openvino_layer(dest: Path, file_stem: str, precision: str, encoder: str, depth: int) -> int:
    """`encoder` (`depth` layers deep) converted and (for int8) quantized exactly as `export_openvino` does, with its
    ModelSpec at every OPENVINO_LAYER_POINTS shape of that encoder and depth; returns its op count."""
    import torch
    from transformers import BertConfig, BertModel

    from ..modelspec import inspect_module
    from ..passes.export_openvino import compress, convert, nncf_output, save
    from ..schemas.passes import ExportOpenvinoConfig

    config = {**_CONFIG[encoder], "num_hidden_layers": depth}
    torch.manual_seed(0)
    model = BertModel(BertConfig(**config)).eval()
    points = [(b, s) for e, d, b, s, _ in OPENVINO_LAYER_POINTS if (e, d) == (encoder, depth)]
    for batch, s in points:
        spec = inspect_module(model, batch=batch, seq_len=s)
        (dest / f"openvino_{encoder}{depth}_b{batch}s{s}.modelspec.json").write_text(spec.model_dump_json())
    seq = points[0][1]  # NNCF's calibration inputs
    ov_model, _, names, _ = convert(model, "text")
    q = OPENVINO_LAYER[precision]
    if q != "none":
        rng = np.random.default_rng(2)
        items = [{n: (rng.integers(0, config["vocab_size"], (1, seq)) if n == "input_ids" else
                      np.ones((1, seq), np.int64) if n == "attention_mask" else np.zeros((1, seq), np.int64))
                  .astype(np.int64) for n in names} for _ in range(16)]
        with nncf_output():
            ov_model = compress(ov_model, ExportOpenvinoConfig(quantize=q, accuracy_control=False,
                                                               calibration_samples=16), items, [])
    save(ov_model, dest / f"{file_stem}.xml")
    return len(ov_model.get_ordered_ops())


def make_suite(dest: str | Path, *, precisions: tuple[str, ...] = ("fp32", "int8_dynamic", "int8_static"),
               reduce_range: bool = False, openvino: bool = False,
               progress: Callable[[int, int, str], None] | None = None) -> Path:
    """Write every kernel of `kernel_plan` as an ONNX file (OpenVINO-native layers as IR) plus `suite.json` into
    `dest` (reused when complete)."""
    import onnx

    dest = Path(dest)
    plan = kernel_plan(precisions, openvino=openvino)
    key = hashlib.sha256(json.dumps([SUITE_FORMAT, plan, reduce_range], sort_keys=True).encode()).hexdigest()[:16]
    manifest = dest / "suite.json"
    if manifest.is_file():
        try:
            if json.loads(manifest.read_text()).get("key") == key:
                return dest
        except (OSError, ValueError):
            pass
    dest.mkdir(parents=True, exist_ok=True)
    builders = {"attention": lambda s: _attention(s["heads"], s["seq"], s["head_dim"]),
                "softmax": lambda s: _softmax(s["heads"], s["seq"]),
                "layernorm": lambda s: _layernorm(s["m"], s["n"]), "gelu": lambda s: _gelu(s["m"], s["n"]),
                "bandwidth": lambda s: _bandwidth(s["elements"]), "overhead": lambda s: _overhead(s["nodes"])}
    kernels: list[dict] = []
    made: dict[str, int] = {}
    encoders: dict[str, Path] = {}
    for i, k in enumerate(plan):
        if progress:
            progress(i, len(plan), k["name"])
        path = dest / f"{k['name']}.onnx"
        if k.get("runtimes") == ["openvino"]:
            if k["ir"] not in made:  # one IR per depth and precision serves every shape
                made[k["ir"]] = _openvino_layer(dest, Path(k["ir"]).stem, k["precision"], k["encoder"],
                                                k["shape"]["layers"])
            kernels.append({**k, "file": k["ir"], "format": "openvino", "nodes": made[k["ir"]]})
            continue
        if k["kind"] == "gemm":
            s = k["shape"]
            path = dest / f"gemm_{k['precision']}_{s['k']}x{s['n']}.onnx"
            if path.name in made:
                kernels.append({**k, "file": path.name, "format": "onnx", "nodes": made[path.name]})
                continue
            model = _linear(s["m"], s["k"], s["n"], seed=s["k"] * 7 + s["n"])
            if k["precision"] == "fp32":
                onnx.save(model, os.fspath(path))
                nodes = len(model.graph.node)
            else:
                src = dest / f".{path.stem}.float.onnx"
                onnx.save(model, os.fspath(src))
                try:
                    nodes = _quantized(src, path, k["precision"], reduce_range, k["inputs"])
                finally:
                    src.unlink(missing_ok=True)
            made[path.name] = nodes
        elif k["kind"] in ENCODERS:
            name = k["encoder"]
            path = dest / f"{k['kind']}_{name}_{k['precision']}.onnx"  # one file serves every (batch, seq)
            if path.name in made:
                kernels.append({**k, "file": path.name, "format": "onnx", "nodes": made[path.name]})
                continue
            if name not in encoders:
                shapes = ([(1, _SEQ[name])] if name in _SEQ else []) + \
                    [(b, s) for n, _, b, s, _ in LAYER_POINTS if n == name and (b, s) != (1, _SEQ.get(name))]
                encoders[name] = _encoder(dest, name, _CONFIG[name], shapes)
            src = encoders[name]
            if k["precision"] == "fp32":
                model = onnx.load(os.fspath(src))
                onnx.save(model, os.fspath(path))
                nodes = len(model.graph.node)
            else:
                nodes = _quantized(src, path, k["precision"], reduce_range, k["inputs"], int_inputs=True)
            made[path.name] = nodes
        else:
            model = builders[k["kind"]](k["shape"])
            onnx.save(model, os.fspath(path))
            nodes = len(model.graph.node)
        kernels.append({**k, "file": path.name, "format": "onnx", "nodes": nodes})
    for src in encoders.values():
        src.unlink(missing_ok=True)
    tmp = manifest.with_suffix(".tmp")
    tmp.write_text(json.dumps({"format": SUITE_FORMAT, "key": key, "reduce_range": reduce_range,
                               "reference": REFERENCE_KERNEL, "kernels": kernels}, indent=1))
    os.replace(tmp, manifest)
    return dest
