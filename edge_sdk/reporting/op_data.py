"""What do device-only runtimes support, according to the op lists shipped in edge_sdk/data/op_support/?

Execution providers, delegates and compilers that exist only on the device (TensorRT, DLA, QNN, Core ML, the Edge
TPU compiler, NNAPI, the VX delegate, TIDL) cannot be asked here, so their operator lists ship as data, each with
the runtime version it describes, its source URL and a confidence. A malformed file is a bug in edge-sdk, but it
still gets an error that names the file and field.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Literal, Union

import yaml
from pydantic import Field, ValidationError
from ..schemas.base import Strict

from ..errors import InputError, format_validation_error

OP_SUPPORT_DIR = Path(__file__).resolve().parent.parent / "data" / "op_support"


class AppliesTo(Strict):
    runtime: str
    provider: str
    versions: tuple[int, int] | None = Field(None, description="major versions [low, high] this list is for")
    on_unsupported: Literal["falls_back", "fails"]
    fallback_to: str | None = None
    silent: bool = True
    note: str | None = None


class PartialOp(Strict):
    status: Literal["partial"] = "partial"
    note: str
    const_inputs: list[int] = Field(default_factory=list,
                                    description="the op maps only when these inputs are constants")


OpEntry = Union[None, str, PartialOp]


class Decomposed(Strict):
    """An op that an export at an older opset writes as other ops (torch.onnx, TorchScript exporter)."""

    since_opset: int = Field(description="the ONNX opset that introduced the op; exports below it decompose it")
    into: list[str] = Field(min_length=1, description="the op types the exporter writes instead")


class SupportList(Strict):
    schema_version: Literal[1] = 1
    kind: Literal["support"] = "support"
    title: str
    op_set: Literal["onnx", "tflite"]
    runtime_version: str
    applies_to: list[AppliesTo] = Field(min_length=1)
    source_url: str
    confidence: Literal["vendor", "secondary", "unverified"]
    checked: str
    max_opset: int | None = None
    requires_static_shapes: bool = False
    first_unsupported_stops: bool = False
    precisions: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    fixes: dict[str, str] = Field(default_factory=dict,
                                  description="op -> what to change when the runtime refuses a graph with it")
    decomposed: dict[str, Decomposed] = Field(default_factory=dict, description="refused op -> the ops an older-"
                                              "opset export writes instead (checked against this list)")
    ops: dict[str, OpEntry]
    file: str = ""

    def entry(self, op: str) -> tuple[bool, OpEntry]:
        """(listed, entry) for an op name ('domain:op' outside the default domain)."""
        if op in self.ops:
            return True, self.ops[op]
        return False, None


MapEntry = Union[list[str], "ConditionalMap"]


class ConditionalMap(Strict):
    const_input: int
    then: list[str]
    else_: list[str] = Field(alias="else")


class TfliteMapping(Strict):
    schema_version: Literal[1] = 1
    kind: Literal["mapping"] = "mapping"
    title: str
    source_url: str
    confidence: Literal["vendor", "secondary", "unverified"]
    checked: str
    map: dict[str, Union[list[str], ConditionalMap]]
    file: str = ""


def _read(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML ({' '.join(str(exc).split())[:200]})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping with 'kind: support' or 'kind: mapping'")
    return data


def load_support_file(path: str | Path) -> SupportList:
    p = Path(path)
    try:
        lst = SupportList.model_validate(_read(p))
    except ValidationError as exc:
        raise InputError(format_validation_error(str(p), exc)) from None
    lst.file = p.name
    return lst


@functools.lru_cache(maxsize=4)
def support_lists(directory: str = str(OP_SUPPORT_DIR)) -> tuple[SupportList, ...]:
    out = []
    for p in sorted(Path(directory).glob("*.yaml")):
        if _read(p).get("kind") == "support":
            out.append(load_support_file(p))
    return tuple(out)


@functools.lru_cache(maxsize=4)
def tflite_mapping(directory: str = str(OP_SUPPORT_DIR)) -> TfliteMapping:
    p = Path(directory) / "onnx_to_tflite.yaml"
    try:
        m = TfliteMapping.model_validate(_read(p))
    except ValidationError as exc:
        raise InputError(format_validation_error(str(p), exc)) from None
    m.file = p.name
    return m


def _major(version: str | None) -> int | None:
    m = re.match(r"\s*(\d+)", version or "")
    return int(m.group(1)) if m else None


def support_for(runtime: str, provider: str, version: str | None,
                lists: tuple[SupportList, ...] | None = None) -> tuple[SupportList, AppliesTo, str | None] | None:
    """The list describing this runtime+provider (version-matched when the profile pins one), the matching
    `applies_to` entry, and a note when the versions may differ. None when no list ships for it."""
    lists = support_lists() if lists is None else lists
    candidates = [(lst, a) for lst in lists for a in lst.applies_to
                  if a.runtime == runtime and a.provider.lower() == provider.lower()]
    if not candidates:
        return None
    major = _major(version)
    if major is not None:
        exact = [(lst, a) for lst, a in candidates if a.versions and a.versions[0] <= major <= a.versions[1]]
        if exact:
            lst, a = exact[0]
            note = None
            if _major(lst.runtime_version) != major or str(version) not in lst.runtime_version:
                note = (f"the list describes {lst.runtime_version}; the profile pins {version}: ops added in "
                        f"between may be missing on the device")
            return lst, a, note
    unversioned = [(lst, a) for lst, a in candidates if a.versions is None]
    # no pinned version (or none that matches): the newest list, since profiles describe current software
    lst, a = unversioned[0] if unversioned else max(candidates, key=lambda c: c[1].versions[1])  # type: ignore
    note = None
    if version is None:
        note = f"the profile pins no version; the list describes {lst.runtime_version}"
    elif a.versions is None:
        note = f"the list describes {lst.runtime_version}; the profile pins {version}"
    else:
        note = f"no list for version {version}; using the one for {lst.runtime_version}"
    return lst, a, note
