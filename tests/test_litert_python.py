"""Which python converts to LiteRT: $EDGE_SDK_LITERT_PYTHON, else a .venv-litert in the current directory, else one
beside the active venv, else the source checkout's; the error names every place looked and the fix. (No LiteRT
environment is needed for these tests.)"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from edge_sdk.passes import export_tflite as et
from edge_sdk.passes.export_tflite import LITERT_PYTHON_ENV, LiteRtEnvError, litert_candidates, litert_python


def _fake_venv(root: Path) -> Path:
    python = root / ".venv-litert" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("#!/bin/sh\n")
    python.chmod(0o755)
    return python


@pytest.fixture
def nowhere(tmp_path, monkeypatch):
    """No env var, an empty cwd, an active venv and a 'source checkout' that have no .venv-litert."""
    monkeypatch.delenv(LITERT_PYTHON_ENV, raising=False)
    cwd, project, checkout = (tmp_path / d for d in ("cwd", "project", "checkout"))
    for d in (cwd, project / ".venv", checkout):
        d.mkdir(parents=True)
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "prefix", str(project / ".venv"))
    monkeypatch.setattr(et, "SOURCE_CHECKOUT", checkout)
    return cwd, project, checkout


@pytest.mark.skipif(os.name == "nt", reason="POSIX venv layout")
def test_resolution_order(nowhere, monkeypatch, tmp_path):
    cwd, project, checkout = nowhere
    assert litert_candidates() == [d / ".venv-litert" / "bin" / "python" for d in (cwd, project, checkout)]
    in_checkout = _fake_venv(checkout)
    assert litert_python() == in_checkout
    beside_venv = _fake_venv(project)
    assert litert_python() == beside_venv
    in_cwd = _fake_venv(cwd)
    assert litert_python() == in_cwd
    explicit = _fake_venv(tmp_path / "elsewhere")
    monkeypatch.setenv(LITERT_PYTHON_ENV, str(explicit))
    assert litert_python() == explicit


def test_missing_everywhere_names_every_place_and_the_fix(nowhere):
    with pytest.raises(LiteRtEnvError) as info:
        litert_python()
    msg = str(info.value)
    assert "scripts/setup-litert" in msg and LITERT_PYTHON_ENV in msg and "\n" not in msg
    for place in litert_candidates():
        assert str(place) in msg


def test_a_wrong_override_is_an_error_not_a_fallback(nowhere, monkeypatch, tmp_path):
    cwd, _, _ = nowhere
    _fake_venv(cwd)
    monkeypatch.setenv(LITERT_PYTHON_ENV, str(tmp_path / "no-such-python"))
    with pytest.raises(LiteRtEnvError, match="no-such-python.*scripts/setup-litert"):
        litert_python()
