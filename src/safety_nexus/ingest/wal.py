"""The ingest write-ahead log: an accepted batch is on disk before it is acknowledged.

Every batch a source hands to the runtime is appended here, and the file is fdatasync'd, before
the caller hears "accepted". After a crash (kill -9, power loss), the runtime reads back what it
had accepted but not yet made durable elsewhere (see `pipeline.runtime`: the history marks how
far it got) and processes it again, so nothing acknowledged is lost.

On disk: a directory of segment files `wal-<first lsn, 16 digits>.log`. A segment starts with
a header naming the signal ids its column numbers refer to (so a log written before the site
changed is still read correctly), then holds records:

    record  = length u32 | crc32 u32 | payload            (little-endian; crc32 of payload)
    payload = lsn u64 | sequence i64 (-1: none) | n u32 | source_len u16 | digest_len u16
              | source utf-8 | digest ascii | columns u32[n] | times f64[n] | values f64[n]

`lsn` (log sequence number) rises by one per record across segments. A torn or corrupt tail,
left by a crash in the middle of a write, is cut off when the log is opened: that batch was never
acknowledged. A new segment is started once the current one passes `segment_bytes`; whole
segments are deleted by `release(lsn)` once every record in them is durable downstream.

Thread-safe: the runtime appends under its ingest lock and releases from its worker.
"""

from __future__ import annotations

import json
import logging
import os
import re
import struct
import threading
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from safety_nexus.core.closing import Closeable
from safety_nexus.core.errors import StoreError
from safety_nexus.ingest.json_batch import ParsedBatch

log = logging.getLogger(__name__)

_MAGIC = b"NXWAL1\n"
_SEGMENT = re.compile(r"^wal-(\d{16})\.log$")
_FRAME = struct.Struct("<II")  # length, crc32
_HEAD = struct.Struct("<QqIHH")  # lsn, sequence, n, source length, digest length
_MAX_RECORD = 64 * 1024 * 1024  # far above any batch the parsers accept


@dataclass(frozen=True, slots=True)
class WalRecord:
    lsn: int
    batch: ParsedBatch  # columns refer to the table given to `records`
    sequence: int | None  # the source's batch sequence number, if it sent one
    digest: str  # the batch body's digest (for telling a resend from a replay), or ""
    dropped: int  # samples whose signal the current site no longer has


def _segment_name(first_lsn: int) -> str:
    return f"wal-{first_lsn:016d}.log"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class WriteAheadLog(Closeable):
    """Append batches durably; read back the ones after a given lsn; drop what is no longer
    needed. `signal_ids` are the current site's signals, in table order."""

    def __init__(
        self,
        directory: Path,
        signal_ids: Sequence[str],
        *,
        segment_bytes: int = 64 * 1024 * 1024,
        sync: bool = True,
    ) -> None:
        self._dir = Path(directory)
        self._ids = list(signal_ids)
        self._index = {sid: i for i, sid in enumerate(self._ids)}
        self._segment_bytes = segment_bytes
        self._sync = sync
        try:
            self._dir.mkdir(parents=True, exist_ok=True)
            self._segments = self._scan()
            self._next = self._recover_tail()
        except OSError as err:
            raise StoreError(f"cannot open the write-ahead log in {self._dir}: {err}") from err
        self._fd = -1
        self._size = 0
        self._closed = False
        self._lock = threading.Lock()

    # -- files --------------------------------------------------------------------------------

    @property
    def directory(self) -> Path:
        return self._dir

    @property
    def next_lsn(self) -> int:
        return self._next

    def _scan(self) -> list[tuple[int, Path]]:
        out = []
        for path in self._dir.iterdir():
            m = _SEGMENT.match(path.name)
            if m:
                out.append((int(m[1]), path))
        return sorted(out)

    def _header(self) -> bytes:
        ids = json.dumps({"signals": self._ids}, separators=(",", ":")).encode()
        return _MAGIC + struct.pack("<I", len(ids)) + ids

    @staticmethod
    def _read_header(data: bytes, path: Path) -> tuple[list[str], int]:
        if not data.startswith(_MAGIC) or len(data) < len(_MAGIC) + 4:
            raise StoreError(f"{path} is not a Safety Nexus write-ahead log segment")
        (size,) = struct.unpack_from("<I", data, len(_MAGIC))
        start = len(_MAGIC) + 4
        try:
            ids = json.loads(data[start : start + size])["signals"]
        except (ValueError, KeyError, TypeError) as err:
            raise StoreError(f"{path}: unreadable segment header ({err})") from err
        return [str(s) for s in ids], start + size

    def _recover_tail(self) -> int:
        """Cut a torn record off the last segment; the next lsn follows the last whole one."""
        if not self._segments:
            return 1
        first, path = self._segments[-1]
        data = path.read_bytes()
        try:
            _, offset = self._read_header(data, path)
        except StoreError:
            # a crash while the header of a new segment was written: nothing in it was acked
            log.warning("write-ahead log: removing unreadable new segment %s", path)
            path.unlink()
            self._segments.pop()
            return self._recover_tail() if self._segments else first
        last = first - 1
        end = offset
        for lsn, _payload, stop in _frames(data, offset):
            last, end = lsn, stop
        if end < len(data):
            log.warning(
                "write-ahead log: cutting %d bytes of a torn record off %s", len(data) - end, path
            )
            with path.open("r+b") as f:
                f.truncate(end)
                f.flush()
                os.fsync(f.fileno())
        return last + 1

    def _open_segment(self) -> None:
        path = self._dir / _segment_name(self._next)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        header = self._header()
        if os.fstat(fd).st_size == 0:
            os.write(fd, header)
            if self._sync:
                os.fsync(fd)
                _fsync_dir(self._dir)
        self._fd = fd
        self._size = os.fstat(fd).st_size
        if not self._segments or self._segments[-1][1] != path:
            self._segments.append((self._next, path))

    # -- writing ------------------------------------------------------------------------------

    def append(self, batch: ParsedBatch, *, sequence: int | None = None, digest: str = "") -> int:
        """Write one batch and make it durable; returns its lsn."""
        if self._closed:
            raise StoreError("the write-ahead log is closed")
        source = batch.source.encode("utf-8")
        dig = digest.encode("ascii")
        n = len(batch)
        payload = b"".join(
            (
                _HEAD.pack(
                    self._next, -1 if sequence is None else sequence, n, len(source), len(dig)
                ),
                source,
                dig,
                batch.columns.astype("<u4", copy=False).tobytes(),
                batch.times.astype("<f8", copy=False).tobytes(),
                batch.values.astype("<f8", copy=False).tobytes(),
            )
        )
        record = _FRAME.pack(len(payload), zlib.crc32(payload)) + payload
        with self._lock:
            return self._write(record)

    def _write(self, record: bytes) -> int:
        if self._closed:
            raise StoreError("the write-ahead log is closed")
        try:
            if self._fd < 0 or self._size >= self._segment_bytes:
                self._rotate()
            written = os.write(self._fd, record)
            if written != len(record):  # O_APPEND on a local disk writes all or raises
                raise OSError(f"short write ({written} of {len(record)} bytes)")
            if self._sync:
                os.fdatasync(self._fd)
        except OSError as err:
            raise StoreError(f"cannot write ahead to {self._dir}: {err}") from err
        self._size += len(record)
        lsn = self._next
        self._next += 1
        return lsn

    def _rotate(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self._open_segment()

    def release(self, lsn: int) -> int:
        """Delete whole segments whose records are all at or below `lsn` (never the one being
        written). Returns how many were deleted."""
        with self._lock:
            return self._release(lsn)

    def _release(self, lsn: int) -> int:
        removed = 0
        while len(self._segments) > 1 and self._segments[1][0] - 1 <= lsn:
            _, path = self._segments.pop(0)
            path.unlink(missing_ok=True)
            removed += 1
        return removed

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
            self._closed = True

    # -- reading ------------------------------------------------------------------------------

    def records(self, after: int = 0) -> Iterator[WalRecord]:
        """Records with lsn > `after`, oldest first, their columns mapped to the current
        signal ids (samples of signals the site no longer has are dropped and counted)."""
        for i, (_first, path) in enumerate(self._segments):
            nxt = self._segments[i + 1][0] if i + 1 < len(self._segments) else None
            if nxt is not None and nxt - 1 <= after:
                continue  # every record of this segment is at or before `after`
            try:
                data = path.read_bytes()
            except OSError as err:
                raise StoreError(f"cannot read the write-ahead log {path}: {err}") from err
            ids, offset = self._read_header(data, path)
            remap = np.array([self._index.get(s, -1) for s in ids], dtype=np.int64)
            for lsn, payload, _ in _frames(data, offset):
                if lsn > after:
                    yield _decode(lsn, payload, remap, path)


def _frames(data: bytes, offset: int) -> Iterator[tuple[int, bytes, int]]:
    """(lsn, payload, end offset) of each whole, intact record from `offset` on."""
    size = len(data)
    while offset + _FRAME.size <= size:
        length, crc = _FRAME.unpack_from(data, offset)
        start = offset + _FRAME.size
        stop = start + length
        if length < _HEAD.size or length > _MAX_RECORD or stop > size:
            return
        payload = data[start:stop]
        if zlib.crc32(payload) != crc:
            return
        (lsn,) = struct.unpack_from("<Q", payload)
        yield lsn, payload, stop
        offset = stop


def _decode(lsn: int, payload: bytes, remap: np.ndarray, path: Path) -> WalRecord:
    _, sequence, n, slen, dlen = _HEAD.unpack_from(payload)
    pos = _HEAD.size
    source = payload[pos : pos + slen].decode("utf-8")
    pos += slen
    digest = payload[pos : pos + dlen].decode("ascii")
    pos += dlen
    cols = np.frombuffer(payload, dtype="<u4", count=n, offset=pos).astype(np.int64)
    pos += 4 * n
    times = np.frombuffer(payload, dtype="<f8", count=n, offset=pos).astype(np.float64)
    pos += 8 * n
    values = np.frombuffer(payload, dtype="<f8", count=n, offset=pos).astype(np.float64)
    if cols.size and int(cols.max()) >= remap.shape[0]:
        raise StoreError(f"{path}: record {lsn} refers to a signal the segment does not name")
    mapped = remap[cols]
    keep = mapped >= 0
    dropped = int(n - keep.sum())
    batch = ParsedBatch(source, mapped[keep], times[keep], values[keep])
    return WalRecord(lsn, batch, None if sequence < 0 else sequence, digest, dropped)
