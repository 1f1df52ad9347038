"""Alarm-load KPIs after ISA-18.2 (its alarm performance metrics), computed from the journal.

What is counted. An *annunciation* is an "alarm.unacknowledged" journal event: an alarm came
onto an operator position's list needing attention (a new activation, a return from shelved,
suppressed or out of service with its condition active). Each event names its position and
priority, so every figure below is per position where ISA-18.2 wants it so.

Periods. ISA-18.2 counts fixed 10-minute periods, and so do we: periods are anchored at `since`
(``[since + k·600, since + (k+1)·600)``); when the span is not a whole number of periods the
last one is shorter and counts in the time in flood by its true length. Hours and days are
binned the same way. Averages are rates over the whole span (total ÷ span in periods), so a
short last period does not dilute them. The most annunciations in *any* 10 minutes (a window
starting at any time) is reported beside the fixed-period maximum: a burst that straddles two
periods can be up to twice as large there.

Targets (per operator position unless said):

=============================  =============================================================
annunciations per 10 minutes   average ≤ 1 very likely acceptable, ≤ 2 manageable
annunciations per hour / day   ≤ 6 / 144 acceptable, ≤ 12 / 288 manageable
in one 10-minute period        never more than 10
time in flood                  < 1 % (a flood window with more than `flood_alarms`, default
                               10, annunciations in `flood_window`, default 10 minutes)
top 10 alarms' share           ≤ 5 % of all annunciations, ideally < 1 % (site-wide)
chattering alarms              0: an "alarm.chattering" start in the period, or at least
                               `chatter_transitions` (3) annunciations with the last less
                               than `chatter_window` (60 s) after the first
stale alarms                   0, at most fewer than 5: condition active for more than 24 h
                               at `until` (from the alarms table: the current alarms, so
                               meaningful when `until` is the journal's end)
priority distribution          low ≥ 80 %, medium ≤ 15 %, high ≤ 5 %, emergency < 1 %
                               (ISA-18.2's ~80/15/5 for three levels, plus the highest)
=============================  =============================================================

The journal can hold millions of entries: events are streamed (`SqliteStore.iter_events`), each
is reduced to a few integers, and the counting is NumPy (bincount over period indices,
searchsorted over sorted times), not Python loops over periods.

>>> from safety_nexus.store.sqlite import SqliteStore
>>> store = SqliteStore(":memory:")
>>> for i in range(11):  # 11 annunciations within one minute: a flood at 'north'
...     _ = store.add_event(
...         5.0 * i, ANNUNCIATED, "detector", f"pump-{i}:spike",
...         {"position": "north", "priority": "low"},
...     )
>>> kpis = kpis_from_store(store, since=0.0, until=3600.0)
>>> north = kpis.positions[0]
>>> north.counts, north.flood_periods, north.per_hour.average
((11, 0, 0, 0, 0, 0), 1, 11.0)
>>> round(north.flood_share, 4)
0.1667
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from safety_nexus.alarms.config import DEFAULT_POSITION, AlarmConfig
from safety_nexus.core.errors import RequestError
from safety_nexus.core.types import Alarm, Priority

if TYPE_CHECKING:
    from safety_nexus.store.sqlite import Event, SqliteStore

ANNUNCIATED = "alarm.unacknowledged"  # the journal kind of an annunciation
CHATTERING = "alarm.chattering"  # an alarm starts (chattering: true) or stops chattering

PERIOD = 600.0  # ISA-18.2's fixed 10-minute period
HOUR = 3600.0
DAY = 86400.0
STALE_AFTER = DAY

# (very likely acceptable, maximum manageable) average annunciations per period length.
RATE_TARGETS: dict[float, tuple[float, float]] = {
    PERIOD: (1.0, 2.0),
    HOUR: (6.0, 12.0),
    DAY: (144.0, 288.0),
}
MAX_PER_PERIOD = 10  # never more in one 10-minute period
FLOOD_SHARE_TARGET = 0.01  # time in flood: less than this share
TOP_N = 10
TOP_SHARE_TARGET = 0.05  # the top 10 alarms' share of annunciations: at most this ...
TOP_SHARE_IDEAL = 0.01  # ... and ideally below this
STALE_TARGET = 5  # fewer stale alarms than this (ideally none)
LABELS: tuple[str, ...] = tuple(p.label for p in sorted(Priority))  # low .. emergency
PRIORITY_TARGETS: dict[str, float] = {"low": 0.80, "medium": 0.15, "high": 0.05, "emergency": 0.01}
OTHER = "other"  # an annunciation whose priority this version does not know

IntArray = npt.NDArray[np.intp]
FloatArray = npt.NDArray[np.float64]


# -- the result -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rate:
    """Annunciations per `window` seconds at one position, against ISA-18.2's targets."""

    window: float
    average: float  # over the whole span: total ÷ (span / window)
    maximum: int  # the most in one fixed window (anchored at `since`)
    acceptable: float
    manageable: float

    @property
    def level(self) -> str:
        if self.average <= self.acceptable:
            return "acceptable"
        return "manageable" if self.average <= self.manageable else "overloaded"

    @property
    def met(self) -> bool:
        return self.average <= self.manageable

    def to_dict(self) -> dict[str, Any]:
        return {
            "window": self.window,
            "average": self.average,
            "maximum": self.maximum,
            "acceptable": self.acceptable,
            "manageable": self.manageable,
            "level": self.level,
        }


@dataclass(frozen=True, slots=True)
class PositionKpi:
    """The load of one operator position."""

    position: str
    annunciations: int
    per_10min: Rate
    per_hour: Rate
    per_day: Rate
    peak_10min: int  # the most in any 10 minutes, whatever the window's start
    periods_over_max: int  # fixed 10-minute periods with more than MAX_PER_PERIOD
    flood_periods: int  # flood windows with more than `flood_alarms`
    flood_share: float  # share of the span's time in flood windows
    counts: tuple[int, ...]  # annunciations in each fixed 10-minute period, from `since`

    def to_dict(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "annunciations": self.annunciations,
            "per_10min": self.per_10min.to_dict(),
            "per_hour": self.per_hour.to_dict(),
            "per_day": self.per_day.to_dict(),
            "peak_10min": self.peak_10min,
            "periods": len(self.counts),
            "periods_over_10": self.periods_over_max,
            "flood_periods": self.flood_periods,
            "flood_share": self.flood_share,
            "counts_10min": list(self.counts),
        }


@dataclass(frozen=True, slots=True)
class TopAlarm:
    alarm: str
    count: int
    share: float  # of all annunciations in the report
    priority: str  # as last annunciated
    position: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "alarm": self.alarm,
            "count": self.count,
            "share": self.share,
            "priority": self.priority,
            "position": self.position,
        }


@dataclass(frozen=True, slots=True)
class ChatteringAlarm:
    alarm: str
    annunciations: int  # in the period
    chattering_events: int  # times the alarm manager flagged it as starting to chatter
    burst: int  # the most annunciations within the chatter window
    priority: str
    position: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "alarm": self.alarm,
            "annunciations": self.annunciations,
            "chattering_events": self.chattering_events,
            "burst": self.burst,
            "priority": self.priority,
            "position": self.position,
        }


@dataclass(frozen=True, slots=True)
class StaleAlarm:
    alarm: str
    asset: str
    priority: str
    position: str
    state: str
    first_seen: float
    age: float  # seconds active at `until`

    def to_dict(self) -> dict[str, Any]:
        return {
            "alarm": self.alarm,
            "asset": self.asset,
            "priority": self.priority,
            "position": self.position,
            "state": self.state,
            "first_seen": self.first_seen,
            "first_seen_iso": iso(self.first_seen),
            "age_hours": self.age / HOUR,
        }


@dataclass(frozen=True, slots=True)
class PriorityShare:
    priority: str
    count: int
    share: float
    target: float

    @property
    def met(self) -> bool:
        """Low must be at least its share; the higher levels at most theirs (emergency below)."""
        if self.priority == "low":
            return self.share >= self.target
        if self.priority == "emergency":
            return self.share < self.target
        return self.share <= self.target

    def to_dict(self) -> dict[str, Any]:
        return {
            "priority": self.priority,
            "count": self.count,
            "share": self.share,
            "target": self.target,
            "met": self.met,
        }


@dataclass(frozen=True, slots=True)
class Check:
    """One KPI against its target, as the CLI table and the HTML page show it."""

    scope: str  # a position, or "all"
    name: str
    value: str
    target: str
    met: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "name": self.name,
            "value": self.value,
            "target": self.target,
            "met": self.met,
        }


@dataclass(frozen=True, slots=True)
class AlarmKpis:
    """Every KPI of the period `[since, until)`."""

    since: float
    until: float
    position: str | None  # the one position reported on, or None for all
    flood_alarms: int
    flood_window: float
    chatter_transitions: int
    chatter_window: float
    annunciations: int
    positions: tuple[PositionKpi, ...]
    top: tuple[TopAlarm, ...]
    top_share: float
    chattering: tuple[ChatteringAlarm, ...]
    stale: tuple[StaleAlarm, ...]
    priorities: tuple[PriorityShare, ...]  # LABELS in order, then OTHER when any
    period: float = PERIOD

    @property
    def span(self) -> float:
        return self.until - self.since

    def checks(self) -> list[Check]:
        """Every KPI with its target and whether it is met: per position, then site-wide."""
        out: list[Check] = []
        for p in self.positions:
            for rate, unit in ((p.per_10min, "10 min"), (p.per_hour, "hour"), (p.per_day, "day")):
                out.append(
                    Check(
                        p.position,
                        f"average per {unit}",
                        f"{rate.average:.2f} ({rate.level})",
                        f"≤ {rate.acceptable:g} acceptable, ≤ {rate.manageable:g} manageable",
                        rate.met,
                    )
                )
            out.append(
                Check(
                    p.position,
                    "most in a 10-minute period",
                    f"{p.per_10min.maximum} (any 10 min: {p.peak_10min};"
                    f" {p.periods_over_max} period(s) above {MAX_PER_PERIOD})",
                    f"≤ {MAX_PER_PERIOD}",
                    p.per_10min.maximum <= MAX_PER_PERIOD,
                )
            )
            out.append(
                Check(
                    p.position,
                    "time in flood",
                    f"{_percent(p.flood_share)} ({p.flood_periods} period(s) above"
                    f" {self.flood_alarms})",
                    f"< {_percent(FLOOD_SHARE_TARGET)}",
                    p.flood_share < FLOOD_SHARE_TARGET,
                )
            )
        scope = self.position or "all"
        out.append(
            Check(
                scope,
                f"top {TOP_N} alarms' share",
                f"{_percent(self.top_share)} ({sum(t.count for t in self.top)} of"
                f" {self.annunciations})",
                f"≤ {_percent(TOP_SHARE_TARGET)} (ideally < {_percent(TOP_SHARE_IDEAL)})",
                self.top_share <= TOP_SHARE_TARGET,
            )
        )
        out.append(
            Check(scope, "chattering alarms", str(len(self.chattering)), "0", not self.chattering)
        )
        out.append(
            Check(
                scope,
                f"stale alarms (active > {STALE_AFTER / HOUR:g} h)",
                str(len(self.stale)),
                f"0 (< {STALE_TARGET})",
                len(self.stale) < STALE_TARGET,
            )
        )
        for share in self.priorities:
            if share.priority == OTHER:
                continue
            sign = "≥" if share.priority == "low" else "<" if share.priority == "emergency" else "≤"
            out.append(
                Check(
                    scope,
                    f"{share.priority} priority share",
                    f"{_percent(share.share)} ({share.count})" if self.annunciations else "-",
                    f"{sign} {_percent(share.target)}",
                    share.met or self.annunciations == 0,
                )
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data: every figure, the per-period counts and the checks."""
        return {
            "since": self.since,
            "until": self.until,
            "since_iso": iso(self.since),
            "until_iso": iso(self.until),
            "position": self.position,
            "periods": f"fixed {self.period / 60:g}-minute periods anchored at since",
            "period_seconds": self.period,
            "flood": {"alarms": self.flood_alarms, "window": self.flood_window},
            "chatter": {"transitions": self.chatter_transitions, "window": self.chatter_window},
            "annunciations": self.annunciations,
            "positions": [p.to_dict() for p in self.positions],
            "top": {
                "n": TOP_N,
                "share": self.top_share,
                "target": TOP_SHARE_TARGET,
                "alarms": [t.to_dict() for t in self.top],
            },
            "chattering": [c.to_dict() for c in self.chattering],
            "stale": [s.to_dict() for s in self.stale],
            "priorities": [p.to_dict() for p in self.priorities],
            "checks": [c.to_dict() for c in self.checks()],
        }


def iso(t: float) -> str:
    """A journal time as ISO-8601 UTC, to the second."""
    return datetime.fromtimestamp(t, tz=UTC).isoformat(timespec="seconds")


def _percent(share: float) -> str:
    return f"{100.0 * share:.3g} %"


# -- computing --------------------------------------------------------------------------------


def kpis_from_store(
    store: SqliteStore,
    *,
    since: float,
    until: float,
    config: AlarmConfig | None = None,
    position: str | None = None,
    page: int = 10_000,
) -> AlarmKpis:
    """The KPIs of `[since, until)` from a store's journal and its current alarms."""
    _check_period(since, until)
    return compute_kpis(
        store.iter_events(prefix=ANNUNCIATED, since=since, until=until, page=page),
        store.iter_events(prefix=CHATTERING, since=since, until=until, page=page),
        store.alarms(open_only=True),
        since=since,
        until=until,
        config=config,
        position=position,
    )


def compute_kpis(
    annunciations: Iterable[Event],
    chattering: Iterable[Event],
    alarms: Iterable[Alarm],
    *,
    since: float,
    until: float,
    config: AlarmConfig | None = None,
    position: str | None = None,
) -> AlarmKpis:
    """The KPIs of `[since, until)`. Events of other kinds or outside the period are ignored
    (so a caller may pass a broader stream); `position` keeps to one operator position."""
    _check_period(since, until)
    cfg = config or AlarmConfig()
    span = until - since
    ann = _Annunciations.collect(annunciations, since, until, position)
    starts = _chattering_starts(chattering, since, until, position, ann)
    names = [position] if position is not None else sorted(ann.positions)
    # Position ids in report order; a filtered position with nothing to count still shows.
    order = {name: i for i, name in enumerate(names)}
    remap = np.array([order[name] for name in ann.positions], dtype=np.intp)
    t = ann.times()
    pos = remap[ann.position_ids()] if len(t) else np.zeros(0, dtype=np.intp)
    n_pos = len(names)

    per: dict[float, IntArray] = {w: _binned(t, pos, n_pos, since, span, w) for w in RATE_TARGETS}
    flood = _binned(t, pos, n_pos, since, span, cfg.flood_window)
    flood_lengths = _bin_lengths(span, cfg.flood_window)
    peaks = _peak_in_window(t, pos, n_pos, PERIOD)
    positions = []
    for i, name in enumerate(names):
        rates = [_rate(per[w][i], span, w) for w in RATE_TARGETS]
        in_flood = flood[i] > cfg.flood_alarms
        positions.append(
            PositionKpi(
                position=name,
                annunciations=int(per[PERIOD][i].sum()),
                per_10min=rates[0],
                per_hour=rates[1],
                per_day=rates[2],
                peak_10min=int(peaks[i]),
                periods_over_max=int(np.count_nonzero(per[PERIOD][i] > MAX_PER_PERIOD)),
                flood_periods=int(np.count_nonzero(in_flood)),
                flood_share=float(flood_lengths[in_flood].sum() / span),
                counts=tuple(per[PERIOD][i].tolist()),
            )
        )

    total = len(t)
    alarm_ids = ann.alarm_ids()
    per_alarm = np.bincount(alarm_ids, minlength=len(ann.alarms))
    # Most frequent first; ties by alarm id, so that the list is the same on every run.
    rank = np.argsort(np.argsort(np.array(ann.alarms, dtype=object)))
    top_ix = np.lexsort((rank, -per_alarm))[:TOP_N] if total else np.zeros(0, dtype=np.intp)
    top = tuple(
        TopAlarm(
            alarm=ann.alarms[k],
            count=int(per_alarm[k]),
            share=float(per_alarm[k] / total),
            priority=ann.last_priority[k],
            position=ann.last_position[k],
        )
        for k in top_ix.tolist()
    )
    top_share = sum(a.count for a in top) / total if total else 0.0

    bursts = _peak_in_window(t, alarm_ids, len(ann.alarms), cfg.chatter_window)
    chatterers: list[ChatteringAlarm] = []
    for alarm, (flagged, prio, where) in starts.items():
        k = ann.index.get(alarm)
        count, burst = (0, 0) if k is None else (int(per_alarm[k]), int(bursts[k]))
        chatterers.append(ChatteringAlarm(alarm, count, flagged, burst, prio, where))
    chatterers.extend(
        ChatteringAlarm(
            ann.alarms[k],
            int(per_alarm[k]),
            0,
            int(bursts[k]),
            ann.last_priority[k],
            ann.last_position[k],
        )
        for k in np.flatnonzero(bursts >= cfg.chatter_transitions).tolist()
        if ann.alarms[k] not in starts
    )
    chatterers.sort(key=lambda c: (-c.annunciations, -c.chattering_events, c.alarm))

    by_priority = np.bincount(ann.priority_ids(), minlength=len(LABELS) + 1)
    priorities = [
        PriorityShare(
            label, int(by_priority[i]), _share(by_priority[i], total), PRIORITY_TARGETS[label]
        )
        for i, label in enumerate(LABELS)
    ]
    if by_priority[-1]:
        priorities.append(
            PriorityShare(OTHER, int(by_priority[-1]), _share(by_priority[-1], total), 0.0)
        )

    return AlarmKpis(
        since=since,
        until=until,
        position=position,
        flood_alarms=cfg.flood_alarms,
        flood_window=cfg.flood_window,
        chatter_transitions=cfg.chatter_transitions,
        chatter_window=cfg.chatter_window,
        annunciations=total,
        positions=tuple(positions),
        top=top,
        top_share=top_share,
        chattering=tuple(chatterers),
        stale=tuple(_stale(alarms, until, position, ann)),
        priorities=tuple(priorities),
    )


def _check_period(since: float, until: float) -> None:
    if not (math.isfinite(since) and math.isfinite(until)):
        raise RequestError("the period needs finite times")
    if since >= until:
        raise RequestError(f"the period is empty: since {iso(since)} is not before {iso(until)}")


class _Annunciations:
    """The annunciations reduced to parallel arrays of small integers, plus the names."""

    def __init__(self) -> None:
        self.positions: dict[str, int] = {}
        self.index: dict[str, int] = {}  # alarm id -> alarm number
        self.alarms: list[str] = []
        self.last_priority: list[str] = []
        self.last_position: list[str] = []
        self._times: list[float] = []
        self._pos: list[int] = []
        self._alarm: list[int] = []
        self._prio: list[int] = []

    @classmethod
    def collect(
        cls, events: Iterable[Event], since: float, until: float, position: str | None
    ) -> _Annunciations:
        self = cls()
        prio_ids = {label: i for i, label in enumerate(LABELS)}
        for e in events:
            if e.kind != ANNUNCIATED or not since <= e.time < until:
                continue
            where = _position(e.data)
            if position is not None and where != position:
                continue
            prio = _priority(e.data)
            k = self.index.get(e.subject)
            if k is None:
                k = self.index[e.subject] = len(self.alarms)
                self.alarms.append(e.subject)
                self.last_priority.append(prio)
                self.last_position.append(where)
            else:
                self.last_priority[k] = prio
                self.last_position[k] = where
            self._times.append(e.time)
            self._pos.append(self.positions.setdefault(where, len(self.positions)))
            self._alarm.append(k)
            self._prio.append(prio_ids.get(prio, len(LABELS)))
        return self

    def times(self) -> FloatArray:
        return np.asarray(self._times, dtype=np.float64)

    def position_ids(self) -> IntArray:
        return np.asarray(self._pos, dtype=np.intp)

    def alarm_ids(self) -> IntArray:
        return np.asarray(self._alarm, dtype=np.intp)

    def priority_ids(self) -> IntArray:
        return np.asarray(self._prio, dtype=np.intp)


def _position(data: dict[str, Any]) -> str:
    # An event without a position was journalled before positions existed: everything went
    # to the one default position then.
    value = data.get("position")
    return str(value) if value else DEFAULT_POSITION


def _priority(data: dict[str, Any]) -> str:
    value = data.get("priority")
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return Priority(value).label
        except ValueError:
            return OTHER
    return str(value) if value is not None else OTHER


def _chattering_starts(
    events: Iterable[Event],
    since: float,
    until: float,
    position: str | None,
    ann: _Annunciations,
) -> dict[str, tuple[int, str, str]]:
    """Alarm id -> (times it started chattering, priority, position), in order of first start."""
    out: dict[str, tuple[int, str, str]] = {}
    for e in events:
        if (
            e.kind != CHATTERING
            or not since <= e.time < until
            or e.data.get("chattering") is not True
        ):
            continue
        k = ann.index.get(e.subject)
        where = _position(e.data) if "position" in e.data or k is None else ann.last_position[k]
        if position is not None and where != position:
            continue
        prio = _priority(e.data) if "priority" in e.data or k is None else ann.last_priority[k]
        count = out[e.subject][0] if e.subject in out else 0
        out[e.subject] = (count + 1, prio, where)
    return out


def _stale(
    alarms: Iterable[Alarm], until: float, position: str | None, ann: _Annunciations
) -> list[StaleAlarm]:
    found = []
    for a in alarms:
        if not a.condition or a.first_seen >= until - STALE_AFTER:
            continue
        k = ann.index.get(a.id)
        where = a.position or (ann.last_position[k] if k is not None else DEFAULT_POSITION)
        if position is not None and where != position:
            continue
        found.append(
            StaleAlarm(
                alarm=a.id,
                asset=a.asset,
                priority=a.priority.label,
                position=where,
                state=a.state.value,
                first_seen=a.first_seen,
                age=until - a.first_seen,
            )
        )
    found.sort(key=lambda s: (s.first_seen, s.alarm))
    return found


# -- counting ---------------------------------------------------------------------------------


def _periods(span: float, width: float) -> int:
    """How many fixed windows of `width` cover `span` (the last may be shorter). Rounded first
    so that a span of exactly 7 days give or take a float's last bit is 1008 periods, not
    1009 with a last one a microsecond long."""
    return max(1, math.ceil(round(span / width, 6)))


def _bin_lengths(span: float, width: float) -> FloatArray:
    n = _periods(span, width)
    lengths = np.full(n, width)
    lengths[-1] = max(0.0, span - (n - 1) * width)
    return lengths


def _binned(
    t: FloatArray, group: IntArray, n_groups: int, since: float, span: float, width: float
) -> IntArray:
    """counts[g, k]: events of group g in window k, windows of `width` anchored at `since`."""
    n = _periods(span, width)
    k = np.minimum(((t - since) // width).astype(np.intp), n - 1)
    flat = np.bincount(group * n + k, minlength=n_groups * n)
    return flat.reshape(n_groups, n)


def _peak_in_window(t: FloatArray, group: IntArray, n_groups: int, window: float) -> IntArray:
    """peak[g]: the most events of group g with the last less than `window` after the first.

    Sorting by (group, time) and spacing the groups apart on one axis turns "how many of my
    group's events fall in [t, t + window)" into one searchsorted over every event.
    """
    peak = np.zeros(n_groups, dtype=np.intp)
    if len(t) == 0:
        return peak
    order = np.lexsort((t, group))
    g = group[order]
    rel = t[order] - t.min()
    gap = float(rel.max()) + 2.0 * window
    key = g * gap + rel
    counts = np.searchsorted(key, key + window, side="left") - np.arange(len(key))
    firsts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    peak[g[firsts]] = np.maximum.reduceat(counts, firsts)
    return peak


def _rate(counts: IntArray, span: float, width: float) -> Rate:
    acceptable, manageable = RATE_TARGETS[width]
    return Rate(
        window=width,
        average=float(counts.sum() / (span / width)),
        maximum=int(counts.max()),
        acceptable=acceptable,
        manageable=manageable,
    )


def _share(count: np.integer[Any] | int, total: int) -> float:
    return float(count / total) if total else 0.0
