"""What the API sends and receives, split by direction (…Public out, …Create in)."""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field

from safety_nexus.control.config_integrity import ControlState
from safety_nexus.core.types import Alarm, Finding
from safety_nexus.pipeline.runtime import Status


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class SubsystemPublic(_Out):
    id: str
    name: str


class AssetPublic(_Out):
    id: str
    subsystem: str
    type: str
    name: str
    criticality: str
    signals: list[str]


class DependencyPublic(_Out):
    provider: str
    dependant: str
    kind: str
    lag: float


class SitePublic(_Out):
    name: str
    subsystems: list[SubsystemPublic]
    assets: list[AssetPublic]
    dependencies: list[DependencyPublic]


class SubsystemStatusPublic(_Out):
    id: str
    name: str
    status: str
    open_alarms: dict[str, int]
    assets_abnormal: int
    assets_total: int


class StatusPublic(_Out):
    time: float
    subsystems: list[SubsystemStatusPublic]

    @classmethod
    def of(cls, status: Status) -> StatusPublic:
        return cls(
            time=status.time,
            subsystems=[
                SubsystemStatusPublic(
                    id=s.id,
                    name=s.name,
                    status=s.status,
                    open_alarms=s.open_alarms,
                    assets_abnormal=s.assets_abnormal,
                    assets_total=s.assets_total,
                )
                for s in status.subsystems
            ],
        )


class Point(_Out):
    time: float
    value: float


class SignalPublic(_Out):
    id: str
    asset: str
    subsystem: str
    unit: str
    normal: tuple[float, float]
    limits: tuple[float, float] | None
    period: float
    latest: Point | None


class HistoryPublic(_Out):
    signal: str
    unit: str
    normal: tuple[float, float]
    limits: tuple[float, float] | None
    times: list[float]
    values: list[float | None]


class FindingPublic(_Out):
    id: int
    time: float
    signal: str
    asset: str
    kind: str
    score: float
    observed: float
    baseline: float
    sigma: float
    deviation: float
    sigmas: float | None
    unit: str
    detector: str
    explanation: str
    context: str = ""  # what a cross-signal finding is against ("error against sub-1.load")
    eta: float | None = None  # time-to-threshold: seconds until the limit is crossed
    eta_low: float | None = None
    eta_high: float | None = None  # None also where the interval is open (infinite)
    period: float | None = None  # oscillations: seconds

    @classmethod
    def of(cls, fid: int, f: Finding) -> FindingPublic:
        sigmas = f.sigmas
        return cls(
            id=fid,
            time=f.time,
            signal=f.signal,
            asset=f.asset,
            kind=f.kind.value,
            score=f.score,
            observed=f.observed,
            baseline=f.baseline,
            sigma=f.sigma,
            deviation=f.deviation,
            sigmas=sigmas if math.isfinite(sigmas) else None,
            unit=f.unit,
            detector=f.detector,
            explanation=f.explain(),
            context=f.context,
            eta=f.eta,
            eta_low=f.eta_low,
            eta_high=f.eta_high if f.eta_high is not None and math.isfinite(f.eta_high) else None,
            period=f.period,
        )


class AlarmPublic(_Out):
    id: str
    asset: str
    subsystem: str
    kind: str
    priority: str
    priority_rank: int
    state: str
    active: bool  # the condition: the process is abnormal now
    shown: bool  # on the operators' list
    first_seen: float
    last_seen: float
    count: int
    signals: list[str]
    message: str
    acknowledged_by: str | None
    acknowledged_at: float | None
    cleared_at: float | None
    position: str
    latching: bool
    chattering: bool
    first_out: bool
    root_cause: str | None
    incident: str | None
    consequences: list[str]
    suppressed_by: list[str]
    out_of_service: bool
    shelved_until: float | None
    one_shot: bool
    pending_since: float | None

    @classmethod
    def of(cls, a: Alarm) -> AlarmPublic:
        return cls(
            id=a.id,
            asset=a.asset,
            subsystem=a.subsystem,
            kind=a.kind.value,
            priority=a.priority.label,
            priority_rank=int(a.priority),
            state=a.state.value,
            active=a.active,
            shown=a.open,
            first_seen=a.first_seen,
            last_seen=a.last_seen,
            count=a.count,
            signals=list(a.signals),
            message=a.message,
            acknowledged_by=a.acknowledged_by,
            acknowledged_at=a.acknowledged_at,
            cleared_at=a.cleared_at,
            position=a.position,
            latching=a.latching,
            chattering=a.chattering,
            first_out=a.first_out,
            root_cause=a.root_cause,
            incident=a.incident,
            consequences=list(a.consequences),
            suppressed_by=list(a.suppressed_by),
            out_of_service=a.out_of_service,
            shelved_until=a.shelved_until,
            one_shot=a.one_shot,
            pending_since=a.pending_since,
        )


class FloodPublic(_Out):
    position: str
    flood: bool
    count: int  # alarms annunciated at this position in the last flood window
    since: float | None
    window: float  # seconds
    limit: int  # more than this many in the window is a flood


class OperatorActionCreate(BaseModel):
    """An operator's action on an alarm: who, and optionally why (kept in the journal)."""

    model_config = ConfigDict(extra="forbid")

    user: str = Field(min_length=1, max_length=100)
    note: str | None = Field(default=None, max_length=2000)


AcknowledgeCreate = OperatorActionCreate


class ShelveCreate(OperatorActionCreate):
    """Shelve for `duration` seconds, or with `one_shot` until the condition next clears."""

    duration: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    one_shot: bool = False


class MaintenanceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")
    user: str = Field(min_length=1, max_length=100)
    start: float = Field(allow_inf_nan=False)
    end: float = Field(allow_inf_nan=False)
    assets: list[str] = Field(default_factory=list)
    subsystems: list[str] = Field(default_factory=list)
    note: str = Field(default="", max_length=2000)


class MaintenancePublic(_Out):
    id: str
    start: float
    end: float
    actor: str
    assets: list[str]
    subsystems: list[str]
    note: str


class AlarmEventPublic(_Out):
    id: int
    time: float
    kind: str
    actor: str
    data: dict[str, object]


class InjectCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    params: dict[str, float | str] = Field(default_factory=dict)


class Accepted(_Out):
    accepted: int
    duplicate: bool = False  # a resend of a batch already accepted: nothing new was taken


class ScenarioPublic(_Out):
    id: str
    name: str
    kind: str
    description: str


class Health(_Out):
    status: str
    time: float
    signals: int
    queue_depth: int
    subscribers: int


class SetpointPublic(_Out):
    id: str
    asset: str
    value: float  # authorised now
    unit: str
    tolerance: float  # absolute: a readback further than this from `value` is a change
    range: tuple[float, float] | None  # what a change may set
    declared: float  # the site file's value
    changed_at: float
    changed_by: str
    reason: str
    signal: str | None  # the controller's readback of the value in effect
    reported: float | None  # its last value
    reported_at: float | None
    in_effect: bool | None  # the readback agrees with `value` (None: nothing reported yet)
    description: str

    @classmethod
    def of(cls, s: ControlState) -> SetpointPublic:
        return cls(
            id=s.id,
            asset=s.asset,
            value=float(s.value),  # a setpoint's values are numbers
            unit=s.unit,
            tolerance=s.tolerance,
            range=s.range,
            declared=float(s.declared),
            changed_at=s.changed_at,
            changed_by=s.changed_by,
            reason=s.reason,
            signal=s.signal,
            reported=s.reported,
            reported_at=s.reported_at,
            in_effect=s.in_effect,
            description=s.description,
        )


class DirectivePublic(_Out):
    id: str
    asset: str
    value: str  # the authorised state
    states: list[str]
    declared: str
    changed_at: float
    changed_by: str
    reason: str
    signal: str | None  # reports the index of the state in effect
    reported: float | None  # the last index reported
    reported_state: str | None  # its state (None: nothing reported, or no such state)
    reported_at: float | None
    in_effect: bool | None
    description: str

    @classmethod
    def of(cls, s: ControlState) -> DirectivePublic:
        return cls(
            id=s.id,
            asset=s.asset,
            value=str(s.value),
            states=list(s.states),
            declared=str(s.declared),
            changed_at=s.changed_at,
            changed_by=s.changed_by,
            reason=s.reason,
            signal=s.signal,
            reported=s.reported,
            reported_state=s.reported_state,
            reported_at=s.reported_at,
            in_effect=s.in_effect,
            description=s.description,
        )


class SetpointUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: float = Field(allow_inf_nan=False)
    user: str = Field(min_length=1, max_length=100)
    reason: str = Field(min_length=1, max_length=2000)


class DirectiveUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: str = Field(min_length=1, max_length=64)
    user: str = Field(min_length=1, max_length=100)
    reason: str = Field(min_length=1, max_length=2000)


class ControlEventPublic(_Out):
    """One journal entry of a setpoint or directive: an authorised change (`config.changed`,
    `actor` the user) or a change seen in its readback (`config.observed_change`)."""

    id: int
    time: float
    kind: str
    actor: str
    data: dict[str, object]
