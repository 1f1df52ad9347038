from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from safety_nexus.core.errors import SimError
from safety_nexus.sim import Simulator
from safety_nexus.sim.examples import small_city
from safety_nexus.sim.output import (
    TelemetryWriter,
    iso,
    labels_path,
    read_labels,
    read_telemetry,
    write_labels,
)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_telemetry_reads_back_as_written(tmp_path: Path, suffix: str) -> None:
    sim = Simulator(small_city(), seed=4, tick=0.5)
    sim.inject(
        "S5", stale="pump-1.pressure", flatline="", spike="", clock="", device="", duration=0
    )
    path = tmp_path / f"run{suffix}"
    frames = [sim.step(n) for n in (3, 5000, 7)]  # more than one chunk
    with TelemetryWriter(path, sim.table) as writer:
        for f in frames:
            writer.write(f)
    assert writer.rows == 5010
    ids, frame = read_telemetry(path)
    assert ids == list(sim.table.ids)
    times = np.concatenate([f.times for f in frames])
    values = np.concatenate([f.values for f in frames])
    assert np.array_equal(frame.times, times)
    assert np.array_equal(frame.values, values, equal_nan=True)
    assert np.isnan(frame.values[:, sim.table.index["pump-1.pressure"]]).all()


def test_labels_read_back_and_live_next_to_the_telemetry(tmp_path: Path) -> None:
    sim = Simulator(small_city(), seed=4)
    sim.inject("S4", asset="feeder-1", duration=30)
    sim.inject("S1", asset="core-1", duration=0)  # open-ended: no end
    path = labels_path(tmp_path / "run.parquet")
    assert path.name == "run.labels.csv"
    assert write_labels(path, sim.labels) == len(sim.labels)
    back = read_labels(path)
    assert back == sim.labels
    assert back[-1].end is None or any(lb.end is None for lb in back)


def test_iso_times_are_utc_with_milliseconds() -> None:
    assert iso(np.asarray([0.0, 1.5])) == [
        "1970-01-01T00:00:00.000Z",
        "1970-01-01T00:00:01.500Z",
    ]


def test_unknown_formats_are_refused(tmp_path: Path) -> None:
    sim = Simulator(small_city(), seed=4)
    with pytest.raises(SimError, match=r"\.csv or \.parquet"):
        TelemetryWriter(tmp_path / "run.json", sim.table)
