"""The anomaly scorer: causal, cut-invariant, deterministic, restartable, general, and useful."""

from __future__ import annotations

import doctest
import pickle

import numpy as np
import pytest
from pydantic import ValidationError

from safety_nexus.core.errors import DetectError
from safety_nexus.detect import scoring
from safety_nexus.detect.scoring import AnomalyScorer, ScoreConfig

F = np.ndarray
# The score of a ratio of 1, "as extreme as anything in memory": a detection from here on.
EDGE = AnomalyScorer(1).edge
CHANNELS = AnomalyScorer(1).channels


def rows(n: int, start: int = 0) -> F:
    return np.arange(start, start + n, dtype=np.float64)


def stream(seed: int, t: int = 2600, n: int = 4) -> F:
    """Noise, a random walk, a periodic signal and a series with a shift: every feature works."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((t, n))
    x[:, 1 % n] = np.cumsum(x[:, 1 % n]) * 0.1
    x[:, 2 % n] += 3.0 * np.sin(np.arange(t) * 2 * np.pi / 60)
    x[t // 2 :, 3 % n] += 4.0
    return x


def run(x: F, config: ScoreConfig | None = None, chunks: list[int] | None = None) -> F:
    scorer = AnomalyScorer(x.shape[1], config)
    if chunks is None:
        return scorer.score(rows(len(x)), x)
    out, lo = [], 0
    for size in chunks:
        out.append(scorer.score(rows(size, lo), x[lo : lo + size]))
        lo += size
    out.append(scorer.score(rows(len(x) - lo, lo), x[lo:]))
    return np.concatenate(out)


def test_module_example_runs() -> None:
    result = doctest.testmod(scoring, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0


def test_scores_are_causal_appending_rows_changes_no_earlier_score() -> None:
    x = stream(1)
    full = run(x)
    for k in (1, 255, 256, 700, 1029, 2000):
        assert np.array_equal(run(x[:k]), full[:k]), k


def test_scores_do_not_depend_on_how_the_stream_is_cut_into_calls() -> None:
    x = stream(2)
    whole = run(x)
    for chunks in ([1000, 1000], [37] * 60, [256] * 9, [1, 2, 3, 250, 7, 1, 1, 500]):
        assert np.array_equal(run(x, chunks=chunks), whole), chunks[:4]


def test_scores_are_deterministic_and_within_unit_interval() -> None:
    x = stream(3)
    a, b = run(x), run(x)
    assert np.array_equal(a, b)
    assert a.shape == x.shape
    assert np.all((a >= 0.0) & (a <= 1.0))


def test_pickled_mid_stream_scorer_continues_exactly() -> None:
    x = stream(4)
    whole = run(x)
    for cut in (1000, 1111):  # on a block boundary and inside a block (pending rows)
        scorer = AnomalyScorer(x.shape[1])
        first = scorer.score(rows(cut), x[:cut])
        clone = pickle.loads(pickle.dumps(scorer))
        rest = clone.score(rows(len(x) - cut, cut), x[cut:])
        assert np.array_equal(np.concatenate([first, rest]), whole), cut


def test_learn_is_score_without_output() -> None:
    x = stream(5)
    a = AnomalyScorer(x.shape[1])
    a.learn(rows(1500), x[:1500])
    b = AnomalyScorer(x.shape[1])
    b.score(rows(1500), x[:1500])
    assert np.array_equal(a.score(rows(1100, 1500), x[1500:]), b.score(rows(1100, 1500), x[1500:]))


def test_nan_scores_zero_and_leaves_other_signals_alone() -> None:
    rng = np.random.default_rng(6)
    x = stream(6)
    holes = x.copy()
    holes[rng.random(x.shape) < 0.05] = np.nan
    holes[:, 0] = np.nan  # a signal that never reports
    holes[800:1400, 1] = np.nan  # a long gap, longer than a block
    s = run(holes)
    assert np.all(s[np.isnan(holes)] == 0.0)
    assert np.all(np.isfinite(s))
    assert np.all((s >= 0.0) & (s <= 1.0))
    # Signals are independent: a signal's scores are the same alone or in company.
    alone = run(holes[:, 2:3])
    assert np.array_equal(alone[:, 0], s[:, 2])


def test_constant_huge_tiny_and_negative_signals_stay_in_range() -> None:
    rng = np.random.default_rng(7)
    t = 2000
    noise = rng.standard_normal(t)
    x = np.column_stack(
        [
            np.full(t, 5.0),  # constant
            1e12 + noise,  # huge offset
            1e-12 * noise,  # tiny scale
            -1e6 + 1e3 * noise,  # negative
            np.where(np.arange(t) < 1500, 0.0, 1.0),  # constant, then a step
        ]
    )
    s = run(x)
    assert np.all(np.isfinite(s))
    assert np.all((s >= 0.0) & (s <= 1.0))
    assert np.all(s[:, 0] == 0.0)  # nothing ever happens
    assert s[1500, 4] >= EDGE  # leaving a constant value is news
    assert np.all(s[1501:1530, 4] == 0.0)  # ... once (the quiet period follows)


def test_scale_and_offset_do_not_change_the_scores() -> None:
    x = stream(8)[:, :2]
    base = run(x)
    # Only the float32 shape distances round differently (p carries the channel count).
    for y in (1e6 * x - 3e7, -1e-6 * x, 1e-9 * x + 5.0):
        s = run(y)
        assert np.abs(s - base).max() < 1e-5 * CHANNELS
        assert np.array_equal(s >= EDGE, base >= EDGE)


def test_quiet_on_stationary_noise() -> None:
    rng = np.random.default_rng(9)
    x = rng.standard_normal((5000, 8))
    s = run(x)
    # New extremes of a stationary signal keep coming (rarely): at most a few per signal.
    high = (s[1000:] >= EDGE).sum(axis=0)
    assert high.max() <= 6
    assert high.sum() / s[1000:].size < 0.002


def onset(x: F, t0: int, lead: int = 1000, lag: int = 30) -> tuple[int, float, int]:
    """Rows at or beyond the edge in the `lead` rows before t0, the largest score in the `lag`
    rows from t0, and how many rows after t0 the first score at or beyond the edge comes."""
    s = run(x[:, None])[:, 0]
    hits = np.flatnonzero(s[t0:] >= EDGE)
    before = int((s[t0 - lead : t0] >= EDGE).sum())
    return before, float(s[t0 : t0 + lag].max()), int(hits[0]) if hits.size else -1


@pytest.mark.parametrize("kind", ["level shift", "spike", "new pattern", "flatline"])
def test_loud_at_the_onset_of_an_anomaly(kind: str) -> None:
    rng = np.random.default_rng(10)
    t0, n = 3000, 3400
    noise = rng.standard_normal(n)
    i = np.arange(n)
    if kind == "level shift":
        x = noise.copy()
        x[t0:] += 3.0
    elif kind == "spike":
        x = noise.copy()
        x[t0] += 8.0
    elif kind == "flatline":
        x = noise.copy()
        x[t0:] = x[t0 - 1]
    else:  # a square wave where a sine has always been, within the same range
        x = 3.0 * np.sin(2 * np.pi * i / 50) + 0.3 * noise
        x[t0 : t0 + 100] = np.where((i[t0 : t0 + 100] // 10) % 2, 2.0, -2.0) + 0.3 * noise[:100]
    before, after, first = onset(x, t0)
    assert before <= 2, kind  # noise makes a new extreme now and then
    assert after >= EDGE, kind
    assert 0 <= first <= 40, kind  # a flatline shows once the variance window is flat


def test_config_is_strict_and_names_the_field() -> None:
    with pytest.raises(ValidationError, match="halflife"):
        ScoreConfig(halflife=3)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="std_window"):
        ScoreConfig(windows=(1, 8), std_window=32)
    with pytest.raises(ValidationError, match="discord_memory"):
        ScoreConfig(discord_memory=1000, discord_length=16 * 3)
    with pytest.raises(ValidationError, match="quiet"):
        ScoreConfig(quiet=-1)
    with pytest.raises(ValidationError, match="record_window"):
        ScoreConfig(record_window=65, record_lookback=64)


def test_other_configurations_work_too() -> None:
    x = stream(11)
    for cfg in (
        ScoreConfig(shape=False),
        ScoreConfig(windows=(1, 8), std_window=8, memory=100, discord_stride=2),
        ScoreConfig(discord_length=10, discord_memory=500, quiet=0),
        ScoreConfig(record_block=24, record_window=3, record_lookback=5, record_warm=0),
    ):
        s = run(x, cfg)
        assert np.all((s >= 0.0) & (s <= 1.0))
        assert np.array_equal(run(x, cfg, chunks=[100, 333, 1000]), s)


def test_bad_input_is_a_detect_error() -> None:
    scorer = AnomalyScorer(2)
    with pytest.raises(DetectError, match="values"):
        scorer.score(rows(3), np.zeros((3, 3)))
    scorer.score(rows(3), np.zeros((3, 2)))
    with pytest.raises(DetectError, match="increase"):
        scorer.score(rows(3), np.zeros((3, 2)))
    with pytest.raises(DetectError):
        AnomalyScorer(-1)


def test_empty_calls_and_no_signals() -> None:
    assert AnomalyScorer(0).score(rows(5), np.zeros((5, 0))).shape == (5, 0)
    scorer = AnomalyScorer(2)
    assert scorer.score(rows(0), np.zeros((0, 2))).shape == (0, 2)
    assert scorer.state_nbytes() > 0


def test_a_day_without_its_daily_peak_is_found_by_the_record_channel() -> None:
    rng = np.random.default_rng(13)
    day, t0 = 288, 288 * 30
    i = np.arange(day * 32)
    x = 10.0 * np.exp(-(((i % day - 150) / 20.0) ** 2)) + rng.standard_normal(i.size)
    x[t0 : t0 + day] = rng.standard_normal(day)  # the peak stays away, within the range
    found = {}
    for cfg in (ScoreConfig(), ScoreConfig(record=False)):
        s = run(x[:, None], cfg)[:, 0]
        found[cfg.record] = bool((s[t0 : t0 + day] >= EDGE).any())
        assert (s[3000:t0] >= EDGE).sum() <= 2
    assert found == {True: True, False: False}


# A record discord small enough to speak within the short test streams.
SMALL_RECORD = ScoreConfig(record_block=4, record_window=8, record_lookback=16, record_warm=20)


def test_record_channel_is_causal_cut_invariant_restartable_and_used() -> None:
    x = stream(12)
    x[np.random.default_rng(12).random(x.shape) < 0.05] = np.nan
    x[700:1100, 0] = np.nan
    whole = run(x, SMALL_RECORD)
    assert not np.array_equal(whole, run(x, SMALL_RECORD.model_copy(update={"record": False})))
    assert np.all(whole[np.isnan(x)] == 0.0)
    for k in (255, 700, 1029):
        assert np.array_equal(run(x[:k], SMALL_RECORD), whole[:k]), k
    for chunks in ([37] * 60, [1, 2, 3, 250, 7, 1, 1, 500]):
        assert np.array_equal(run(x, SMALL_RECORD, chunks=chunks), whole), chunks[:4]
    scorer = AnomalyScorer(x.shape[1], SMALL_RECORD)
    first = scorer.score(rows(1111), x[:1111])
    clone = pickle.loads(pickle.dumps(scorer))
    rest = clone.score(rows(len(x) - 1111, 1111), x[1111:])
    assert np.array_equal(np.concatenate([first, rest]), whole)


@pytest.mark.parametrize("kind", ["gaussian", "student-t 3"])
def test_calibrated_scores_are_conservative_p_values_on_noise(kind: str) -> None:
    rng = np.random.default_rng(14)
    shape = (6000, 8)
    x = rng.standard_normal(shape) if kind == "gaussian" else rng.standard_t(3, shape)
    p = 1.0 - run(x, ScoreConfig(quiet=0, calibrated=True))
    for alpha in (0.05, 0.01, 0.001):
        assert np.mean(p <= alpha) <= alpha, alpha
    for alpha in (0.05, 0.01):  # a short memory counts as short (heavy tails: not at 0.001)
        assert np.mean(p[:500] <= alpha) <= alpha, alpha
    # Without calibration a young signal's records read as if the memory were full.
    loose = 1.0 - run(x, ScoreConfig(quiet=0))
    assert np.mean(loose[:500] <= 0.01) > np.mean(p[:500] <= 0.01)
