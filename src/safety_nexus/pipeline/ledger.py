"""Exactly-once ingestion: the write-ahead log, the sources' sequence numbers, and how far the
history has durably got.

    accept:   check the sequence  ->  write ahead (fsync)  ->  record the sequence  ->  ack
    process:  reorder buffer releases rows  ->  history appends them with a *mark*
    restart:  replay logged batches after the history's durable mark, minus samples the
              history already holds

A batch's samples may leave the reorder buffer over several frames, so a batch is *released*
only once no sample at or before its newest time is still held (`released`); the mark given to
a frame is the highest lsn up to which every batch is released. The history stores that mark
with the rows it writes (`HistoryStore.durable_mark`), so after a crash every logged batch above
the durable mark is replayed; samples of it the history already holds (at or before that
signal's latest durable time: the buffer releases each signal in time order, and anything older
would have been refused as late) are skipped. So each acknowledged sample is stored once.

Sequence numbers: a batch that carries one (signed sources, or unsigned ones sending
X-Nexus-Sequence) is accepted only above the source's last number. A resend of the last batch
itself, same number and same body digest, is a duplicate: answered as accepted, not processed
again (the sender lost our answer, e.g. in a crash). The number is recorded after the batch is
logged; after a crash the log's numbers are recorded again, so a batch logged but not yet
recorded is still a duplicate when resent.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from safety_nexus.core.errors import IngestError
from safety_nexus.ingest.json_batch import ParsedBatch
from safety_nexus.ingest.wal import WalRecord, WriteAheadLog
from safety_nexus.store.history import HistoryStore
from safety_nexus.store.sqlite import SqliteStore


class DuplicateBatch(IngestError):
    """A resend of the last accepted batch of a source: already accepted, nothing to do."""

    def __init__(self, source: str, sequence: int) -> None:
        super().__init__(
            f"batch {sequence} of source '{source}' was already accepted", "duplicate", 200
        )
        self.source = source
        self.sequence = sequence


@dataclass(frozen=True, slots=True)
class Recovered:
    batch: ParsedBatch  # the samples the history does not hold yet
    lsn: int
    skipped: int  # samples the history already held


class IngestLedger:
    """Owned by the runtime; called under its ingest lock (not thread-safe by itself)."""

    def __init__(self, wal: WriteAheadLog | None, store: SqliteStore) -> None:
        self.wal = wal
        self._store = store
        self._unreleased: deque[tuple[int, float]] = deque()  # (lsn, newest sample time)
        self._mark: int | None = None
        # What the log held when it was opened: the last run's. Batches logged in this run
        # (accepted before the worker started) are in the queue, not to be recovered again.
        self._recover_before = wal.next_lsn if wal is not None else 0

    def check(self, source: str, sequence: int, digest: str) -> None:
        """Refuse a replay (409); raise `DuplicateBatch` for a resend of the last batch."""
        last = self._store.last_batch(source)
        if last is None or sequence > last[0]:
            return
        if sequence == last[0] and digest and digest == last[1]:
            raise DuplicateBatch(source, sequence)
        raise IngestError(
            f"sequence {sequence} of source '{source}' is not above the last accepted"
            f" ({last[0]}): a replay",
            "replayed",
            409,
        )

    def record(
        self,
        batch: ParsedBatch,
        *,
        sequence: int | None,
        digest: str,
        time: float,
        log: bool = True,
    ) -> int | None:
        """Make an accepted batch durable (before it is acknowledged); its lsn, if logged."""
        lsn = None
        if self.wal is not None and log:
            lsn = self.wal.append(batch, sequence=sequence, digest=digest)
            self._unreleased.append((lsn, float(batch.times.max())))
        if sequence is not None:
            self._store.advance_sequence(batch.source, sequence, time=time, digest=digest)
        return lsn

    def released(self, oldest_held: float) -> int | None:
        """The mark for the frame just released: every logged batch up to it has left the
        reorder buffer (`oldest_held`: the oldest sample time still held, inf if none)."""
        while self._unreleased and self._unreleased[0][1] < oldest_held:
            self._mark = self._unreleased.popleft()[0]
        return self._mark

    def trim(self, durable_mark: int) -> None:
        """Drop log segments the history no longer needs."""
        if self.wal is not None:
            self.wal.release(durable_mark)

    def recover(self, history: HistoryStore, *, time: float) -> Iterator[Recovered]:
        """Logged batches the history does not fully hold, oldest first, with the samples it
        does hold removed; the sources' sequence numbers are recorded again on the way."""
        if self.wal is None:
            return
        after = history.durable_mark
        records = [r for r in self.wal.records(after=after) if r.lsn < self._recover_before]
        if not records:
            return
        since = min(float(r.batch.times.min()) for r in records if len(r.batch))
        held = history.last_times(since) if np.isfinite(since) else None
        for rec in records:
            self._resequence(rec, time)
            batch = rec.batch
            if held is not None and len(batch):
                keep = batch.times > held[batch.columns]
                skipped = int((~keep).sum())
                batch = ParsedBatch(
                    batch.source, batch.columns[keep], batch.times[keep], batch.values[keep]
                )
            else:
                skipped = 0
            if len(batch):
                self._unreleased.append((rec.lsn, float(batch.times.max())))
            yield Recovered(batch, rec.lsn, skipped)

    def _resequence(self, rec: WalRecord, time: float) -> None:
        if rec.sequence is not None:
            self._store.advance_sequence(
                rec.batch.source, rec.sequence, time=time, digest=rec.digest
            )

    def close(self) -> None:
        if self.wal is not None:
            self.wal.close()
