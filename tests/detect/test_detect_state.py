"""Detector state saved and restored: a restart gives the findings of an uninterrupted run."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from safety_nexus.core.errors import DetectError
from safety_nexus.core.types import Finding, Frame, Recovery
from safety_nexus.detect import REGISTRY, DetectConfig, DetectorBank
from safety_nexus.detect.testing import labelled_stream, make_table

NAMES = sorted(REGISTRY)


def _run(
    bank: DetectorBank, times: np.ndarray, values: np.ndarray
) -> tuple[list[Finding], list[Recovery]]:
    result = bank.process(Frame(times, values))
    return result.findings, result.recoveries


def _stream(seed: int = 11, rows: int = 6000, n: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """Noise with anomalies of several kinds, all after row 3000 (the interruption)."""
    rng = np.random.default_rng(seed)
    values = 5.0 + rng.normal(size=(rows, n))
    values[3100:, 0:4] += 1.0  # level shift
    values[3200:, 4:6] = 5.0 + (values[3200:, 4:6] - 5.0) * 2.5  # variance
    values[3300, 6] += 9.0  # spike
    values[3400:3450, 7] = np.nan  # stale
    values[3500:3560, 8] = values[3500, 8]  # flatline
    values[3600:, 9] += 0.5 * np.arange(rows - 3600)  # ramp
    values[::7, 10] = np.nan  # a signal with regular gaps
    return np.arange(float(rows)), values


@pytest.mark.parametrize("block", [16384, 5])
def test_restart_mid_stream_gives_the_same_findings(tmp_path: Path, block: int) -> None:
    times, values = _stream()
    table = make_table(values.shape[1])
    config = DetectConfig(block=block)
    whole = DetectorBank(table, config)
    expected = _run(whole, times, values)
    assert len({f.kind for f in expected[0]}) >= 5, "the stream should exercise most detectors"

    cut = 3000
    first = DetectorBank(table, config)
    before = _run(first, times[:cut], values[:cut])
    path = tmp_path / "state.npz"
    first.save_state(path, saved_at=123.0)
    again = DetectorBank(table, config)  # a new process: nothing learned
    header = again.load_state(path)
    assert header["saved_at"] == 123.0
    assert header["last_time"] == times[cut - 1]
    after = _run(again, times[cut:], values[cut:])
    assert before[0] + after[0] == expected[0]  # times, signals, kinds, scores, evidence
    assert before[1] + after[1] == expected[1]
    assert again.state_nbytes() == whole.state_nbytes()
    for a, b in zip(again.baseline(), whole.baseline(), strict=True):
        assert np.array_equal(a, b)


def test_a_bank_with_a_per_signal_cusum_design_survives_a_restart(tmp_path: Path) -> None:
    times, values = _stream()
    n = values.shape[1]
    k = np.full(n, np.nan)
    h = np.full(n, np.nan)
    k[:4], h[:4] = 0.5, 6.0  # the shifted signals watched for a known 1σ shift
    table, config = make_table(n), DetectConfig()
    whole = DetectorBank(table, config, cusum_design=(k, h))
    expected = _run(whole, times, values)
    first = DetectorBank(table, config, cusum_design=(k, h))
    before = _run(first, times[:3000], values[:3000])
    first.save_state(tmp_path / "state.npz")
    again = DetectorBank(table, config, cusum_design=(k, h))
    again.load_state(tmp_path / "state.npz")
    after = _run(again, times[3000:], values[3000:])
    assert before[0] + after[0] == expected[0]
    plain = DetectorBank(table, config)  # the same site, but no design: not the same bank
    with pytest.raises(DetectError, match="per-signal CUSUM design"):
        plain.load_state(tmp_path / "state.npz")


@pytest.mark.parametrize("name", NAMES)
def test_every_registered_detector_survives_a_restart(tmp_path: Path, name: str) -> None:
    """Generic over the registry: a newly registered detector is covered without new code."""
    s = labelled_stream(REGISTRY[name].kind)
    cut = s.onset - 5  # just before the anomaly, when state matters most
    whole = DetectorBank(s.table, detectors=[name])
    expected = _run(whole, s.times, s.values)
    assert expected[0], "the stream should produce findings after the cut"
    bank = DetectorBank(s.table, detectors=[name])
    before = _run(bank, s.times[:cut], s.values[:cut])
    bank.save_state(tmp_path / "s.npz")
    again = DetectorBank(s.table, detectors=[name])
    again.load_state(tmp_path / "s.npz")
    after = _run(again, s.times[cut:], s.values[cut:])
    assert (before[0] + after[0], before[1] + after[1]) == expected


def test_a_fresh_bank_would_miss_what_the_restored_one_finds(tmp_path: Path) -> None:
    """The point of restoring: without it, a shift right after the restart falls into warm-up."""
    times, values = _stream()
    table = make_table(values.shape[1])
    bank = DetectorBank(table)
    _run(bank, times[:3000], values[:3000])
    bank.save_state(tmp_path / "s.npz")
    restored = DetectorBank(table)
    restored.load_state(tmp_path / "s.npz")
    shifted = {f.signal for f in _run(restored, times[3000:], values[3000:])[0]}
    cold = {f.signal for f in _run(DetectorBank(table), times[3000:], values[3000:])[0]}
    assert {"a0.s0", "a1.s1", "a2.s2", "a3.s3"} <= shifted
    assert not {"a0.s0", "a1.s1", "a2.s2", "a3.s3"} <= cold


def test_state_file_is_written_atomically(tmp_path: Path) -> None:
    bank = DetectorBank(make_table(3))
    _run(bank, np.arange(200.0), np.random.default_rng(0).normal(size=(200, 3)))
    path = tmp_path / "sub" / "state.npz"
    size = bank.save_state(path)
    assert path.stat().st_size == size
    assert [p.name for p in path.parent.iterdir()] == ["state.npz"]  # no temporary left
    with zipfile.ZipFile(path) as zf:  # a plain npz: arrays and a JSON header, no pickles
        header = json.loads(np.load(path, allow_pickle=False)["header"].tobytes())
        assert header["format"] == "safety-nexus/detector-state"
        assert header["version"] == 1
        assert all(name.endswith(".npy") for name in zf.namelist())


def test_saving_twice_replaces_the_state(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    table = make_table(2)
    bank = DetectorBank(table)
    path = tmp_path / "s.npz"
    _run(bank, np.arange(100.0), rng.normal(size=(100, 2)))
    bank.save_state(path)
    _run(bank, np.arange(100.0, 300.0), rng.normal(size=(200, 2)))
    bank.save_state(path)
    again = DetectorBank(table)
    again.load_state(path)
    assert again.last_time == 299.0
    assert np.array_equal(again.last_sample_times(), [299.0, 299.0])


def _saved(tmp_path: Path, n: int = 3, **cfg: float) -> Path:
    bank = DetectorBank(make_table(n), DetectConfig(**cfg))
    _run(bank, np.arange(150.0), np.random.default_rng(2).normal(size=(150, n)))
    path = tmp_path / "s.npz"
    bank.save_state(path)
    return path


@pytest.mark.parametrize(
    ("bank", "message"),
    [
        (lambda: DetectorBank(make_table(4)), "different site: the signal ids differ"),
        (lambda: DetectorBank(make_table(3, period=2.0)), "the sample periods differ"),
        (lambda: DetectorBank(make_table(3, limit_hi=9.0)), "the hard limits differ"),
        (
            lambda: DetectorBank(make_table(3), DetectConfig(warmup=50)),
            "field 'warmup' was 100, is 50",
        ),
        (
            lambda: DetectorBank(make_table(3), detectors=["cusum", "spike"]),
            "the bank runs \\[cusum,spike\\]",
        ),
    ],
)
def test_restoring_into_another_site_or_config_names_what_differs(
    tmp_path: Path, bank: object, message: str
) -> None:
    path = _saved(tmp_path)
    target = bank()  # type: ignore[operator]
    assert isinstance(target, DetectorBank)
    before = target.state_nbytes(), target.last_time
    with pytest.raises(DetectError, match=message):
        target.load_state(path)
    assert (target.state_nbytes(), target.last_time) == before  # left as it was


def test_missing_and_corrupt_files_are_clear_errors(tmp_path: Path) -> None:
    bank = DetectorBank(make_table(3))
    with pytest.raises(DetectError, match="no detector state file"):
        bank.load_state(tmp_path / "nothing.npz")
    path = _saved(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DetectError, match="corrupt detector state"):
        bank.load_state(path)
    path.write_bytes(b"not a zip at all")
    with pytest.raises(DetectError, match="corrupt detector state"):
        bank.load_state(path)
    np.savez(path, header=np.frombuffer(b'{"format": "something else"}', dtype=np.uint8))
    with pytest.raises(DetectError, match="not a detector state file"):
        bank.load_state(path)
    doc = b'{"format": "safety-nexus/detector-state", "version": 99}'
    np.savez(path, header=np.frombuffer(doc, dtype=np.uint8))
    with pytest.raises(DetectError, match="format version 99, this version reads 1"):
        bank.load_state(path)
    assert bank.last_time == -np.inf


def test_a_tampered_array_is_refused_and_the_bank_untouched(tmp_path: Path) -> None:
    path = _saved(tmp_path)
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    victim = next(k for k, v in arrays.items() if k != "header" and v.dtype == np.float32)
    arrays[victim] = arrays[victim].astype(np.int16)
    np.savez(path, **arrays)
    bank = DetectorBank(make_table(3))
    with pytest.raises(DetectError, match="saved as int16"):
        bank.load_state(path)
    assert bank.last_time == -np.inf
    assert not bank.warm().any()


def test_state_that_cannot_be_encoded_is_refused_by_name(tmp_path: Path) -> None:
    bank = DetectorBank(make_table(2))
    bank._shards[0].detectors[0].oops = object()  # type: ignore[attr-defined]
    with pytest.raises(DetectError, match=r"_shards\[0\]\.detectors\[0\]\.oops is a object"):
        bank.save_state(tmp_path / "s.npz")
    assert not (tmp_path / "s.npz").exists()
