"""Where does unlabeled text come from? The user's own file, else the shipped general-domain corpora.

The user's domain text is best (recovery learns what it is shown: docstrings scored 0.96 on docstrings but 0.89 on
everyday sentences). Without it, calibration (int8 ranges, pruning scores) reads `calibration_en.txt.gz` — WordNet 3.0
usage examples and glosses turned into sentences — and recovery (distillation) trains on `recovery_en.txt.gz`,
everyday English written for the project: a student distilled on it is closer to the teacher on everyday sentences
than one distilled on WordNet's short examples (numbers in the top-level README). See README.md here for provenance
and licence, scripts/make-calibration-corpus for how both are made. Held-out evaluation sentences are passed as
`exclude` so recovery never trains on what the quality gate measures; the shipped recovery text also holds no
near-paraphrase of one.
"""

from __future__ import annotations

import collections
import functools
import gzip
import random
import re
from pathlib import Path
from typing import Iterable

from ..errors import InputError

CALIBRATION_CORPUS = Path(__file__).with_name("calibration_en.txt.gz")
RECOVERY_CORPUS = Path(__file__).with_name("recovery_en.txt.gz")
#: The quality gate's held-out sentences: never used for calibration or recovery.
HELD_OUT_SENTENCES = Path(__file__).resolve().parents[1] / "quality" / "data" / "eval_sentences.txt"


def held_out_sentences() -> list[str]:
    return HELD_OUT_SENTENCES.read_text(encoding="utf-8").splitlines() if HELD_OUT_SENTENCES.is_file() else []


def word_set(text: str) -> frozenset[str]:
    return frozenset(re.findall(r"[a-z0-9']+", text.lower()))


def near_copies(texts: Iterable[str], others: Iterable[str], threshold: float) -> set[int]:
    """Indices of `texts` that share `threshold` or more of their words (Jaccard of word sets) with one of `others`:
    how recovery text is kept from paraphrasing the held-out sentences (scripts/make-calibration-corpus applies the
    same rule) and how benchmarks/recovery.py finds the held-out sentences far from all it trained on."""
    sets = [word_set(o) for o in others]
    index: dict[str, list[int]] = collections.defaultdict(list)      # word → the others holding it
    for i, w in enumerate(sets):
        for word in w:
            index[word].append(i)
    near = set()
    for j, text in enumerate(texts):
        w = word_set(text)
        candidates = set().union(*(index.get(word, ()) for word in w))
        if any(len(w & sets[i]) / len(w | sets[i]) >= threshold for i in candidates):
            near.add(j)
    return near


def _normal(s: str) -> str:
    return " ".join(s.lower().split()).strip(" .!?")


def _read_lines(path: Path) -> list[str]:
    stamp = path.stat().st_mtime_ns if path.exists() else None
    return list(_read_lines_cached(path.resolve(), stamp))


@functools.lru_cache(maxsize=4)
def _read_lines_cached(path: Path, stamp: int | None) -> tuple[str, ...]:
    """Decompressing and splitting the 4 MB corpus costs ~0.5 s; builds and tests ask for it repeatedly."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rt", encoding="utf-8") as f:
                text = f.read()
        else:
            text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"--calibration-data {path}: file not found (expected a text file, one sentence or "
                         "passage per line; .txt or .txt.gz)") from None
    except (UnicodeDecodeError, OSError, EOFError) as exc:
        raise InputError(f"--calibration-data {path}: cannot read as UTF-8 text ({exc})") from None
    return tuple(" ".join(line.split()) for line in text.splitlines() if line.strip())


def load_calibration_texts(path: str | Path | None = None, *, limit: int | None = None, seed: int = 0,
                           exclude: Iterable[str] = (), recovery: bool = False) -> list[str]:
    """Unlabeled texts, shuffled with `seed`; `limit` of them when given; none of `exclude` nor of the held-out
    evaluation sentences (compared case- and space-insensitively). `recovery`: what distillation trains on — the
    user's file all the same, else the shipped recovery corpus instead of the calibration corpus."""
    src = Path(path) if path is not None else RECOVERY_CORPUS if recovery else CALIBRATION_CORPUS
    texts = _read_lines(src)
    banned = {_normal(e) for e in [*exclude, *held_out_sentences()]}
    if banned:
        texts = [t for t in texts if _normal(t) not in banned]
    if not texts:
        raise InputError(f"--calibration-data {src}: no usable lines (expected one text per line)")
    texts = list(texts)
    random.Random(seed).shuffle(texts)
    return texts[:limit] if limit is not None else texts
