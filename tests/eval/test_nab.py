"""The NAB scorer against the benchmark's definition, then against NAB's published results."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from safety_nexus.core.errors import EvalError
from safety_nexus.eval.nab import PROFILES, load_corpus, read_scores, score_corpus


def sigma(y: float) -> float:
    """NAB's scaled sigmoid, written out independently of the module."""
    return -1.0 if y > 3.0 else 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


def write_corpus(root: Path, files: dict[str, tuple[int, list[tuple[int, int]]]]) -> None:
    """Files of `n` rows at 5-minute steps, with windows given as row ranges."""
    labels: dict[str, list[list[str]]] = {}
    for name, (n, windows) in files.items():
        path = root / "data" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        stamps = np.datetime64("2020-01-01T00:00:00") + np.arange(n) * np.timedelta64(300, "s")
        text = [str(t).replace("T", " ") for t in stamps]
        path.write_text("timestamp,value\n" + "".join(f"{t},{i}\n" for i, t in enumerate(text)))
        labels[name] = [[text[s] + ".000000", text[e] + ".000000"] for s, e in windows]
    (root / "labels").mkdir(parents=True, exist_ok=True)
    (root / "labels" / "combined_windows.json").write_text(json.dumps(labels))


def scores_at(n: int, hits: dict[int, float]) -> np.ndarray:
    s = np.zeros(n)
    for row, value in hits.items():
        s[row] = value
    return s


@pytest.fixture
def one_window(tmp_path: Path) -> Path:
    # 100 rows: probation 15 rows; one window over rows 40..49 (width 10)
    write_corpus(tmp_path, {"cat/a.csv": (100, [(40, 49)])})
    return tmp_path


def test_probation_and_windows_follow_the_definition(one_window: Path) -> None:
    corpus = load_corpus(one_window)
    (f,) = corpus.files
    assert f.probation == 15
    assert f.windows == ((40, 49),)
    assert f.category == "cat"


def test_earliest_detection_in_window_counts(one_window: Path) -> None:
    corpus = load_corpus(one_window)
    # a detection in probation (ignored), one mid-window, one later in the window
    scores = {"cat/a.csv": scores_at(100, {10: 1.0, 45: 0.9, 48: 0.95})}
    result = score_corpus(corpus, scores)
    std = result["standard"]
    expected = sigma(-(49 - 45 + 1) / 10) / sigma(-1.0)
    assert std.threshold == 0.9
    assert std.raw == pytest.approx(expected)
    assert std.normalized == pytest.approx(100 * (expected + 1) / 2)
    assert std.files[0].tp == 1
    assert std.files[0].fp == 0
    assert std.files[0].fn == 0


def test_false_positives_cost_by_distance_past_the_window(one_window: Path) -> None:
    corpus = load_corpus(one_window)
    # detect at the window's left edge (worth exactly A_TP) and twice outside it
    scores = {"cat/a.csv": scores_at(100, {20: 1.0, 40: 1.0, 55: 1.0})}
    for profile in PROFILES:
        result = score_corpus(corpus, scores, [profile])[profile.name]
        before = -profile.fp  # no window before row 20
        after = profile.fp * sigma(abs(49 - 55) / (10 - 1))
        with_all = profile.tp + before + after
        # the sweep may also choose "detect nothing": the best of the two is the answer
        assert result.raw == pytest.approx(max(with_all, -profile.fn))
        assert result.files[0].fp == (2 if with_all > -profile.fn else 0)


def test_a_miss_costs_a_false_negative_and_nothing_beats_null(one_window: Path) -> None:
    corpus = load_corpus(one_window)
    result = score_corpus(corpus, {"cat/a.csv": scores_at(100, {70: 1.0})})
    for p in result.profiles:
        assert p.raw == p.null
        assert p.normalized == 0.0
        assert p.threshold > 1.0  # above every score: nothing detected


def test_ties_are_one_threshold(one_window: Path) -> None:
    corpus = load_corpus(one_window)
    # two rows share the score: one in the window, one a costly FP far before it
    result = score_corpus(corpus, {"cat/a.csv": scores_at(100, {20: 0.5, 45: 0.5})})
    std = result["standard"]
    assert std.threshold == 0.5
    assert std.raw == pytest.approx(sigma(-0.5) / sigma(-1.0) - 0.11)


def test_threshold_is_shared_across_files(tmp_path: Path) -> None:
    write_corpus(tmp_path, {"x/a.csv": (100, [(40, 49)]), "y/b.csv": (100, [(60, 69)])})
    corpus = load_corpus(tmp_path)
    # file a needs threshold ≤ 0.3 to detect; file b then pays for its FP at 0.4
    scores = {
        "x/a.csv": scores_at(100, {40: 0.3}),
        "y/b.csv": scores_at(100, {60: 0.9, 20: 0.4}),
    }
    std = score_corpus(corpus, scores)["standard"]
    assert std.threshold == 0.3
    assert std.raw == pytest.approx(1.0 + 1.0 - 0.11)
    cats = std.by_category()
    assert cats["x"] == pytest.approx(100.0)
    assert cats["y"] == pytest.approx(100 * (1.0 - 0.11 + 1) / 2)


def test_bad_data_is_a_clear_error(tmp_path: Path, one_window: Path) -> None:
    with pytest.raises(EvalError, match=r"combined_windows\.json"):
        load_corpus(tmp_path / "nowhere")
    corpus = load_corpus(one_window)
    with pytest.raises(EvalError, match="99 scores for 100 rows"):
        score_corpus(corpus, {"cat/a.csv": np.zeros(99)})
    bad = tmp_path / "scores.csv"
    bad.write_text("file,timestamp,anomaly_score\ncat/a.csv,2020-01-01 00:00:00,0.1\n")
    with pytest.raises(EvalError, match="1 scores for 100 rows"):
        read_scores(bad, corpus)


@pytest.mark.slow
@pytest.mark.parametrize("detector", ["ARTime", "numenta", "windowedGaussian"])
def test_reproduces_published_results(datasets: Path, detector: str) -> None:
    """Fed NAB's published per-row scores, the scorer lands within 0.25 of final_results.json
    on every profile (NAB's own code, re-run, lands up to 0.09 away)."""
    reference = datasets / "nab-reference"
    corpus = load_corpus(datasets / "nab")
    assert corpus.n_windows == 116
    assert len(corpus) == 58
    published = json.loads((reference / "final_results.json").read_text())[detector]
    result = score_corpus(corpus, read_scores(reference / f"{detector}_scores.csv.gz", corpus))
    for profile in PROFILES:
        assert result[profile.name].normalized == pytest.approx(published[profile.name], abs=0.25)
