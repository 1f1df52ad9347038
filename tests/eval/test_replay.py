"""Scoring users' files row by row (`eval.replay`): the combination, the inferred and mapped
signals, warm-up, causality and the output file. Every file is built here, seeded."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from safety_nexus.core.errors import EvalError, IngestError
from safety_nexus.eval.replay import (
    FINDING_FIELDS,
    Replayer,
    combine,
    infer_table,
    replay_file,
    sanitise,
    site_columns,
    top_signals,
)
from safety_nexus.site.load import load
from safety_nexus.site.table import signal_table

T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z


def iso(times: np.ndarray) -> list[str]:
    stamps = np.round(times * 1000).astype(np.int64).astype("datetime64[ms]")
    return [str(s) + "Z" for s in stamps]


def write_csv(path: Path, times: np.ndarray, columns: dict[str, np.ndarray]) -> Path:
    lines = ["timestamp," + ",".join(columns)]
    cols = list(columns.values())
    for i, stamp in enumerate(iso(times)):
        cells = ["" if np.isnan(c[i]) else repr(float(c[i])) for c in cols]
        lines.append(stamp + "," + ",".join(cells))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def read_out(path: Path) -> pa.Table:
    names = pacsv.read_csv(path).column_names
    types = {n: pa.string() for n in ("timestamp", "top", "findings")}
    types |= {n: pa.float64() for n in names if n.startswith("score")} | {"alarm": pa.int8()}
    return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types=types))


def col(table: pa.Table, name: str) -> np.ndarray:
    return np.asarray(table.column(name).to_numpy(zero_copy_only=False))


def top_of(table: pa.Table) -> list[str]:
    return [(t or "").split(";")[0].rpartition(":")[0] for t in table.column("top").to_pylist()]


# -- the combined row score ------------------------------------------------------------------


def simes_by_hand(scores: Sequence[float], present: Sequence[bool]) -> float:
    p = sorted(1.0 - s for s, ok in zip(scores, present, strict=True) if ok)
    if not p:
        return 0.0
    m = len(p)
    return 1.0 - min(1.0, min(m * pk / k for k, pk in enumerate(p, start=1)))


def test_combine_is_simes() -> None:
    rng = np.random.default_rng(11)
    scores = rng.uniform(size=(300, 7)) ** 0.3
    present = rng.uniform(size=(300, 7)) < 0.8
    got = combine(scores, present)
    want = [simes_by_hand(s, p) for s, p in zip(scores.tolist(), present.tolist(), strict=True)]
    assert got.tolist() == pytest.approx(want, abs=1e-12)
    assert np.all((got >= 0) & (got <= 1))


def test_one_signal_is_its_own_row_score() -> None:
    s = np.array([[0.0], [0.3], [0.999], [1.0]])
    assert combine(s, np.ones_like(s, dtype=bool)).tolist() == pytest.approx(s[:, 0].tolist())


def test_quiet_signals_do_not_dilute_a_loud_one() -> None:
    s = np.full((1, 100), 0.5)
    s[0, 42] = 1 - 1e-6
    assert combine(s, np.ones_like(s, dtype=bool))[0] == pytest.approx(1 - 100e-6)
    # the same signal alone among absent ones counts alone
    present = np.zeros_like(s, dtype=bool)
    present[0, 42] = True
    assert combine(s, present)[0] == pytest.approx(1 - 1e-6)


def test_many_signals_do_not_inflate_false_alarms() -> None:
    """Calibrated scores of independent signals: the row score passes 0.99 in 1% of rows, as
    one signal alone would (the largest of 50 scores would pass in 1 - 0.99^50 = 39%)."""
    rng = np.random.default_rng(5)
    s = rng.uniform(size=(50_000, 50))
    rate = float(np.mean(combine(s, np.ones_like(s, dtype=bool)) >= 0.99))
    assert 0.008 < rate < 0.012


def test_top_signals_are_ordered_and_skip_zero() -> None:
    ids = ["a", "b", "c", "d"]
    s = np.array([[0.1, 0.9, 0.0, 0.5], [0.0, 0.0, 0.0, 0.0], [0.2, 0.2, 0.7, 0.0]])
    assert top_signals(ids, s) == ["b:0.900;d:0.500;a:0.100", "", "c:0.700;a:0.200;b:0.200"]
    assert top_signals(ids[:1], s[:, :1]) == ["a:0.100", "", "a:0.200"]


# -- signals ---------------------------------------------------------------------------------


def test_sanitise_makes_unique_site_style_ids() -> None:
    assert sanitise(["value", "CPU Load (%)", "Pump-1.Pressure", "a", "A", "", "_x"]) == (
        "value",
        "cpu_load",
        "pump-1.pressure",
        "a",
        "a_2",
        "col6",
        "x",
    )


def test_inferred_table_takes_the_median_step_per_signal() -> None:
    times = T0 + 2.0 * np.arange(200, dtype=np.float64)
    times[50] += 0.5  # one odd step does not move the median
    every = np.ones(200)
    other = np.where(np.arange(200) % 2 == 0, 1.0, np.nan)
    table = infer_table(["x", "plant.y"], times, np.column_stack([every, other]))
    assert table.ids == ("x", "plant.y")
    assert table.assets == ("x", "plant")
    assert table.period.tolist() == [2.0, 4.0]
    assert np.isnan(table.normal_lo).all()
    assert np.isinf(table.limit_hi).all()


SITE = """
version: 1
site: {name: Replay site, timezone: UTC}
subsystems: [{id: water, name: Water}, {id: power, name: Power}]
assets:
  - id: pump-1
    subsystem: water
    type: pump
    signals:
      - {name: pressure, unit: bar, normal: [4, 6], period: 1s}
      - {name: flow, unit: L/s, normal: [20, 60], period: 5s}
  - id: feeder-1
    subsystem: power
    type: feeder
    signals:
      - {name: current, unit: A, normal: [100, 400], period: 1s}
"""


def test_site_columns_map_and_report_what_is_missing(tmp_path: Path) -> None:
    table = signal_table(load(SITE))
    cols, missing = site_columns(table, ["feeder-1.current", "pump-1.pressure"], tmp_path)
    assert [table.ids[c] for c in cols.tolist()] == ["feeder-1.current", "pump-1.pressure"]
    assert missing == ["pump-1.flow"]
    with pytest.raises(IngestError, match=r"1 column\(s\) name no signal of the site: pump-9.x"):
        site_columns(table, ["pump-1.pressure", "pump-9.x"], tmp_path)


# -- whole files -----------------------------------------------------------------------------


def test_univariate_nab_file(tmp_path: Path) -> None:
    """NAB's format (timestamp without a zone, value) with a seeded level anomaly."""
    rng = np.random.default_rng(21)
    n, onset = 4000, 3000
    value = 10.0 + rng.normal(size=n)
    value[onset : onset + 20] += 8.0
    stamps = np.datetime64("2014-04-10T00:00:00") + np.arange(n) * np.timedelta64(300, "s")
    text = "timestamp,value\n" + "".join(
        f"{str(s).replace('T', ' ')},{v!r}\n" for s, v in zip(stamps, value.tolist(), strict=True)
    )
    src = tmp_path / "nab.csv"
    src.write_text(text, encoding="utf-8")
    notes: list[str] = []
    summary = replay_file(src, tmp_path / "out.csv", note=notes.append)
    out = read_out(tmp_path / "out.csv")
    assert out.column_names == ["timestamp", "score.value", "score", "alarm", "top", "findings"]
    assert out.num_rows == n == summary.rows
    assert out.column("timestamp").to_pylist()[:2] == ["2014-04-10 00:00:00", "2014-04-10 00:05:00"]
    score, alarm = col(out, "score"), col(out, "alarm")
    assert np.array_equal(score, col(out, "score.value"))  # one signal: the row score is its
    assert np.all((score >= 0) & (score <= 1))
    assert score[onset : onset + 20].max() > score[1000:onset].max()
    window = slice(onset, onset + 100)  # the anomaly and its end
    assert alarm[window].any()
    assert alarm.sum() - alarm[window].sum() <= 0.005 * n
    assert summary.alarm_rows == alarm.sum()
    assert any("no --site: inferred 1 signal(s)" in s and "300 s" in s for s in notes)
    assert any("no --warmup" in s for s in notes)
    assert any("read as UTC" in s for s in notes)


def plant(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "Temp (C)": 20.0 + 0.5 * rng.normal(size=n),
        "pump.pressure": 5.0 + 0.1 * rng.normal(size=n),
        "pump.flow": 40.0 + 2.0 * rng.normal(size=n),
        "feeder.current": 250.0 + 10.0 * rng.normal(size=n),
        "fan.speed": 1200.0 + 15.0 * rng.normal(size=n),
        "tank.level": 3.0 + 0.05 * rng.normal(size=n),
    }


def test_multivariate_names_the_signal_that_shifted(tmp_path: Path) -> None:
    n, onset = 3000, 2000
    data = plant(n, 8)
    data["pump.pressure"][onset:] += 0.6  # 6σ, one signal of six
    src = write_csv(tmp_path / "plant.csv", T0 + 60.0 * np.arange(n), data)
    summary = replay_file(src, tmp_path / "out.csv")
    out = read_out(tmp_path / "out.csv")
    assert [c for c in out.column_names if c.startswith("score.")] == [
        "score.temp_c",
        "score.pump.pressure",
        "score.pump.flow",
        "score.feeder.current",
        "score.fan.speed",
        "score.tank.level",
    ]
    score, alarm, top = col(out, "score"), col(out, "alarm"), top_of(out)
    assert score[onset : onset + 10].max() > score[500:onset].max()
    assert sum(t == "pump.pressure" for t in top[onset : onset + 10]) >= 8
    first = onset + int(np.flatnonzero(alarm[onset:])[0])
    assert first < onset + 20
    assert top[first] == "pump.pressure"
    assert summary.top[0][0] == "pump.pressure"


def test_warmup_makes_the_start_of_the_file_count(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    ref = write_csv(tmp_path / "ref.csv", T0 + np.arange(2000.0), {"x": rng.normal(size=2000)})
    x = rng.normal(size=300)
    x[10] += 12.0
    src = write_csv(tmp_path / "new.csv", T0 + 2000.0 + np.arange(300.0), {"x": x})
    notes: list[str] = []
    warm = replay_file(
        src, tmp_path / "warm.csv", warmup=ref, alarm_on="findings", note=notes.append
    )
    cold = replay_file(src, tmp_path / "cold.csv", alarm_on="findings")
    assert warm.warmup_rows == 2000
    assert cold.warmup_rows == 0
    w, c = read_out(tmp_path / "warm.csv"), read_out(tmp_path / "cold.csv")
    assert w.num_rows == c.num_rows == 300  # the reference rows are not in the output
    ws, cs = col(w, "score"), col(c, "score")
    assert ws[10] == ws.max() > np.delete(ws, 10).max()
    assert ws[10] >= cs[10]
    # the detector bank is warm from the first row: the spike is a finding (an isolated
    # sample is confirmed by the next one), and none can come from a bank that has seen 12
    assert col(w, "alarm")[10:12].any()
    assert any("x:spike" in (f or "") for f in w.column("findings")[10:12].to_pylist())
    assert col(c, "alarm")[:12].sum() == 0
    assert any("warmed up on 2000 row(s) of ref.csv" in s for s in notes)
    assert not any("no --warmup" in s for s in notes)


def test_the_gap_after_the_warmup_is_not_stale_data(tmp_path: Path) -> None:
    """A reference from the day before and a slow signal that reports every 5th row: the night
    between the two files is no finding at the first rows of the scored one."""
    rng = np.random.default_rng(14)
    n = 1000
    slow = np.where(np.arange(n) % 5 == 3, 1.0, np.nan) * rng.normal(size=n)
    data = {"fast": rng.normal(size=n), "slow": slow}
    ref = write_csv(tmp_path / "ref.csv", T0 + np.arange(float(n)), data)
    src = write_csv(tmp_path / "new.csv", T0 + 86400.0 + np.arange(float(n)), data)
    replay_file(src, tmp_path / "out.csv", warmup=ref, findings=tmp_path / "f.csv")
    assert "stale" not in (tmp_path / "f.csv").read_text()
    assert col(read_out(tmp_path / "out.csv"), "alarm")[:10].sum() == 0


def test_warmup_file_of_the_same_period_is_moved_back_by_weeks(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    times = T0 + np.arange(500.0)
    ref = write_csv(tmp_path / "ref.csv", times, {"x": rng.normal(size=500), "y": np.ones(500)})
    src = write_csv(tmp_path / "new.csv", times, {"x": rng.normal(size=500)})
    notes: list[str] = []
    summary = replay_file(src, tmp_path / "out.csv", warmup=ref, note=notes.append)
    assert summary.rows == 500
    assert summary.warmup_rows == 500
    assert any("moved back 1 week(s)" in s for s in notes)
    assert any("not in the scored file ignored: y" in s for s in notes)
    with pytest.raises(IngestError, match="the warm-up file has no column for y"):
        replay_file(ref, tmp_path / "out2.csv", warmup=src)


def test_site_mapping(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    n = 400
    data = {
        "pump-1.pressure": 5 + 0.1 * rng.normal(size=n),
        "feeder-1.current": 250 + rng.normal(size=n),
    }
    src = write_csv(tmp_path / "a.csv", T0 + np.arange(n, dtype=float), data)
    notes: list[str] = []
    table = signal_table(load(SITE))
    replay_file(src, tmp_path / "out.csv", site=table, note=notes.append)
    out = read_out(tmp_path / "out.csv")
    assert out.column_names[1:3] == ["score.pump-1.pressure", "score.feeder-1.current"]
    assert any(
        "1 signal(s) of the site have no column (not scored): pump-1.flow" in s for s in notes
    )
    assert not any("inferred" in s for s in notes)
    bad = write_csv(
        tmp_path / "b.csv",
        T0 + np.arange(3.0),
        {"pump-1.pressure": np.ones(3), "Pump 9": np.ones(3)},
    )
    with pytest.raises(IngestError, match="name no signal of the site: Pump 9"):
        replay_file(bad, tmp_path / "out.csv", site=table)


def test_parquet_scores_like_the_same_csv(tmp_path: Path) -> None:
    n = 600
    data = plant(n, 2)
    times = T0 + 10.0 * np.arange(n)
    csv_src = write_csv(tmp_path / "a.csv", times, data)
    micros = pa.array(np.round(times * 1e6).astype(np.int64)).cast(pa.timestamp("us", tz="UTC"))
    pq.write_table(
        pa.table({"timestamp": micros, **{k: pa.array(v) for k, v in data.items()}}),
        tmp_path / "a.parquet",
    )
    replay_file(csv_src, tmp_path / "from-csv.csv")
    replay_file(tmp_path / "a.parquet", tmp_path / "from-parquet.csv")
    a, b = read_out(tmp_path / "from-csv.csv"), read_out(tmp_path / "from-parquet.csv")
    assert a.column_names == b.column_names
    for name in a.column_names[1:]:
        assert a.column(name).equals(b.column(name)), name


def test_gaps_score_zero_and_leave_the_row_to_the_others(tmp_path: Path) -> None:
    n = 800
    data = plant(n, 3)
    rng = np.random.default_rng(30)
    holes = rng.uniform(size=(n, len(data))) < 0.1
    for j, key in enumerate(data):
        data[key][holes[:, j]] = np.nan
    src = write_csv(tmp_path / "a.csv", T0 + np.arange(n, dtype=float), data)
    summary = replay_file(src, tmp_path / "out.csv")
    assert summary.gaps == holes.sum()
    out = read_out(tmp_path / "out.csv")
    scores = np.column_stack([col(out, c) for c in out.column_names if c.startswith("score.")])
    assert np.all(scores[holes] == 0)
    # the written row score is Simes over the signals present in the row (within rounding)
    want = [simes_by_hand(s, p) for s, p in zip(scores.tolist(), (~holes).tolist(), strict=True)]
    assert col(out, "score") == pytest.approx(want, abs=1e-5)


def test_output_is_causal_and_independent_of_chunking(tmp_path: Path) -> None:
    """Rows appended later change nothing before them; neither does how the file is cut."""
    n, k = 900, 400
    data = plant(n, 12)
    data["fan.speed"][600:] += 100.0
    data["tank.level"][::7] = np.nan
    times = T0 + 5.0 * np.arange(n)
    full = write_csv(tmp_path / "full.csv", times, data)
    head = write_csv(tmp_path / "head.csv", times[:k], {c: v[:k] for c, v in data.items()})
    replay_file(full, tmp_path / "full.out.csv", findings=tmp_path / "full.f.csv")
    replay_file(head, tmp_path / "head.out.csv")
    replay_file(full, tmp_path / "small.out.csv", chunk_bytes=2048, findings=tmp_path / "s.f.csv")
    full_lines = (tmp_path / "full.out.csv").read_text().splitlines()
    head_lines = (tmp_path / "head.out.csv").read_text().splitlines()
    assert len(full_lines) == n + 1
    assert len(head_lines) == k + 1
    assert head_lines == full_lines[: k + 1]
    assert (tmp_path / "small.out.csv").read_text() == (tmp_path / "full.out.csv").read_text()
    assert (tmp_path / "s.f.csv").read_text() == (tmp_path / "full.f.csv").read_text()


def test_findings_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(13)
    x = rng.normal(size=1500)
    x[1200:] += 3.0
    src = write_csv(tmp_path / "a.csv", T0 + np.arange(1500.0), {"x": x})
    summary = replay_file(src, tmp_path / "out.csv", findings=tmp_path / "f.csv")
    rows = pacsv.read_csv(
        tmp_path / "f.csv",
        convert_options=pacsv.ConvertOptions(column_types={"timestamp": pa.string()}),
    ).to_pylist()
    assert summary.findings == len(rows) >= 1
    assert tuple(rows[0]) == FINDING_FIELDS
    first = rows[0]
    assert first["signal"] == "x"
    assert first["explanation"].startswith("x: ")
    out = read_out(tmp_path / "out.csv")
    row = out.column("timestamp").to_pylist().index(first["timestamp"])
    assert f"x:{first['kind']}" in out.column("findings")[row].as_py()
    assert row >= 1200


def test_bad_runs(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "a.csv", T0 + np.arange(3.0), {"x": np.ones(3)})
    with pytest.raises(EvalError, match="would overwrite an input file"):
        replay_file(src, src)
    empty = tmp_path / "empty.csv"
    empty.write_text("timestamp,x\n", encoding="utf-8")
    with pytest.raises(IngestError, match="no data rows"):
        replay_file(empty, tmp_path / "out.csv")
    times = T0 + np.arange(3000.0)
    times[2500] = T0
    late = write_csv(tmp_path / "late.csv", times, {"x": np.ones(3000)})
    with pytest.raises(IngestError, match=r"row 2501: timestamp .* is earlier"):
        replay_file(
            late, tmp_path / "o" / "late.csv", chunk_bytes=4096, findings=tmp_path / "f.csv"
        )
    assert sorted(p.name for p in tmp_path.rglob("*")) == sorted(
        ["a.csv", "empty.csv", "late.csv", "o"]
    )
    with pytest.raises(EvalError, match="threshold"):
        Replayer(infer_table(["x"], T0 + np.arange(3.0), np.ones((3, 1))), threshold=2.0)
