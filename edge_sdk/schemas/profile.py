"""The DeviceProfile schema: what a device can hold, how fast it moves bytes and computes, in which precisions.

Units are in field names (GB, GB/s, TOPS, W). Peak compute is in tera-ops per second; for float precisions that is
TFLOPS. One MAC counts as 2 ops. Every number should be traceable to a source through `citations`.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from .base import Strict

Precision = Literal["fp32", "tf32", "fp16", "bf16", "fp8", "int16", "int8", "int4"]
#: Runtime efficiency keys: hardware precisions plus the plan precisions that split one (int8 has two recipes).
EfficiencyKey = Literal["fp32", "tf32", "fp16", "bf16", "fp8", "int16", "int8", "int4", "int8_dynamic", "int8_static",
                        "int4_weight_only"]
PRECISIONS: tuple[str, ...] = ("fp32", "tf32", "fp16", "bf16", "fp8", "int16", "int8", "int4")

IsaFeature = Literal[
    "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "avx_vnni",
    "amx_bf16", "amx_int8", "neon", "neon_dotprod", "neon_fp16", "neon_i8mm", "neon_bf16", "sve", "sve2",
]


class DeviceClass(str, Enum):
    mobile = "mobile"
    embedded = "embedded"
    automotive = "automotive"
    server = "server"
    host = "host"


class Confidence(str, Enum):
    vendor = "vendor"          # from a vendor document
    secondary = "secondary"    # a secondary source quoting the vendor
    derived = "derived"        # computed from tagged figures (formula in `note`)
    unverified = "unverified"  # general knowledge or conflicting sources: check before relying on it
    measured = "measured"      # read or measured on the device itself (the live host profile, calibrations)


class Source(Strict):
    id: str = Field(description="Short id, e.g. J2, that `citations` entries name; title and url say "
                                "which public document (or which of this project's measurements) it is")
    title: str
    url: str | None = None


class Citation(Strict):
    source: str | None = Field(None, description="Id of an entry in `sources`; None for derived/unverified values")
    confidence: Confidence
    note: str | None = None


class Efficiency(Strict):
    """Fractions of peak the roofline may assume; `calibrate` replaces them with measured values."""

    compute: float = Field(gt=0, le=4, description="fraction of dense peak reached by GEMMs (a calibration measures "
                                                  "above 1 where the profile's peak is too low, e.g. a VM hiding its "
                                                  "boost clock)")
    memory: float = Field(gt=0, le=8, description="fraction of peak DRAM bandwidth reached (a calibration measures "
                                                 "above 1 where activations stay in cache)")
    per_op_overhead_us: float = Field(ge=0, description="fixed launch/dispatch cost per operator, microseconds")
    per_run_overhead_us: float = Field(0.0, ge=0, description="fixed cost of one inference call, microseconds "
                                                             "(fitted by calibrate for graph-compiling runtimes; "
                                                             "op-by-op runtimes carry it in per_op_overhead_us)")


UnitKind = Literal["cpu", "gpu", "npu", "dla", "tpu", "dsp"]


class ComputeUnit(Strict):
    name: str = Field(description="Unique within the profile, e.g. 'gpu', 'dla', 'cpu'")
    kind: UnitKind
    description: str | None = None
    count: int = Field(1, ge=1, description="How many identical units (e.g. 2 DLAs, 12 CPU cores)")
    peak_tops_dense: dict[Precision, float] = Field(
        default_factory=dict, description="Peak tera-ops/s per precision (all units of this entry together)")
    peak_tops_sparse: dict[Precision, float] = Field(
        default_factory=dict, description="Peak with 2:4 structured sparsity (NVIDIA sparse tensor cores)")
    precisions: list[Precision] = Field(description="Precisions this unit executes natively")
    efficiency: Efficiency | None = Field(None, description="Overrides the planner's default for this unit kind")
    memory_bandwidth_gbps: float | None = Field(
        None, gt=0, description="DRAM bandwidth this unit sees when it differs from the profile's (e.g. a server's "
                                "host CPU next to HBM GPUs)")

    @field_validator("peak_tops_dense", "peak_tops_sparse")
    @classmethod
    def _positive(cls, v: dict[str, float]) -> dict[str, float]:
        for k, x in v.items():
            if x <= 0:
                raise ValueError(f"peak for {k} must be > 0 TOPS, got {x}")
        return v

    @model_validator(mode="after")
    def _peaks_are_supported(self) -> "ComputeUnit":
        for table in (self.peak_tops_dense, self.peak_tops_sparse):
            extra = sorted(set(table) - set(self.precisions))
            if extra:
                raise ValueError(f"unit '{self.name}' lists a peak for {extra} but not in `precisions`")
        return self

    @model_validator(mode="after")
    def _cpu_int8_has_a_peak(self) -> "ComputeUnit":
        """A CPU's int8 speed differs from its fp32 speed by 1-4x (VNNI, dot-product instructions or neither): without
        its own peak, int8 plans would be costed at another precision's and the int8-vs-fp32 choice be a guess."""
        if self.kind == "cpu" and "int8" in self.precisions and "int8" not in self.peak_tops_dense:
            raise ValueError(f"unit '{self.name}' (cpu) lists int8 in `precisions` but `peak_tops_dense` has no int8 "
                             f"peak; expected peak_tops_dense.int8 in TOPS (with its source in `citations`), or "
                             f"int8 removed from `precisions`")
        return self

    @property
    def has_sparse_tensor_cores(self) -> bool:
        return bool(self.peak_tops_sparse)


#: Runtimes edge-sdk knows by name. A profile may name any other runtime (a Rockchip NPU's RKNN, Hailo, a Mali
#: GPU's Arm NN, ...): the planner costs it from the unit's peaks and says edge-sdk cannot build for it yet.
KNOWN_RUNTIMES = ("onnxruntime", "litert", "tensorrt", "pytorch", "qnn", "coreml", "tidl", "neuropilot",
                  "openvino", "executorch")
RuntimeName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", description="a runtime's name, lower case: "
                                   + ", ".join(KNOWN_RUNTIMES) + " or any other (costed, not built)")]
#: Artifact formats: "openvino" is OpenVINO IR (model.xml + model.bin). Any other name is a format edge-sdk
#: cannot build yet (rknn, hef, ...).
KNOWN_FORMATS = ("onnx", "tflite", "openvino", "engine", "pt", "dlc", "mlpackage")
ArtifactFormat = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", description="artifact format: "
                                      + ", ".join(KNOWN_FORMATS) + " or any other (not built)")]


class GemmTiming(Strict):
    """One measured linear layer (tokens × in_features → out_features) and its time: `calibrate` fills a table of
    these per precision, and the cost model reads GEMM time off it instead of the roofline (kernel efficiency on a
    CPU depends on the shape far more than one fraction of peak can say)."""

    m: int = Field(gt=0, description="tokens (rows)")
    k: int = Field(gt=0, description="in_features")
    n: int = Field(gt=0, description="out_features")
    ms: float = Field(gt=0)


class Runtime(Strict):
    name: RuntimeName
    version: str | None = None
    provider: str = Field(description="Execution provider or delegate, e.g. CPUExecutionProvider, xnnpack, edgetpu")
    unit: str = Field(description="Name of the compute unit it runs on")
    precisions: list[Precision] = Field(description="Precisions this runtime+provider executes on that unit")
    format: ArtifactFormat
    efficiency: dict[EfficiencyKey, Efficiency] = Field(
        default_factory=dict, description="Per precision, overrides the unit's efficiency for this runtime "
                                          "(e.g. measured: LiteRT's fp32 kernels are faster than ORT's here, its "
                                          "int8 kernels slower). Keys: a hardware precision (int8 covers both int8 "
                                          "recipes) or a plan precision (int8_dynamic, int8_static) for one recipe; "
                                          "`edge-sdk calibrate` writes measured ones")
    gemm_ms: dict[EfficiencyKey, list[GemmTiming]] = Field(
        default_factory=dict, description="measured GEMM times per precision (from `edge-sdk calibrate`)")
    note: str | None = None


PlanPrecision = Literal["fp32", "fp16", "bf16", "int8_dynamic", "int8_static", "int4_weight_only"]


class ReferenceResult(Strict):
    """A published whole-model latency on this device: what `calibrate --from-published` fits the runtime
    efficiencies to, or, when `reserved_for_validation`, what it only checks its predictions against."""

    model: str = Field(description="A config name in examples/configs (e.g. bert-base-mlm) or a path to a "
                                   "transformers config.json")
    batch: int = Field(1, ge=1)
    seq_len: int | None = Field(None, ge=1, description="Tokens per sample (text models; for encoder-family vision "
                                                        "models such as BEiT the patch count + 1)")
    image_size: int | None = Field(None, ge=1, description="Image side in pixels (ViT-family models)")
    precision: PlanPrecision = Field(description="Plan precision the published run used (fp16 for AI Hub 'float' "
                                                 "on the HTP, int8_static for MLPerf/TensorRT int8)")
    runtime: RuntimeName
    provider: str = Field(description="As in the profile's `runtimes` (name + provider must match one)")
    latency_ms: float | None = Field(None, gt=0, description="Published latency of one batch")
    throughput_per_s: float | None = Field(None, gt=0, description="Published samples/s; latency = batch / "
                                                                  "throughput (only when no latency is published)")
    statistic: str | None = Field(None, description="Which latency was published: mean, median, p90 (MLPerf "
                                                    "SingleStream), min, ...")
    source: str = Field(description="Id of an entry in `sources` that has a public URL")
    reserved_for_validation: bool = Field(False, description="Never fitted on; only predicted and compared")
    note: str | None = None

    @model_validator(mode="after")
    def _one_measure(self) -> "ReferenceResult":
        if (self.latency_ms is None) == (self.throughput_per_s is None):
            raise ValueError("give exactly one of latency_ms or throughput_per_s")
        return self

    @property
    def published_latency_ms(self) -> float:
        if self.latency_ms is not None:
            return self.latency_ms
        return self.batch / self.throughput_per_s * 1e3  # type: ignore[operator]


class PowerRange(Strict):
    min_w: float = Field(gt=0)
    max_w: float = Field(gt=0)

    @model_validator(mode="after")
    def _order(self) -> "PowerRange":
        if self.max_w < self.min_w:
            raise ValueError(f"max_w ({self.max_w}) < min_w ({self.min_w})")
        return self


class DeviceProfile(Strict):
    schema_version: Literal[1] = 1
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", description="Command-line name, e.g. jetson-orin-nano")
    display_name: str
    device_class: DeviceClass
    description: str
    aliases: list[str] = Field(default_factory=list)
    architecture: Literal["x86_64", "aarch64", "armv7"]
    os: str | None = None
    ssh: bool = Field(True, description="Whether edge-sdk can deploy to it over SSH")
    memory_total_gb: float = Field(gt=0)
    memory_usable_gb: float = Field(gt=0, description="What a model may use after OS/runtime (per accelerator "
                                                       "for multi-accelerator nodes)")
    memory_bandwidth_gbps: float = Field(gt=0, description="Peak DRAM bandwidth per accelerator (GB/s)")
    unified_memory: bool = False
    compute_units: list[ComputeUnit] = Field(min_length=1)
    runtimes: list[Runtime] = Field(min_length=1)
    isa_features: list[IsaFeature] = Field(default_factory=list)
    accelerator_count: int = Field(1, ge=1, description="Identical accelerators (GPUs) in the node")
    interconnect_bandwidth_gbps: float | None = Field(
        None, gt=0, description="Accelerator-to-accelerator bandwidth (e.g. NVLink), GB/s per direction pair")
    power_w: PowerRange | None = None
    sources: list[Source] = Field(default_factory=list)
    citations: dict[str, Citation] = Field(
        default_factory=dict, description="Dotted field path → where the number comes from and how sure we are")
    confidence: Confidence = Field(description="Overall confidence of the profile's numbers")
    reference_results: list[ReferenceResult] = Field(
        default_factory=list, description="Published whole-model latencies on this device (MLPerf, Qualcomm AI "
                                          "Hub, vendor pages); `calibrate --from-published` fits to the ones not "
                                          "reserved for validation")
    calibration_sibling: str | None = Field(
        None, pattern=r"^[a-z0-9][a-z0-9-]*$",
        description="Name of a profile whose accelerator has the same architecture (another module of the same SoC, "
                    "e.g. Jetson Orin NX -> jetson-agx-orin): `calibrate --from-published` gives a runtime that has "
                    "no result here that may be fitted the efficiencies fitted on the sibling for the same runtime "
                    "and precision (fractions of each device's own peaks), and says so. Needs "
                    "`citations.calibration_sibling` saying why the two share an architecture")

    @model_validator(mode="after")
    def _consistent(self) -> "DeviceProfile":
        if self.memory_usable_gb > self.memory_total_gb:
            raise ValueError(f"memory_usable_gb ({self.memory_usable_gb}) exceeds memory_total_gb "
                             f"({self.memory_total_gb})")
        names = [u.name for u in self.compute_units]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"duplicate compute unit name(s) {dup}")
        for rt in self.runtimes:
            if rt.unit not in names:
                raise ValueError(f"runtime '{rt.name}/{rt.provider}' refers to unknown compute unit '{rt.unit}' "
                                 f"(expected one of {names})")
        ids = {s.id for s in self.sources}
        for path, c in self.citations.items():
            if c.source is not None and c.source not in ids:
                raise ValueError(f"citation for '{path}' names source '{c.source}' which is not in `sources` "
                                 f"(expected one of {sorted(ids)})")
        urls = {s.id: s.url for s in self.sources}
        runtimes = {(r.name, r.provider) for r in self.runtimes}
        for i, ref in enumerate(self.reference_results):
            if ref.source not in ids:
                raise ValueError(f"reference_results.{i}.source: '{ref.source}' is not in `sources` "
                                 f"(expected one of {sorted(ids)})")
            if not (urls.get(ref.source) or "").startswith(("http://", "https://")):
                raise ValueError(f"reference_results.{i}.source: source '{ref.source}' has no public URL "
                                 f"(a published result must say where it was published)")
            if (ref.runtime, ref.provider) not in runtimes:
                raise ValueError(f"reference_results.{i}.runtime: '{ref.runtime}/{ref.provider}' is not one of "
                                 f"the profile's runtimes {sorted(f'{a}/{b}' for a, b in runtimes)}")
        if self.accelerator_count > 1 and self.interconnect_bandwidth_gbps is None:
            raise ValueError("accelerator_count > 1 needs interconnect_bandwidth_gbps")
        if self.calibration_sibling is not None:
            if self.calibration_sibling == self.name:
                raise ValueError(f"calibration_sibling: '{self.name}' names the profile itself (expected another "
                                 f"profile with the same accelerator architecture)")
            if "calibration_sibling" not in self.citations:
                raise ValueError("calibration_sibling: needs citations.calibration_sibling (the public source saying "
                                 "the two devices share an accelerator architecture)")
        return self

    def unit(self, name: str) -> ComputeUnit:
        for u in self.compute_units:
            if u.name == name:
                return u
        raise KeyError(name)

    def peak_tops(self, precision: str) -> float:
        """Best dense peak for a precision over all units (0 when no unit has a number for it)."""
        return max((u.peak_tops_dense.get(precision, 0.0) for u in self.compute_units), default=0.0)
