"""The README's Python examples run as written, and the API returns what the CLI prints."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), flags=re.S)


def test_the_readme_has_python_examples():
    blocks = _python_blocks()
    assert blocks and any("edge_sdk.plan(" in b for b in blocks)


@pytest.mark.slow
@pytest.mark.parametrize("i", range(len(_python_blocks())))
def test_readme_python_example_runs_as_written(i, tmp_path):
    code = _python_blocks()[i]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, f"README example {i} failed:\n{r.stdout[-2000:]}\n{r.stderr[-4000:]}"
    assert r.stdout.strip(), "the example printed nothing"


def test_api_plan_equals_the_cli_plan():
    import edge_sdk

    ps = edge_sdk.plan("minilm", device="jetson")
    r = subprocess.run([str(REPO / ".venv" / "bin" / "edge-sdk") if (REPO / ".venv" / "bin" / "edge-sdk").exists()
                        else "edge-sdk", "plan", "--device", "jetson", "--json"],
                       capture_output=True, text=True, timeout=300, cwd=REPO)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == json.loads(ps.model_dump_json())
    assert ps.best.model_spec is not None and ps.best.model_spec.name == ps.model_name == "all-MiniLM-L6-v2"
