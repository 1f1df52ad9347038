"""NaN means "no sample" inside frames; at the edges it is bad input (JSON) or a gap (CSV cells)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from safety_nexus.core.errors import IngestError
from safety_nexus.core.types import FindingKind, Frame
from safety_nexus.detect import DetectorBank
from safety_nexus.detect.testing import make_table
from safety_nexus.ingest.frames import FrameAssembler
from safety_nexus.ingest.json_batch import parse_json_batch
from safety_nexus.ingest.wide import read_frame

I64 = np.int64


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_json_non_finite_values_are_bad_input_and_leave_no_trace(literal: str) -> None:
    table = make_table(2)
    body = (
        '{"samples": [{"signal": "a0.s0", "time": 5, "value": 1.0},'
        f' {{"signal": "a1.s1", "time": 5, "value": {literal}}}]}}'
    ).encode()
    with pytest.raises(IngestError) as info:
        parse_json_batch(body, table)
    assert info.value.reason == "non_finite"
    assert "samples[1].value" in str(info.value)
    # nothing was recorded: the good sample of the rejected batch can be sent again
    ok = parse_json_batch(
        json.dumps({"samples": [{"signal": "a0.s0", "time": 5, "value": 1.0}]}).encode(), table
    )
    frame = FrameAssembler(table).assemble(ok.columns, ok.times, ok.values)
    assert frame.times.tolist() == [5.0]


def test_the_assembler_refuses_nan_values_too() -> None:
    asm = FrameAssembler(make_table(2), tolerance=1.0)
    with pytest.raises(IngestError) as info:
        asm.assemble(np.array([0, 1], dtype=I64), np.array([1.0, 1.0]), np.array([1.0, np.nan]))
    assert info.value.reason == "non_finite"
    assert asm.held == 0


def test_csv_replay_with_empty_cells_is_a_stream_with_gaps(tmp_path: Path) -> None:
    rows = 1500
    rng = np.random.default_rng(3)
    values = 10.0 + rng.normal(size=(rows, 2))
    missing = np.zeros((rows, 2), dtype=np.bool_)
    missing[rng.random(rows) < 0.01, 0] = True  # the odd empty cell
    missing[800:900, 1] = True  # a hundred seconds without column 1
    lines = ["timestamp,a0.s0,a1.s1"]
    for i in range(rows):
        cells = ["" if missing[i, j] else f"{values[i, j]:.6f}" for j in range(2)]
        lines.append(f"{1000 + i},{cells[0]},{cells[1]}")
    path = tmp_path / "rec.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    table = make_table(2)
    frame = read_frame(path, table)
    assert np.array_equal(np.isnan(frame.values), missing)
    result = DetectorBank(table).process(Frame(frame.times, frame.values))
    assert [(f.signal, f.kind, f.time) for f in result.findings] == [
        ("a1.s1", FindingKind.STALE, 1000.0 + 799 + 3 + 1)
    ]
    assert [(r.signal, r.time) for r in result.recoveries] == [("a1.s1", 1900.0)]
