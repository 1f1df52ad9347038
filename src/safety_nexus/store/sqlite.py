"""Findings, alarms, the event journal and configuration in one embedded SQLite file.

On one machine Safety Nexus needs no database server (SPEC capability 10): this file is the
durable state of the control room. SQLite runs in WAL mode so that readers never wait for the
writer and a crash (even `kill -9`) loses no committed transaction; `synchronous=NORMAL` is
the WAL setting that keeps this guarantee for process crashes while syncing only at
checkpoints (a power cut may lose the last transactions, never corrupt the file).

Threads. The pipeline writes from its own thread while the API reads from the event loop (and
FastAPI's thread pool). All writes go through one connection under one lock: SQLite admits a
single writer anyway, and serialising in Python means our own threads never hit SQLITE_BUSY.
Reads use one connection per reading thread, opened lazily and marked `query_only`, so that
under WAL a dashboard read runs against the last committed snapshot while a write batch is in
progress, instead of queueing behind it. Every connection is tracked and closed by `close()`.
An in-memory database (`":memory:"`, handy in tests) cannot be shared between connections, so
there reads use the writer connection under the lock.

Schema versions live in `PRAGMA user_version`; `_MIGRATIONS[i]` takes the schema from version
`i` to `i + 1`, and each runs in its own transaction when the store opens. A file written by a
newer version is refused rather than misread.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import math
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from safety_nexus.core.closing import Closeable
from safety_nexus.core.errors import StoreError
from safety_nexus.core.types import Alarm, AlarmState, Finding, FindingKind, Priority

BUSY_TIMEOUT_S = 5.0
CONFIG_CHANGED = "config.changed"  # event kind `put_config` journals in the same transaction

_MIGRATIONS: tuple[str, ...] = (
    # 0 -> 1: the first schema.
    """
    CREATE TABLE findings (
        id INTEGER PRIMARY KEY,
        time REAL NOT NULL,
        signal TEXT NOT NULL,
        asset TEXT NOT NULL,
        kind TEXT NOT NULL,
        score REAL,
        observed REAL,
        baseline REAL,
        sigma REAL,
        unit TEXT NOT NULL,
        detector TEXT NOT NULL
    );
    CREATE INDEX findings_time ON findings (time);
    CREATE INDEX findings_asset_time ON findings (asset, time);
    CREATE INDEX findings_signal_time ON findings (signal, time);

    CREATE TABLE alarms (
        id TEXT PRIMARY KEY,
        asset TEXT NOT NULL,
        subsystem TEXT NOT NULL,
        kind TEXT NOT NULL,
        priority INTEGER NOT NULL,
        state TEXT NOT NULL,
        first_seen REAL NOT NULL,
        last_seen REAL NOT NULL,
        count INTEGER NOT NULL,
        signals TEXT NOT NULL,
        message TEXT NOT NULL,
        acknowledged_by TEXT,
        acknowledged_at REAL,
        cleared_at REAL
    );
    CREATE INDEX alarms_state ON alarms (state);

    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        time REAL NOT NULL,
        kind TEXT NOT NULL,
        actor TEXT NOT NULL,
        subject TEXT NOT NULL,
        data TEXT NOT NULL
    );
    CREATE INDEX events_time ON events (time);
    CREATE INDEX events_kind_time ON events (kind, time);
    CREATE INDEX events_subject_time ON events (subject, time);

    CREATE TABLE config_history (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL,
        time REAL NOT NULL,
        actor TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        text TEXT NOT NULL
    );
    CREATE INDEX config_history_key ON config_history (key, id);
    """,
    # 1 -> 2: what cross-signal findings are against, time-to-threshold forecasts, periods.
    """
    ALTER TABLE findings ADD COLUMN context TEXT NOT NULL DEFAULT '';
    ALTER TABLE findings ADD COLUMN eta REAL;
    ALTER TABLE findings ADD COLUMN eta_low REAL;
    ALTER TABLE findings ADD COLUMN eta_high REAL;
    ALTER TABLE findings ADD COLUMN period REAL;
    """,
    # 2 -> 3: the last accepted sequence number of each signing source (ingest.auth).
    """
    CREATE TABLE source_sequences (
        source TEXT PRIMARY KEY,
        sequence INTEGER NOT NULL,
        time REAL NOT NULL
    );
    """,
    # 3 -> 4: the digest of each source's last accepted batch, so that a resend of it (the
    # sender lost our answer) is told from a replay (pipeline.runtime).
    """
    ALTER TABLE source_sequences ADD COLUMN digest TEXT NOT NULL DEFAULT '';
    """,
    # 4 -> 5: the full ISA-18.2 lifecycle and incidents (alarms.manager): the condition apart
    # from the state, the operator position, latching, chatter, the incident and its root,
    # suppression reasons, out of service and shelves.
    """
    ALTER TABLE alarms ADD COLUMN condition INTEGER NOT NULL DEFAULT 0;
    UPDATE alarms SET condition = state IN ('unacknowledged', 'acknowledged');
    ALTER TABLE alarms ADD COLUMN position TEXT NOT NULL DEFAULT '';
    ALTER TABLE alarms ADD COLUMN latching INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE alarms ADD COLUMN chattering INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE alarms ADD COLUMN first_out INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE alarms ADD COLUMN root_cause TEXT;
    ALTER TABLE alarms ADD COLUMN incident TEXT;
    ALTER TABLE alarms ADD COLUMN consequences TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE alarms ADD COLUMN suppressed_by TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE alarms ADD COLUMN out_of_service INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE alarms ADD COLUMN shelved_until REAL;
    ALTER TABLE alarms ADD COLUMN one_shot INTEGER NOT NULL DEFAULT 0;
    """,
    # 5 -> 6: a condition change waiting out its delay, so that an alarm about to fire (still
    # normal) survives a restart.
    """
    ALTER TABLE alarms ADD COLUMN pending_since REAL;
    """,
)
SCHEMA_VERSION = len(_MIGRATIONS)


@dataclass(frozen=True, slots=True)
class StoredFinding:
    """A finding as stored, with the id the database gave it."""

    id: int
    finding: Finding


@dataclass(frozen=True, slots=True)
class Event:
    """One entry of the append-only journal."""

    id: int
    time: float
    kind: str  # e.g. "alarm.raised", "alarm.acknowledged", "scenario.injected", "config.changed"
    actor: str  # who or what did it: a user name, "pipeline", "sim", "system"
    subject: str  # what it is about: an alarm id, an asset, a config key
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ConfigVersion:
    """One stored version of a configuration document."""

    id: int
    key: str
    time: float
    actor: str
    sha256: str
    text: str


def _json_default(obj: object) -> object:
    # NumPy scalars and enums turn up in event data from the pipeline; anything else is a bug.
    if isinstance(obj, Enum):
        return obj.value
    item = getattr(obj, "item", None)
    if callable(item):
        return item()
    raise TypeError(f"cannot store a {type(obj).__name__} in event data")


def _float(value: Any) -> float:
    # SQLite stores NaN as NULL; a finding's observed value may legitimately be NaN.
    return math.nan if value is None else float(value)


def _optional(value: Any) -> float | None:
    return None if value is None else float(value)


class SqliteStore(Closeable):
    """Durable findings, alarms, events and configuration. Thread-safe; see the module doc."""

    def __init__(self, path: Path | str) -> None:
        self._path = str(path)
        self._memory = self._path == ":memory:"
        self._lock = threading.Lock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._closed = False
        if not self._memory:
            Path(self._path).parent.mkdir(parents=True, exist_ok=True)
        with self._errors("open the store"):
            self._writer = self._connect()
            try:
                if not self._memory:
                    mode = self._writer.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                    if str(mode).lower() != "wal":
                        raise StoreError(f"cannot switch {self._path} to WAL mode (got {mode})")
                self._writer.execute("PRAGMA synchronous=NORMAL")
                self._migrate()
            except BaseException:
                self._writer.close()
                raise

    # -- plumbing -----------------------------------------------------------------------------

    @property
    def path(self) -> str:
        return self._path

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a batch is one transaction
        # and reads are never left holding an implicit transaction (which would pin the WAL).
        conn = sqlite3.connect(
            self._path,
            timeout=BUSY_TIMEOUT_S,
            isolation_level=None,
            check_same_thread=False,
        )
        conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        return conn

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as err:
            raise StoreError(f"cannot {what} in {self._path}: {err}") from err

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the store is closed")

    @contextmanager
    def _write(self, what: str) -> Iterator[sqlite3.Connection]:
        """One write transaction on the writer connection; rolled back if anything fails."""
        with self._lock, self._errors(what):
            self._check_open()
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextmanager
    def _read(self, what: str) -> Iterator[sqlite3.Connection]:
        if self._memory:
            with self._lock, self._errors(what):
                self._check_open()
                yield self._writer
            return
        with self._errors(what):
            self._check_open()
            conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
            if conn is None:
                conn = self._connect()
                conn.execute("PRAGMA query_only=ON")
                with self._lock:
                    self._check_open()
                    self._readers.append(conn)
                self._local.conn = conn
            yield conn

    def _migrate(self) -> None:
        conn = self._writer
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self._path} has schema version {version}; this version of Safety Nexus "
                f"reads up to {SCHEMA_VERSION}"
            )
        for target in range(version + 1, SCHEMA_VERSION + 1):
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _MIGRATIONS[target - 1].split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version={target}")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def schema_version(self) -> int:
        with self._read("read the schema version") as conn:
            return int(conn.execute("PRAGMA user_version").fetchone()[0])

    def journal_mode(self) -> str:
        with self._read("read the journal mode") as conn:
            return str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()

    def close(self) -> None:
        """Close every connection. Idempotent; any later call raises `StoreError`."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            with self._errors("close the store"):
                for conn in self._readers:
                    conn.close()
                self._readers.clear()
                if not self._memory:
                    # Fold the WAL back into the main file so a clean shutdown leaves one file.
                    self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                self._writer.close()

    # -- findings -----------------------------------------------------------------------------

    def add_findings(self, findings: Sequence[Finding]) -> list[int]:
        """Insert a batch in one transaction; returns the new ids in the batch's order."""
        if not findings:
            return []
        rows = [
            (
                f.time,
                f.signal,
                f.asset,
                f.kind.value,
                f.score,
                f.observed,
                f.baseline,
                f.sigma,
                f.unit,
                f.detector,
                f.context,
                f.eta,
                f.eta_low,
                f.eta_high,
                f.period,
            )
            for f in findings
        ]
        ids: list[int] = []
        with self._write("store findings") as conn:
            # Row by row for the ids: executemany does not report them, and findings are
            # few compared with samples (a storm is hundreds, not millions).
            for row in rows:
                cur = conn.execute(
                    "INSERT INTO findings (time, signal, asset, kind, score, observed, baseline,"
                    " sigma, unit, detector, context, eta, eta_low, eta_high, period)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    row,
                )
                ids.append(int(cur.lastrowid or 0))
        return ids

    def findings(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        asset: str | None = None,
        signal: str | None = None,
        kind: FindingKind | None = None,
        limit: int = 500,
    ) -> list[StoredFinding]:
        """Findings with `since <= time < until` matching every filter given, newest first."""
        where, args = _where(
            ("time >= ?", since),
            ("time < ?", until),
            ("asset = ?", asset),
            ("signal = ?", signal),
            ("kind = ?", kind.value if kind is not None else None),
        )
        sql = (
            "SELECT id, time, signal, asset, kind, score, observed, baseline, sigma, unit,"
            " detector, context, eta, eta_low, eta_high, period"
            f" FROM findings{where} ORDER BY time DESC, id DESC LIMIT ?"
        )
        with self._read("read findings") as conn:
            rows = conn.execute(sql, (*args, max(0, limit))).fetchall()
        return [self._finding(row) for row in rows]

    def count_findings(self) -> int:
        with self._read("count findings") as conn:
            return int(conn.execute("SELECT count(*) FROM findings").fetchone()[0])

    def _finding(self, row: tuple[Any, ...]) -> StoredFinding:
        try:
            kind = FindingKind(row[4])
        except ValueError as err:
            raise StoreError(f"finding {row[0]} has unknown kind {row[4]!r}") from err
        finding = Finding(
            time=float(row[1]),
            signal=row[2],
            asset=row[3],
            kind=kind,
            score=_float(row[5]),
            observed=_float(row[6]),
            baseline=_float(row[7]),
            sigma=_float(row[8]),
            unit=row[9],
            detector=row[10],
            context=row[11],
            eta=_optional(row[12]),
            eta_low=_optional(row[13]),
            eta_high=_optional(row[14]),
            period=_optional(row[15]),
        )
        return StoredFinding(id=int(row[0]), finding=finding)

    # -- alarms -------------------------------------------------------------------------------

    def save_alarm(self, alarm: Alarm) -> None:
        """Insert or replace the alarm's current state (alarms are keyed by id)."""
        self.save_alarms([alarm])

    def save_alarms(self, alarms: Sequence[Alarm]) -> None:
        """Upsert several alarms in one transaction (one pipeline step can change many)."""
        if not alarms:
            return
        rows = [
            (
                a.id,
                a.asset,
                a.subsystem,
                a.kind.value,
                int(a.priority),
                a.state.value,
                a.first_seen,
                a.last_seen,
                a.count,
                json.dumps(list(a.signals)),
                a.message,
                a.acknowledged_by,
                a.acknowledged_at,
                a.cleared_at,
                int(a.condition),
                a.position,
                int(a.latching),
                int(a.chattering),
                int(a.first_out),
                a.root_cause,
                a.incident,
                json.dumps(list(a.consequences)),
                json.dumps(list(a.suppressed_by)),
                int(a.out_of_service),
                a.shelved_until,
                int(a.one_shot),
                a.pending_since,
            )
            for a in alarms
        ]
        marks = ", ".join("?" * len(rows[0]))
        with self._write("store alarms") as conn:
            conn.executemany(
                f"INSERT OR REPLACE INTO alarms ({_ALARM_COLUMNS}) VALUES ({marks})", rows
            )

    def alarms(self, *, open_only: bool = True) -> list[Alarm]:
        """Alarms by priority (most urgent first), then most recent first. `open_only`: those
        not closed (normal), including the shelved, suppressed and out of service."""
        where = " WHERE state != ?" if open_only else ""
        args: tuple[str, ...] = (AlarmState.NORMAL.value,) if open_only else ()
        with self._read("read alarms") as conn:
            rows = conn.execute(
                f"SELECT {_ALARM_COLUMNS} FROM alarms{where}"
                " ORDER BY priority DESC, last_seen DESC, id",
                args,
            ).fetchall()
        return [_alarm(row) for row in rows]

    def get_alarm(self, alarm_id: str) -> Alarm | None:
        with self._read("read an alarm") as conn:
            row = conn.execute(
                f"SELECT {_ALARM_COLUMNS} FROM alarms WHERE id = ?", (alarm_id,)
            ).fetchone()
        return None if row is None else _alarm(row)

    def load_alarms(self) -> dict[str, Alarm]:
        """The alarms not closed, and those about to fire (waiting out their on-delay), by id:
        what the alarm stage holds in memory, restored at startup.

        Closed (normal) alarms stay in the table as history; a new finding of the same asset
        and kind raises a fresh alarm under the same id, which replaces the closed row.
        """
        with self._read("read alarms") as conn:
            rows = conn.execute(
                f"SELECT {_ALARM_COLUMNS} FROM alarms"
                " WHERE state != ? OR pending_since IS NOT NULL ORDER BY id",
                (AlarmState.NORMAL.value,),
            ).fetchall()
        return {alarm.id: alarm for alarm in map(_alarm, rows)}

    # -- events -------------------------------------------------------------------------------

    def add_event(
        self,
        time: float,
        kind: str,
        actor: str,
        subject: str,
        data: Mapping[str, object],
    ) -> int:
        """Append one entry to the journal; returns its id."""
        text = _event_json(data)
        with self._write("append an event") as conn:
            return _insert_event(conn, time, kind, actor, subject, text)

    def events(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        kind: str | None = None,
        subject: str | None = None,
        limit: int = 500,
    ) -> list[Event]:
        """Journal entries with `since <= time < until` matching the filters, newest first."""
        where, args = _where(
            ("time >= ?", since),
            ("time < ?", until),
            ("kind = ?", kind),
            ("subject = ?", subject),
        )
        sql = (
            f"SELECT id, time, kind, actor, subject, data FROM events{where}"
            " ORDER BY time DESC, id DESC LIMIT ?"
        )
        with self._read("read events") as conn:
            rows = conn.execute(sql, (*args, max(0, limit))).fetchall()
        out = []
        for row in rows:
            try:
                data = json.loads(row[5])
            except json.JSONDecodeError as err:
                raise StoreError(f"event {row[0]} has unreadable data") from err
            out.append(
                Event(
                    id=int(row[0]),
                    time=float(row[1]),
                    kind=row[2],
                    actor=row[3],
                    subject=row[4],
                    data=data,
                )
            )
        return out

    def count_events(self) -> int:
        with self._read("count events") as conn:
            return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])

    def iter_events(
        self,
        *,
        prefix: str = "",
        since: float | None = None,
        until: float | None = None,
        page: int = 10_000,
    ) -> Iterator[Event]:
        """Journal entries whose kind starts with `prefix` and `since <= time < until`, oldest
        first (ties by id), read `page` rows at a time: for reports over the whole journal,
        which a week of a busy site makes millions of entries long.

        Each kind is read on its own along the (kind, time) index, by keyset pages (`WHERE
        kind = ? AND (time, id) > last row`: no sort, no OFFSET), and the kinds are merged by
        time. A page is one short read, so a long report never holds a read transaction open
        (which would keep the WAL from being checkpointed) nor, in memory, the store's lock.
        The kinds are those present when the iteration starts; entries appended meanwhile
        are included when their kind was and they fall in the range.
        """
        if page < 1:
            raise StoreError(f"page must be at least 1, not {page}")
        streams = [self._iter_kind(kind, since, until, page) for kind in self._event_kinds(prefix)]
        return heapq.merge(*streams, key=lambda e: (e.time, e.id))

    def _event_kinds(self, prefix: str) -> list[str]:
        """The distinct kinds starting with `prefix`, by skipping along the (kind, time) index:
        one lookup per kind instead of a scan of every entry."""
        end = _prefix_end(prefix)
        kinds: list[str] = []
        with self._read("read event kinds") as conn:
            while True:
                low, op = (kinds[-1], ">") if kinds else (prefix, ">=")
                sql = f"SELECT kind FROM events WHERE kind {op} ?"
                args: tuple[str, ...] = (low,)
                if end is not None:
                    sql += " AND kind < ?"
                    args += (end,)
                row = conn.execute(sql + " ORDER BY kind LIMIT 1", args).fetchone()
                if row is None:
                    return kinds
                kinds.append(str(row[0]))

    def _iter_kind(
        self, kind: str, since: float | None, until: float | None, page: int
    ) -> Iterator[Event]:
        after: tuple[float, int] | None = None
        while True:
            # After the first page the last row is the only lower bound: given `time >= ?`
            # too, SQLite seeks to `since` and walks every earlier page again.
            where, args = _where(
                ("kind = ?", kind),
                ("time >= ?", since if after is None else None),
                ("time < ?", until),
            )
            if after is not None:
                where += " AND (time, id) > (?, ?)"
                args += after
            with self._read("read events") as conn:
                rows = conn.execute(
                    f"SELECT id, time, kind, actor, subject, data FROM events{where}"
                    " ORDER BY time, id LIMIT ?",
                    (*args, page),
                ).fetchall()
            for row in rows:
                yield _event(row)
            if len(rows) < page:
                return
            after = (float(rows[-1][1]), int(rows[-1][0]))

    # -- signed sources -----------------------------------------------------------------------

    def last_sequence(self, source: str) -> int | None:
        """The last accepted sequence number of a signing source, or None before its first."""
        with self._read("read a source's sequence") as conn:
            row = conn.execute(
                "SELECT sequence FROM source_sequences WHERE source = ?", (source,)
            ).fetchone()
        return None if row is None else int(row[0])

    def last_batch(self, source: str) -> tuple[int, str] | None:
        """The sequence number and body digest of a source's last accepted batch."""
        with self._read("read a source's sequence") as conn:
            row = conn.execute(
                "SELECT sequence, digest FROM source_sequences WHERE source = ?", (source,)
            ).fetchone()
        return None if row is None else (int(row[0]), str(row[1]))

    def advance_sequence(
        self, source: str, sequence: int, *, time: float, digest: str = ""
    ) -> bool:
        """Record `sequence` (and its batch's digest) as accepted if it is above the stored
        one; False if it is not, so that two writers racing with one number cannot both
        advance."""
        with self._write("store a source's sequence") as conn:
            cur = conn.execute(
                "INSERT INTO source_sequences (source, sequence, time, digest) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (source) DO UPDATE SET sequence = excluded.sequence,"
                " time = excluded.time, digest = excluded.digest"
                " WHERE excluded.sequence > source_sequences.sequence",
                (source, sequence, time, digest),
            )
            return cur.rowcount == 1

    # -- configuration ------------------------------------------------------------------------

    def put_config(
        self,
        key: str,
        text: str,
        *,
        time: float,
        actor: str,
        event: Mapping[str, object] | None = None,
    ) -> bool:
        """Store a new version of a configuration document; False if it is unchanged.

        A change also appends a `config.changed` event (with both digests, and `event`'s fields
        when given: a diff, a reason) in the same transaction, so the journal can never miss a
        configuration change.
        """
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        with self._write("store configuration") as conn:
            row = conn.execute(
                "SELECT sha256 FROM config_history WHERE key = ? ORDER BY id DESC LIMIT 1",
                (key,),
            ).fetchone()
            previous = None if row is None else str(row[0])
            if previous == digest:
                return False
            conn.execute(
                "INSERT INTO config_history (key, time, actor, sha256, text)"
                " VALUES (?, ?, ?, ?, ?)",
                (key, time, actor, digest, text),
            )
            data = {**(event or {}), "key": key, "sha256": digest, "previous_sha256": previous}
            _insert_event(conn, time, CONFIG_CHANGED, actor, key, _event_json(data))
        return True

    def get_config(self, key: str) -> str | None:
        """The latest version's text, or None if the key was never stored."""
        with self._read("read configuration") as conn:
            row = conn.execute(
                "SELECT text FROM config_history WHERE key = ? ORDER BY id DESC LIMIT 1",
                (key,),
            ).fetchone()
        return None if row is None else str(row[0])

    def config_history(self, key: str) -> list[ConfigVersion]:
        """Every stored version of a key, oldest first."""
        with self._read("read configuration history") as conn:
            rows = conn.execute(
                "SELECT id, key, time, actor, sha256, text FROM config_history"
                " WHERE key = ? ORDER BY id",
                (key,),
            ).fetchall()
        return [
            ConfigVersion(
                id=int(r[0]), key=r[1], time=float(r[2]), actor=r[3], sha256=r[4], text=r[5]
            )
            for r in rows
        ]


_ALARM_COLUMNS = (
    "id, asset, subsystem, kind, priority, state, first_seen, last_seen, count, signals,"
    " message, acknowledged_by, acknowledged_at, cleared_at, condition, position, latching,"
    " chattering, first_out, root_cause, incident, consequences, suppressed_by,"
    " out_of_service, shelved_until, one_shot, pending_since"
)


def _alarm(row: tuple[Any, ...]) -> Alarm:
    try:
        kind = FindingKind(row[3])
        priority = Priority(int(row[4]))
        state = AlarmState(row[5])
        signals = [str(s) for s in json.loads(row[9])]
        consequences = [str(s) for s in json.loads(row[21])]
        suppressed_by = [str(s) for s in json.loads(row[22])]
    except (ValueError, TypeError) as err:
        # json.JSONDecodeError is a ValueError too.
        raise StoreError(f"alarm {row[0]!r} holds data this version cannot read: {err}") from err
    return Alarm(
        id=row[0],
        asset=row[1],
        subsystem=row[2],
        kind=kind,
        priority=priority,
        state=state,
        first_seen=float(row[6]),
        last_seen=float(row[7]),
        count=int(row[8]),
        signals=signals,
        message=row[10],
        acknowledged_by=row[11],
        acknowledged_at=None if row[12] is None else float(row[12]),
        cleared_at=_optional(row[13]),
        condition=bool(row[14]),
        position=row[15],
        latching=bool(row[16]),
        chattering=bool(row[17]),
        first_out=bool(row[18]),
        root_cause=row[19],
        incident=row[20],
        consequences=consequences,
        suppressed_by=suppressed_by,
        out_of_service=bool(row[23]),
        shelved_until=_optional(row[24]),
        one_shot=bool(row[25]),
        pending_since=_optional(row[26]),
    )


def _event_json(data: Mapping[str, object]) -> str:
    try:
        # allow_nan=False: the journal is read back by JSON clients, and NaN is not JSON.
        return json.dumps(dict(data), default=_json_default, allow_nan=False, sort_keys=True)
    except (TypeError, ValueError) as err:
        raise StoreError(f"event data cannot be stored: {err}") from err


def _insert_event(
    conn: sqlite3.Connection, time: float, kind: str, actor: str, subject: str, text: str
) -> int:
    cur = conn.execute(
        "INSERT INTO events (time, kind, actor, subject, data) VALUES (?, ?, ?, ?, ?)",
        (time, kind, actor, subject, text),
    )
    return int(cur.lastrowid or 0)


def _event(row: tuple[Any, ...]) -> Event:
    try:
        data = json.loads(row[5])
    except json.JSONDecodeError as err:
        raise StoreError(f"event {row[0]} has unreadable data") from err
    return Event(
        id=int(row[0]), time=float(row[1]), kind=row[2], actor=row[3], subject=row[4], data=data
    )


def _prefix_end(prefix: str) -> str | None:
    """The least string above every string starting with `prefix` ("alarm." -> "alarm/"), so
    that `kind >= prefix AND kind < end` is an index range; None for the empty prefix."""
    if not prefix:
        return None
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _where(*clauses: tuple[str, object | None]) -> tuple[str, tuple[object, ...]]:
    """AND together the clauses whose argument is not None."""
    used = [(sql, arg) for sql, arg in clauses if arg is not None]
    if not used:
        return "", ()
    return " WHERE " + " AND ".join(sql for sql, _ in used), tuple(arg for _, arg in used)
