from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from safety_nexus.core.errors import StoreError
from safety_nexus.ingest.json_batch import ParsedBatch
from safety_nexus.ingest.wal import WriteAheadLog

IDS = ["a.x", "a.y", "b.z"]


def batch(seed: int, n: int = 5, source: str = "gw") -> ParsedBatch:
    rng = np.random.default_rng(seed)
    return ParsedBatch(
        source,
        rng.integers(0, len(IDS), n).astype(np.int64),
        1000.0 + np.sort(rng.random(n)),
        rng.normal(size=n),
    )


def same(a: ParsedBatch, b: ParsedBatch) -> None:
    assert a.source == b.source
    np.testing.assert_array_equal(a.columns, b.columns)
    np.testing.assert_array_equal(a.times, b.times)
    np.testing.assert_array_equal(a.values, b.values)


def test_records_come_back_in_order_with_their_sequence_and_digest(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path, IDS)
    written = [batch(i) for i in range(4)]
    lsns = [wal.append(b, sequence=10 + i, digest=f"d{i}") for i, b in enumerate(written)]
    wal.close()
    assert lsns == [1, 2, 3, 4]
    again = WriteAheadLog(tmp_path, IDS)
    records = list(again.records())
    assert [r.lsn for r in records] == lsns
    for rec, b, i in zip(records, written, range(4), strict=True):
        same(rec.batch, b)
        assert (rec.sequence, rec.digest, rec.dropped) == (10 + i, f"d{i}", 0)
    assert [r.lsn for r in again.records(after=2)] == [3, 4]
    assert again.next_lsn == 5


def test_a_torn_tail_is_cut_and_writing_carries_on(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path, IDS)
    wal.append(batch(1))
    wal.append(batch(2))
    wal.close()
    (segment,) = tmp_path.iterdir()
    data = segment.read_bytes()
    segment.write_bytes(data[:-7])  # a crash in the middle of the second record
    again = WriteAheadLog(tmp_path, IDS)
    assert [r.lsn for r in again.records()] == [1]
    assert again.append(batch(3)) == 2
    again.close()
    assert [r.lsn for r in WriteAheadLog(tmp_path, IDS).records()] == [1, 2]


def test_a_corrupt_record_ends_the_log(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path, IDS)
    for i in range(3):
        wal.append(batch(i))
    wal.close()
    (segment,) = tmp_path.iterdir()
    data = bytearray(segment.read_bytes())
    data[-20] ^= 0xFF  # a flipped bit in the last record
    segment.write_bytes(bytes(data))
    assert [r.lsn for r in WriteAheadLog(tmp_path, IDS).records()] == [1, 2]


def test_segments_rotate_and_release_whole_segments_only(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path, IDS, segment_bytes=300)
    for i in range(10):
        wal.append(batch(i))
    segments = sorted(tmp_path.iterdir())
    assert len(segments) > 2
    removed = wal.release(5)
    assert removed >= 1
    remaining = [r.lsn for r in wal.records()]
    assert remaining[-1] == 10
    assert remaining[0] <= 6  # nothing after the released lsn is gone
    wal.release(100)
    assert len(list(tmp_path.iterdir())) == 1  # the segment being written stays
    wal.close()


def test_columns_follow_signal_ids_across_a_site_change(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path, IDS)
    b = ParsedBatch("gw", np.array([0, 1, 2]), np.array([1.0, 2.0, 3.0]), np.array([4.0, 5.0, 6.0]))
    wal.append(b)
    wal.close()
    (rec,) = WriteAheadLog(tmp_path, ["b.z", "a.x", "c.new"]).records()
    assert rec.batch.columns.tolist() == [1, 0]  # a.x, b.z in the new order; a.y is gone
    assert rec.batch.values.tolist() == [4.0, 6.0]
    assert rec.dropped == 1


def test_not_a_log_is_refused_by_name(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path, IDS)
    wal.append(batch(1))
    wal.append(batch(2))
    wal.close()
    (tmp_path / "wal-0000000000000000.log").write_bytes(b"garbage that is not a segment")
    with pytest.raises(StoreError, match="not a Safety Nexus write-ahead log"):
        list(WriteAheadLog(tmp_path, IDS).records(after=-1))
