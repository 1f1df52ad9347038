"""The data that flows between stages: telemetry frames, findings, alarms.

Hot data (telemetry) travels as NumPy arrays over a fixed signal index; cold data (findings,
alarms) as small frozen dataclasses. Timestamps are float seconds since the Unix epoch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, StrEnum

import numpy as np
from numpy.typing import NDArray

from safety_nexus.core.errors import DetectError

F64 = NDArray[np.float64]
Index = NDArray[np.intp]
_CROSS = ("forecast_of", "horizon", "measures")


class Criticality(StrEnum):
    """How much an abnormal signal matters, declared in the site file."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _CRITICALITY_RANK[self]


_CRITICALITY_RANK = {
    Criticality.LOW: 0,
    Criticality.MEDIUM: 1,
    Criticality.HIGH: 2,
    Criticality.CRITICAL: 3,
}


class Priority(IntEnum):
    """Alarm priority (ISA-18.2 keeps to a few levels; higher value is more urgent)."""

    LOW = 1
    MEDIUM = 2
    HIGH = 3
    EMERGENCY = 4

    @classmethod
    def from_criticality(cls, criticality: Criticality) -> Priority:
        return cls(criticality.rank + 1)

    @property
    def label(self) -> str:
        return self.name.lower()


class FindingKind(StrEnum):
    """What a detector saw. The string values are stable: they are stored and sent over the API."""

    LEVEL_SHIFT = "level_shift"  # CUSUM: the mean moved, possibly by a tiny amount
    VARIANCE = "variance"  # the noise level changed
    SPIKE = "spike"  # a single sample far outside the baseline
    STALE = "stale"  # no sample for too long
    FLATLINE = "flatline"  # samples keep arriving but do not move
    RATE = "rate"  # the signal changes faster than it normally does
    LIMIT = "limit"  # outside the declared hard limits
    FORECAST = "forecast"  # a forecast stopped agreeing with its actual (or another forecast)
    DISAGREEMENT = "disagreement"  # a redundant sensor departs from the others of its quantity
    SEASONAL = "seasonal"  # unusual for the time of day (or day of the week), not in value
    QUANTISATION = "quantisation"  # the sensor's steps coarsened, or it toggles between values
    TIME_TO_THRESHOLD = "time_to_threshold"  # trending toward a hard limit: crossing forecast
    OSCILLATION = "oscillation"  # a sustained, regular oscillation (e.g. a control loop hunting)
    # Raised at ingestion and by the pipeline rather than by the detector bank:
    PHANTOM = "phantom"  # data from a source, topic, node or signal the site does not declare
    OUT_OF_RANGE = "out_of_range"  # a value outside the signal's physically possible range
    CLOCK_SKEW = "clock_skew"  # a source's sample times are off from the time we receive them
    UNAUTHORISED_CHANGE = "unauthorised_change"  # a setpoint or directive changed outside the API
    # Raised by another monitoring system (an Alertmanager webhook), not by Nexus:
    EXTERNAL = "external"


# Findings about the data and the configuration rather than about the process: raised by
# ingestion and the pipeline, with `context` saying what was seen.
INGEST_KINDS = frozenset(
    {
        FindingKind.PHANTOM,
        FindingKind.OUT_OF_RANGE,
        FindingKind.CLOCK_SKEW,
        FindingKind.UNAUTHORISED_CHANGE,
        FindingKind.EXTERNAL,
    }
)


@dataclass(frozen=True, slots=True)
class Frame:
    """A batch of telemetry over a fixed, ordered signal index.

    `times` has shape (T,), strictly increasing; `values` has shape (T, N) where column j is
    signal j of the index the frame was built for. NaN means "no sample for this signal at this
    time" (signals have different sample periods), never "the sensor reported NaN": bad values are
    rejected at ingestion.
    """

    times: F64
    values: F64

    def __post_init__(self) -> None:
        if self.times.ndim != 1 or self.values.ndim != 2:
            raise DetectError("frame needs times of shape (T,) and values of shape (T, N)")
        if self.values.shape[0] != self.times.shape[0]:
            raise DetectError(
                f"frame has {self.times.shape[0]} times but {self.values.shape[0]} rows of values"
            )

    @property
    def n_rows(self) -> int:
        return int(self.times.shape[0])

    @property
    def n_signals(self) -> int:
        return int(self.values.shape[1])


@dataclass(frozen=True, slots=True)
class SignalTable:
    """The site's signals as parallel arrays, in the order every frame's columns use.

    Built once from the site model; the detector bank, the simulator and the store all index
    signals by position in this table.
    """

    ids: tuple[str, ...]  # globally unique signal id, "asset.name"
    assets: tuple[str, ...]  # owning asset id
    subsystems: tuple[str, ...]  # owning subsystem id
    units: tuple[str, ...]
    period: F64  # expected sample period, seconds
    normal_lo: F64  # normal operating band (what the trend draws as its band)
    normal_hi: F64
    limit_lo: F64  # hard limits; -inf / +inf when none are declared
    limit_hi: F64
    criticality: tuple[Criticality, ...]
    # Cross-signal declarations (empty arrays: none). `forecast_of[j]` is the column signal j
    # forecasts (-1: not a forecast), `horizon[j]` how far ahead, seconds; `measures[j]` the
    # number of the quantity signal j is a redundant sensor of (-1: none), named in `quantities`.
    forecast_of: Index = field(default_factory=lambda: np.empty(0, dtype=np.intp))
    horizon: F64 = field(default_factory=lambda: np.empty(0, dtype=np.float64))
    measures: Index = field(default_factory=lambda: np.empty(0, dtype=np.intp))
    quantities: tuple[str, ...] = ()
    # Signal kind: True where the signal is a cumulative counter (monitored as its rate per
    # second, see detect/counters.py), False for a gauge (empty: every signal is a gauge).
    counter: NDArray[np.bool_] = field(default_factory=lambda: np.empty(0, dtype=np.bool_))
    # What the sensor can physically report; a value outside is bad data, not a process
    # excursion (ingest.quality). -inf / +inf (or empty: all) when none is declared.
    physical_lo: F64 = field(default_factory=lambda: np.empty(0, dtype=np.float64))
    physical_hi: F64 = field(default_factory=lambda: np.empty(0, dtype=np.float64))
    index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        n = len(self.ids)
        for name in ("assets", "subsystems", "units", "criticality"):
            if len(getattr(self, name)) != n:
                raise DetectError(f"signal table field '{name}' has the wrong length")
        for name, fill, dtype in (
            ("forecast_of", -1, np.intp),
            ("horizon", 0.0, np.float64),
            ("measures", -1, np.intp),
        ):
            if n and getattr(self, name).shape == (0,):
                object.__setattr__(self, name, np.full(n, fill, dtype=dtype))
        for name, edge in (("physical_lo", -np.inf), ("physical_hi", np.inf)):
            if getattr(self, name).shape == (0,):
                object.__setattr__(self, name, np.full(n, edge))
        if n and self.counter.shape == (0,):
            object.__setattr__(self, "counter", np.zeros(n, dtype=np.bool_))
        if self.counter.shape != (n,) or self.counter.dtype != np.bool_:
            raise DetectError("signal table field 'counter' needs one bool per signal")
        for name in (
            "period",
            "normal_lo",
            "normal_hi",
            "limit_lo",
            "limit_hi",
            "physical_lo",
            "physical_hi",
            *_CROSS,
        ):
            if getattr(self, name).shape != (n,):
                raise DetectError(f"signal table field '{name}' has the wrong shape")
        self._check_cross(n)
        object.__setattr__(self, "index", {sid: i for i, sid in enumerate(self.ids)})

    def _check_cross(self, n: int) -> None:
        fc, ms = self.forecast_of, self.measures
        if np.any((fc < -1) | (fc >= n) | (fc == np.arange(n))):
            raise DetectError("signal table field 'forecast_of' must name another column")
        if np.any(fc[fc[fc >= 0]] >= 0):
            raise DetectError("signal table field 'forecast_of' names a forecast of a forecast")
        if not (np.all(np.isfinite(self.horizon)) and np.all(self.horizon >= 0)):
            raise DetectError("signal table field 'horizon' must be finite and >= 0")
        if np.any((ms < -1) | (ms >= len(self.quantities))):
            raise DetectError("signal table field 'measures' refers to an unknown quantity")
        counts = np.bincount(ms[ms >= 0], minlength=len(self.quantities))
        if np.any(counts < 2):
            raise DetectError("every quantity in 'quantities' needs at least two signals")

    def forecast_pairs(self) -> tuple[Index, Index, F64]:
        """(forecast columns, actual columns, horizons in seconds), in column order."""
        cols = np.flatnonzero(self.forecast_of >= 0)
        return cols, self.forecast_of[cols], self.horizon[cols]

    def sensor_groups(self) -> list[Index]:
        """The columns of each quantity's redundant sensors, in the order of `quantities`."""
        return [np.flatnonzero(self.measures == q) for q in range(len(self.quantities))]

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing a detector saw on one signal at one time, with the evidence for it."""

    time: float
    signal: str
    asset: str
    kind: FindingKind
    score: float  # detector statistic divided by its threshold: >= 1 means "fired"
    observed: float  # the value (or statistic) that was seen
    baseline: float  # what was expected
    sigma: float  # the baseline's standard deviation, in the signal's unit
    unit: str = ""
    detector: str = ""
    # What `observed` is when it is not the signal itself (cross-signal findings), e.g.
    # "error against sub-1.load": observed and baseline are then values of that difference.
    context: str = ""
    # Time-to-threshold forecasts: seconds from `time` until the signal is predicted to cross
    # its hard limit, and an interval around that (eta_high may be inf); None otherwise.
    eta: float | None = None
    eta_low: float | None = None
    eta_high: float | None = None
    # Oscillations: the period found, seconds (None otherwise).
    period: float | None = None

    @property
    def deviation(self) -> float:
        return self.observed - self.baseline

    @property
    def sigmas(self) -> float:
        return self.deviation / self.sigma if self.sigma > 0 else float("inf")

    def explain(self) -> str:
        """One line an operator can read: what, how far off, in units and in sigmas."""
        u = f" {self.unit}" if self.unit else ""
        what = f" ({self.context})" if self.context else ""
        if self.kind in INGEST_KINDS:  # no baseline to compare with: the context says it all
            return f"{self.signal}: {self.kind.value.replace('_', ' ')}{what}"
        return (
            f"{self.signal}: {self.kind.value.replace('_', ' ')}{what},"
            f" observed {self.observed:.6g}{u}"
            f" vs baseline {self.baseline:.6g}{u} ({self.deviation:+.3g}{u}, {self.sigmas:+.1f}σ)"
            f"{self._extra()}"
        )

    def _extra(self) -> str:
        """The forecast or the period, for the findings that carry one."""
        out = ""
        if self.eta is not None:
            lo = self.eta_low if self.eta_low is not None else self.eta
            hi = self.eta_high if self.eta_high is not None else self.eta
            hi_s = "∞" if hi == float("inf") else f"{hi:.0f}"
            out += f"; crosses its limit in ~{self.eta:.0f} s ({lo:.0f}–{hi_s} s)"
        if self.period is not None:
            out += f"; period {self.period:.3g} s"
        return out


class AlarmState(StrEnum):
    """The ISA-18.2 alarm states (see alarms.lifecycle for the machine that moves between them)."""

    UNACKNOWLEDGED = "unacknowledged"  # active, not acknowledged
    ACKNOWLEDGED = "acknowledged"  # active, acknowledged
    RETURNED_UNACKNOWLEDGED = "returned_unacknowledged"  # back to normal, not acknowledged
    NORMAL = "normal"  # back to normal and acknowledged: the alarm is closed
    LATCHED = "latched"  # a latching alarm back to normal, acknowledged: waits for a reset
    SHELVED = "shelved"  # off the list by an operator, for a time or until it clears
    SUPPRESSED = "suppressed"  # off the list by design (plant state, maintenance window)
    OUT_OF_SERVICE = "out_of_service"  # off the list by an operator, until returned to service


SHOWN_STATES = frozenset(
    {
        AlarmState.UNACKNOWLEDGED,
        AlarmState.ACKNOWLEDGED,
        AlarmState.RETURNED_UNACKNOWLEDGED,
        AlarmState.LATCHED,
    }
)
REMOVED_STATES = frozenset({AlarmState.SHELVED, AlarmState.SUPPRESSED, AlarmState.OUT_OF_SERVICE})


@dataclass(slots=True)
class Alarm:
    """One alarm per asset and finding kind; findings on any of the asset's signals feed it.

    `state` is the ISA-18.2 state (alarms.lifecycle moves it); `condition` is whether the
    process is abnormal, followed in every state. Alarms that share a cause form an incident:
    the root-cause alarm (`root_cause` None) and its consequences (`root_cause` the root's id),
    which are suppressed while the root is on the list. The first alarm of an incident to fire
    is its `first_out`.
    """

    id: str  # "<asset>:<kind>", or "<asset>:external:<name>" for alarms from Alertmanager
    asset: str
    subsystem: str
    kind: FindingKind
    priority: Priority
    state: AlarmState
    first_seen: float
    last_seen: float
    count: int = 1  # findings folded into this alarm since it was raised
    signals: list[str] = field(default_factory=list)
    message: str = ""
    acknowledged_by: str | None = None
    acknowledged_at: float | None = None
    cleared_at: float | None = None
    condition: bool = False  # the process is abnormal now
    position: str = ""  # the operator position whose list it is on
    latching: bool = False  # needs a reset after it clears and is acknowledged
    chattering: bool = False  # its condition changed at least 3 times a minute lately
    first_out: bool = False  # the first alarm of its incident
    root_cause: str | None = None  # id of the alarm this one is a consequence of
    incident: str | None = None  # "<root alarm id>@<root first_seen>"
    consequences: list[str] = field(default_factory=list)  # a root's grouped alarms
    suppressed_by: list[str] = field(default_factory=list)  # "root:<id>", "maintenance:<id>"
    out_of_service: bool = False
    shelved_until: float | None = None
    one_shot: bool = False  # shelved until the condition next clears
    # the raw condition has differed from `condition` since then: waiting out the on-delay
    # (or the off-delay, or a chatter hold); None when nothing is pending
    pending_since: float | None = None

    @property
    def active(self) -> bool:
        return self.condition

    @property
    def open(self) -> bool:
        """On the operators' list (shelved, suppressed and out-of-service alarms are not)."""
        return self.state in SHOWN_STATES

    @property
    def removed(self) -> bool:
        return self.state in REMOVED_STATES

    @property
    def closed(self) -> bool:
        return self.state is AlarmState.NORMAL


@dataclass(frozen=True, slots=True)
class Recovery:
    """A signal that had an active finding of `kind` is back to normal for that kind."""

    time: float
    signal: str
    asset: str
    kind: FindingKind
