"""CLI defects found by adversarial and new-user trials (issue 14): usage errors are one line like every other
input error, output paths are checked before the work, `build --plan` builds the plan's model, sizes below 1 MB
are not "0 MB". In-process through the real entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_sdk.cli import main

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "examples" / "configs" / "tiny-bert.json"


def run(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    return exc.value.code, out, err


def one_error(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.mark.parametrize("args,needles", [
    (["plan", "--seq-len", "-5"], ["edge-sdk plan", "'--seq-len'", "greater than or equal to 1", "'-5'"]),
    (["plan", "--seq-len=-5"], ["'--seq-len'", "'-5'"]),
    (["bench", "--local", "--iterations", "abc"], ["edge-sdk bench", "'--iterations'", "integer", "'abc'"]),
    (["plan", "--bogus"], ["No such option: --bogus", "edge-sdk plan --help"]),
    (["bundle", "verify"], ["Missing argument", "path"]),
    (["nosuchcommand"], ["No such command 'nosuchcommand'"]),
])
def test_usage_errors_are_one_line_exit_2(capsys, args, needles):
    code, _, err = run(capsys, *args)
    line = one_error(err)
    assert code == 2 and "╭" not in err
    for n in needles:
        assert n in line, (n, line)


def test_help_and_exit_codes_of_commands_are_unchanged(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "Usage" in out
    code, out, _ = run(capsys, "devices", "--class", "server")
    assert code == 0 and "device profiles" in out


def test_plan_output_that_is_a_directory_is_refused_before_planning(capsys, tmp_path, monkeypatch):
    import edge_sdk.api as api

    monkeypatch.setattr(api, "plan", lambda *a, **k: pytest.fail("planned before checking -o"))
    code, _, err = run(capsys, "plan", "--model", str(TINY), "-o", str(tmp_path))
    line = one_error(err)
    assert code == 2 and f"-o {tmp_path}: is a directory" in line


def test_build_output_below_a_file_is_refused_before_any_work(capsys, tmp_path, monkeypatch):
    import edge_sdk.builder.sources as sources
    from edge_sdk import plan

    p = tmp_path / "p.json"
    from edge_sdk.planner import save_plan

    save_plan(plan(str(TINY), "host", runtime="onnxruntime").best, p)
    monkeypatch.setattr(sources, "load_for_build", lambda *a, **k: pytest.fail("the build started"))
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    code, _, err = run(capsys, "build", "--plan", str(p), "-o", str(blocker / "sub"))
    line = one_error(err)
    assert code == 2 and f"'{blocker}' is a file, not a directory" in line
    (tmp_path / "out.edgepkg").mkdir()  # the archive beside the bundle cannot be written either
    code, _, err = run(capsys, "build", "--plan", str(p), "-o", str(tmp_path / "out"))
    assert code == 2 and "is a directory" in one_error(err) and "--no-archive" in err
    (tmp_path / "notabundle").mkdir()
    (tmp_path / "notabundle" / "keep.txt").write_text("mine")
    code, _, err = run(capsys, "build", "--plan", str(p), "-o", str(tmp_path / "notabundle"))
    assert code == 2 and "not a bundle" in one_error(err)


def test_report_output_that_is_a_file_is_refused_before_the_report(capsys, tmp_path, monkeypatch):
    import edge_sdk.api as api

    monkeypatch.setattr(api, "report", lambda *a, **k: pytest.fail("the report ran before checking -o"))
    f = tmp_path / "f"
    f.write_text("x")
    code, _, err = run(capsys, "report", "-o", str(f))
    assert code == 2 and "exists and is not a directory" in one_error(err)


def test_build_plan_without_model_builds_the_plans_model(capsys, tmp_path, monkeypatch):
    """`plan --model tiny-bert.json -o p.json` then `build --plan p.json` (what plan prints) builds tiny-bert."""
    import edge_sdk.builder as builder

    p = tmp_path / "p.json"
    code, _, err = run(capsys, "plan", "--model", str(TINY), "--runtime", "onnxruntime", "-o", str(p))
    assert code == 0 and f"edge-sdk build --plan {p}" in err
    seen = {}

    def fake_build(plans, out_dir, **kw):
        seen["plan"] = plans
        raise SystemExit(0)

    monkeypatch.setattr(builder, "build", fake_build)
    with pytest.raises(SystemExit):
        main(["build", "--plan", str(p), "-o", str(tmp_path / "b")])
    assert seen["plan"].model_name == "tiny-bert"


def test_sub_mb_sizes_are_not_zero_mb():
    from edge_sdk.reporting.svg import fmt_mb

    assert fmt_mb(0.31) == "310 kB" and fmt_mb(2.34) == "2.3 MB" and fmt_mb(44.2) == "44 MB"
    assert fmt_mb(2800) == "2.8 GB"


def test_save_plan_into_a_directory_is_one_input_error(tmp_path):
    """save_plan refuses a directory with one line too (the API path, not only the CLI)."""
    from edge_sdk.errors import InputError
    from edge_sdk.planner import save_plan
    from edge_sdk import plan

    best = plan(str(TINY), "host").best
    with pytest.raises(InputError, match="is a directory"):
        save_plan(best, tmp_path)
    assert json.loads(save_plan(best, tmp_path / "p.json").read_text())["model_name"] == "tiny-bert"
