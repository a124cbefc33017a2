"""`--eval-data` for vision models: image files (a list or a directory), .npy/.npz arrays, and the one-line errors
(exit 2) that name the file and the shape the model takes; `--task-data` files for both kinds of model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edge_sdk.errors import InputError
from edge_sdk.quality import ImageFormat, image_format, load_eval_data, load_task_data

ROOT = Path(__file__).resolve().parents[1]
GRAY32 = ImageFormat(image_size=32, channels=1)
RGB32 = ImageFormat(image_size=32, channels=3)


def _png(path: Path, value: int, size=(20, 12), mode="L") -> Path:
    Image.new(mode, size, value if mode == "L" else (value, 0, 255 - value)).save(path)
    return path


def test_image_files_are_resized_scaled_and_normalised(tmp_path):
    files = [_png(tmp_path / "a.png", 0), _png(tmp_path / "b.png", 255), _png(tmp_path / "c.jpg", 51)]
    ev = load_eval_data([str(f) for f in files], kind="vision", image=GRAY32)
    assert ev.inputs.shape == (3, 1, 32, 32) and ev.inputs.dtype == np.float32
    np.testing.assert_allclose(ev.inputs[0], -1.0)             # black → (0 - 0.5) / 0.5
    np.testing.assert_allclose(ev.inputs[1], 1.0)              # white
    assert abs(float(ev.inputs[2].mean()) - (51 / 255 - 0.5) / 0.5) < 0.02   # jpg: lossy, close
    rgb = load_eval_data(str(files[0]), kind="vision", image=RGB32)  # grayscale file, RGB model: converted
    assert rgb.inputs.shape == (1, 3, 32, 32)


def test_a_directory_of_images_in_name_order_and_a_subset(tmp_path):
    for i, v in enumerate([10, 60, 110, 160, 210]):
        _png(tmp_path / f"img{i}.png", v, mode="RGB")
    (tmp_path / "notes.txt").write_text("not an image")       # other files in the directory are ignored
    ev = load_eval_data(tmp_path, kind="vision", image=RGB32)
    assert ev.inputs.shape == (5, 3, 32, 32) and "5 of 5 images" in ev.name
    assert list(ev.inputs[:, 0, 0, 0]) == sorted(ev.inputs[:, 0, 0, 0])
    three = load_eval_data(tmp_path, 3, kind="vision", image=RGB32)
    assert len(three) == 3 and np.array_equal(three.inputs[0], ev.inputs[0])
    assert np.array_equal(three.inputs[-1], ev.inputs[-1])


def test_arrays_npy_and_npz(tmp_path):
    u8 = np.full((4, 32, 32), 255, dtype=np.uint8)              # [N, H, W] grayscale pixels 0-255
    np.save(tmp_path / "gray.npy", u8)
    ev = load_eval_data(tmp_path / "gray.npy", kind="vision", image=RGB32)
    assert ev.inputs.shape == (4, 3, 32, 32) and np.allclose(ev.inputs, 1.0)   # repeated over RGB, normalised
    ready = np.random.default_rng(0).normal(size=(6, 1, 32, 32)).astype(np.float32)  # float: ready pixel_values
    np.savez(tmp_path / "px.npz", pixel_values=ready)
    assert np.array_equal(load_eval_data(tmp_path / "px.npz", kind="vision", image=GRAY32).inputs, ready)
    np.savez(tmp_path / "other.npz", whatever=ready)          # the only array, whatever its name
    assert len(load_eval_data(tmp_path / "other.npz", kind="vision", image=GRAY32)) == 6


def test_mean_and_std_come_from_the_model_directory(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({"image_mean": [0.25], "image_std": [0.25]}))
    fmt = image_format(tmp_path, 32, 1)
    assert fmt.mean == (0.25,) and fmt.std == (0.25,)
    np.save(tmp_path / "x.npy", np.zeros((1, 32, 32), dtype=np.uint8))
    assert np.allclose(load_eval_data(tmp_path / "x.npy", kind="vision", image=fmt).inputs, -1.0)
    assert image_format(tmp_path / "config.json", 32, 1).mean == (0.25,)
    assert image_format("minilm").mean == (0.5,)


@pytest.mark.parametrize("make,expected", [
    (lambda d: np.save(d / "bad.npy", np.zeros((2, 32, 32, 1), np.float32)), r"looks channels-last.*\[N, 1, 32, 32\]"),
    (lambda d: np.save(d / "bad.npy", np.zeros((2, 1, 28, 28), np.float32)),
     r"shape \[2, 1, 28, 28\].*\[N, 1, 32, 32\]"),
    (lambda d: np.save(d / "bad.npy", np.zeros((2, 3, 32, 32), np.float32)), r"\[N, 1, 32, 32\] or \[N, 32, 32\]"),
    (lambda d: np.save(d / "bad.npy", np.zeros((32, 32), np.float32)), r"shape \[32, 32\]"),
    (lambda d: np.save(d / "bad.npy", np.zeros((2, 32, 32), np.int64)), r"dtype int64.*uint8 pixels"),
    (lambda d: np.save(d / "bad.npy", np.full((1, 32, 32), np.nan, np.float32)), "NaN"),
    (lambda d: np.save(d / "bad.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True), "pickled"),
    (lambda d: (d / "bad.npy").write_bytes(b"not numpy"), "not a readable .npy"),
    (lambda d: np.savez(d / "bad.npz", a=np.zeros(1), b=np.zeros(1)), r"no array named pixel_values / inputs"),
    (lambda d: (d / "bad.png").write_bytes(b"\x89PNG garbage"), "not a readable image"),
    (lambda d: (d / "bad.txt").write_text("a sentence\n"), "vision model; expected image files"),
    (lambda d: None, "no such file"),
])
def test_bad_image_inputs_name_the_file_and_the_expected_shape(tmp_path, make, expected):
    make(tmp_path)
    target = next(iter(sorted(tmp_path.glob("bad.*"))), tmp_path / "missing.npy")
    with pytest.raises(InputError, match=expected) as info:
        load_eval_data(target, kind="vision", image=GRAY32)
    assert str(target) in str(info.value) and info.value.exit_code == 2 and "\n" not in str(info.value)


def test_empty_directory_and_text_model_given_images(tmp_path):
    with pytest.raises(InputError, match="no image files"):
        load_eval_data(tmp_path, kind="vision", image=GRAY32)
    np.save(tmp_path / "x.npy", np.zeros((1, 32, 32), np.uint8))
    with pytest.raises(InputError, match="evaluation data for vision models"):
        load_eval_data(tmp_path / "x.npy")
    with pytest.raises(InputError, match="2 files given"):
        load_eval_data([tmp_path / "x.npy", tmp_path / "x.npy"])


# ------------------------------------------------------------------------------------------------ task data
def test_task_data_npz_and_text(tmp_path):
    px = np.zeros((6, 32, 32), np.uint8)
    np.savez(tmp_path / "t.npz", inputs=px, labels=np.array(["b", "a", "b", "a", "c", "c"]),
             train_mask=np.array([1, 1, 1, 0, 0, 0], bool))
    t = load_task_data(tmp_path / "t.npz", kind="vision", image=GRAY32)
    assert t.inputs.shape == (6, 1, 32, 32) and t.classes == ["a", "b", "c"] and list(t.labels) == [1, 0, 1, 0, 2, 2]
    assert t.train_mask.sum() == 3
    (tmp_path / "t.tsv").write_text("text\tlabel\ngood movie\tpos\nbad film\tneg\nfine\tpos\n")
    t = load_task_data(tmp_path / "t.tsv")
    assert t.inputs == ["good movie", "bad film", "fine"] and t.classes == ["neg", "pos"] and t.train_mask is None
    (tmp_path / "t.jsonl").write_text('{"text": "a", "label": 1, "split": "train"}\n'
                                      '{"text": "b", "label": 0, "split": "test"}\n')
    t = load_task_data(tmp_path / "t.jsonl")
    assert list(t.train_mask) == [True, False] and t.classes == ["0", "1"]


@pytest.mark.parametrize("name,write,expected", [
    ("t.npz", lambda p: np.savez(p, inputs=np.zeros((3, 32, 32), np.uint8)), r"no array 'labels'"),
    ("t.npz", lambda p: np.savez(p, inputs=np.zeros((3, 32, 32), np.uint8), labels=np.zeros(2)), "one label per"),
    ("t.npz", lambda p: np.savez(p, inputs=np.zeros((3, 32, 32), np.uint8), labels=np.zeros(3)), "at least 2 classes"),
    ("t.npz", lambda p: np.savez(p, inputs=np.zeros((3, 8, 8), np.uint8), labels=np.arange(3)), r"\[N, 1, 32, 32\]"),
    ("t.npz", lambda p: np.savez(p, inputs=np.zeros((2, 32, 32), np.uint8), labels=np.arange(2),
                                 train_mask=np.ones(2, bool)), "every example on one side"),
    ("t.tsv", lambda p: p.write_text("only text\n"), r"line 1: expected 'text<TAB>label'"),
    ("t.jsonl", lambda p: p.write_text('{"text": "a", "label": 1}\n{"label": 2}\n'), r"line 2: expected"),
    ("t.csv", lambda p: p.write_text("a,1\n"), r"\.tsv \(text<TAB>label\) or a \.jsonl"),
])
def test_bad_task_data_names_the_file(tmp_path, name, write, expected):
    p = tmp_path / name
    write(p)
    kind = "vision" if name.endswith(".npz") else "text"
    with pytest.raises(InputError, match=expected) as info:
        load_task_data(p, kind=kind, image=GRAY32)
    assert str(p) in str(info.value) and info.value.exit_code == 2


def test_cli_build_with_a_list_of_image_files_and_bad_task_data(tmp_path):
    """Repeated --eval-data image files feed a vision build; a bad --task-data fails first with one line, exit 2."""
    for i in range(3):
        _png(tmp_path / f"{i}.png", 40 * i, mode="RGB")
    cfg = ROOT / "examples" / "configs" / "tiny-vit.json"
    (tmp_path / "task.npz").write_bytes(b"junk")
    r = subprocess.run([sys.executable, "-m", "edge_sdk", "build", "--model", str(cfg), "--runtime", "onnxruntime",
                        "--eval-data", str(tmp_path / "0.png"), "--eval-data", str(tmp_path / "1.png"),
                        "--task-data", str(tmp_path / "task.npz"), "-o", str(tmp_path / "b")],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "task.npz" in r.stderr and not (tmp_path / "b").exists()
