"""The site model: what a site file may say, strictly.

Unknown keys are rejected everywhere (`extra="forbid"`); cross-references (an asset's subsystem, a
dependency's assets, a failsafe's signal) are checked in `Site`'s validator so that every error
names the field it is about. Durations are seconds, or strings such as "500ms", "5s", "2m", "1h".

Dependencies point the way trouble flows: from the `provider` (a feeder) to the `dependant`
(the pump it powers), after `lag` seconds.

Two declarations on a signal feed the cross-signal detectors:

* `forecast_of: <asset>.<name>` (with an optional `horizon`): the signal is a forecast of that
  one. A forecast points at its actual, as a failsafe's condition points at its signal.
* `measures: <quantity>`: signals that share the key are redundant sensors of one quantity.
  The key sits on each sensor rather than in a top-level list of signal ids (as
  `redundancy_groups` lists assets) because a sensor's redundancy is a property of the sensor:
  it is read and written next to its unit and band, adding a third transmitter is one line in
  one place, and there is no list of ids that could dangle or drift out of date. What can still
  go wrong is checked: a key that only one signal uses, and units that differ within a key.

Setpoints and directives (top-level `setpoints:` and `directives:`) are the configuration the
operators authorise: a setpoint is a number a controller holds (a pressure, a temperature), a
directive a mode it runs in (auto, manual, off). Each names its asset, the authorised value at
start and, optionally, the `signal` through which the controller reports what is in effect;
`control.config_integrity` keeps the authorised values and flags a reported one that differs.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from safety_nexus.core.types import Criticality
from safety_nexus.site.keys import ed25519_public_key
from safety_nexus.site.validate import CrossReferenceError, cross_check

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
_ID = r"^[a-z0-9][a-z0-9_\-]*$"  # lower-case ids: safe in URLs, topics and file names


def _parse_duration(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like '5s'")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if not m:
            raise ValueError(f"'{value}' is not a duration (use e.g. 500ms, 5s, 2m, 1h)")
        return float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
    return value


Duration = Annotated[float, BeforeValidator(_parse_duration), Field(ge=0)]
Id = Annotated[str, Field(pattern=_ID, min_length=1, max_length=64)]
# A line-protocol name in a source's `map`: measurement, optional tags, one space, field.
_EXTERNAL = re.compile(r"^([^\s,=]+)((?:,[^\s,=]+=[^\s,=]+)*) ([^\s,=]+)$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class DependencyKind(StrEnum):
    POWER = "power"
    WATER = "water"
    AIR = "air"
    DATA = "data"
    CONTROL = "control"


PayloadFormat = Literal["json", "sparkplug"]


class SourceKind(StrEnum):
    SIMULATOR = "simulator"
    HTTP = "http"
    MQTT = "mqtt"
    OPCUA = "opcua"
    PROMETHEUS = "prometheus"
    REPLAY = "replay"


class Authority(StrEnum):
    """Who may carry out a failsafe's action (see SPEC: response and authority)."""

    AUTOMATIC = "automatic"  # pre-approved, bounded, reversible
    CONFIRM = "confirm"  # an operator must approve
    TWO_PERSON = "two_person"  # critical: two operators must approve


class Range(_Strict):
    """A closed interval [low, high]."""

    low: float
    high: float

    @model_validator(mode="before")
    @classmethod
    def _from_pair(cls, data: Any) -> Any:
        if isinstance(data, list | tuple):
            if len(data) != 2:
                raise ValueError("a range is [low, high]")
            return {"low": data[0], "high": data[1]}
        return data

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        return self


class SignalKind(StrEnum):
    """What a signal's value means (after Prometheus's metric types)."""

    GAUGE = "gauge"  # a level that goes up and down: a temperature, a pressure, a load
    # A cumulative count that only grows, restarting from 0 on a reset: packets_total,
    # energy_kwh. Detectors watch its rate per second; its normal band and limits are rates.
    COUNTER = "counter"


class Signal(_Strict):
    """One measured quantity of an asset. Its global id is "<asset>.<name>"."""

    name: Id
    unit: str = ""
    normal: Range  # the normal operating band
    limits: Range | None = None  # hard limits, outside of which the value is a limit violation
    # What the sensor can physically report (e.g. [0, 25] bar for a 0-25 bar transmitter): a
    # value outside is bad data (an out_of_range finding), kept away from the detectors.
    physical: Range | None = None
    period: Duration = Field(default=1.0, gt=0)  # expected seconds between samples
    criticality: Criticality | None = None  # defaults to the asset's
    description: str = ""
    kind: SignalKind = SignalKind.GAUGE  # a counter is monitored as its rate (detect/counters)
    # This signal is a forecast of another one ("<asset>.<name>"): its sample at t − horizon
    # predicts the other's value at t. Checked by the forecast-consistency detector.
    forecast_of: str | None = None
    horizon: Duration | None = None  # only with forecast_of; 0 when not given
    # Redundant sensors: signals with the same `measures` key measure one quantity (in the same
    # unit), and each is checked against the others by the sensor-disagreement detector.
    measures: Id | None = None

    @model_validator(mode="after")
    def _limits_contain_normal(self) -> Signal:
        if self.limits is not None and (
            self.limits.low > self.normal.low or self.limits.high < self.normal.high
        ):
            raise ValueError("limits must contain the normal band")
        if self.horizon is not None and self.forecast_of is None:
            raise ValueError("'horizon' is only allowed with 'forecast_of'")
        return self


class Subsystem(_Strict):
    id: Id
    name: str
    description: str = ""


class Asset(_Strict):
    id: Id
    subsystem: Id
    type: Id  # e.g. feeder, pump, sprinkler-zone, fan, chiller, compute-node: the simulator's model
    name: str = ""
    criticality: Criticality = Criticality.MEDIUM
    signals: list[Signal] = Field(default_factory=list)


class Dependency(_Strict):
    """`dependant` needs `provider`: trouble flows from provider to dependant after `lag`."""

    provider: Id
    dependant: Id
    kind: DependencyKind
    lag: Duration = 0.0


class RedundancyGroup(_Strict):
    """`required` of the `members` must be healthy for the group to do its job (k of n)."""

    id: Id
    members: list[Id] = Field(min_length=2)
    required: int = Field(ge=1)

    @model_validator(mode="after")
    def _k_of_n(self) -> RedundancyGroup:
        if self.required > len(self.members):
            raise ValueError(
                f"required ({self.required}) exceeds the number of members ({len(self.members)})"
            )
        return self


class Condition(_Strict):
    """A signal crossing a value and staying there for `for_` seconds."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    signal: str  # global signal id "<asset>.<name>"
    above: float | None = None
    below: float | None = None
    for_: Duration = Field(default=0.0, alias="for")

    @model_validator(mode="after")
    def _one_bound(self) -> Condition:
        if (self.above is None) == (self.below is None):
            raise ValueError("a condition needs exactly one of 'above' or 'below'")
        return self


class ActionKind(StrEnum):
    FAILOVER = "failover"  # switch the load of `target`'s group to the standby `target`
    START = "start"
    STOP = "stop"
    OPEN = "open"
    CLOSE = "close"
    ISOLATE = "isolate"
    SETPOINT = "setpoint"


class Action(_Strict):
    do: ActionKind
    target: Id  # asset acted upon
    value: float | None = None  # for setpoint

    @model_validator(mode="after")
    def _value_for_setpoint(self) -> Action:
        if (self.do is ActionKind.SETPOINT) != (self.value is not None):
            raise ValueError("'value' is required for a setpoint action and only for it")
        return self


class Failsafe(_Strict):
    id: Id
    when: Condition
    action: Action
    authority: Authority = Authority.CONFIRM
    description: str = ""


class SourceAuth(_Strict):
    """How a source's batches are signed (see `ingest.auth`): exactly one key, and whether
    unsigned batches are refused. Secrets never sit in the site file: an HMAC key is named by
    an environment variable or a key file (relative to the site file); an Ed25519 public key
    may be written inline. `repr` hides the public key (see `site.keys`)."""

    # A validation error must not quote what it was given: that may be a key.
    model_config = ConfigDict(
        extra="forbid", frozen=True, str_strip_whitespace=True, hide_input_in_errors=True
    )

    hmac_key_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    hmac_key_file: Path | None = None
    ed25519_public_key: SecretStr | None = None
    required: bool = True  # refuse unsigned batches from this source
    max_age: Duration = Field(default=30.0, gt=0)  # a signed batch older than this is refused
    max_skew: Duration = 5.0  # how far ahead of our clock a sender's timestamp may be

    @field_validator("hmac_key_file", mode="after")
    @classmethod
    def _key_file_exists(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None:
            return None
        base = info.context.get("base_dir") if isinstance(info.context, dict) else None
        path = value if value.is_absolute() else Path(base or ".") / value
        if not path.is_file():
            raise ValueError(f"key file '{value}' does not exist")
        return path.resolve()

    @field_validator("ed25519_public_key", mode="after")
    @classmethod
    def _public_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            ed25519_public_key(value.get_secret_value())
        return value

    @model_validator(mode="after")
    def _one_key(self) -> SourceAuth:
        given = [self.hmac_key_env, self.hmac_key_file, self.ed25519_public_key]
        if sum(key is not None for key in given) != 1:
            raise ValueError(
                "auth needs exactly one of 'hmac_key_env', 'hmac_key_file' or 'ed25519_public_key'"
            )
        return self


class Source(_Strict):
    model_config = ConfigDict(
        extra="forbid", frozen=True, str_strip_whitespace=True, hide_input_in_errors=True
    )  # its `auth` may hold a key: see SourceAuth

    id: Id
    kind: SourceKind
    signals: list[str] = Field(default_factory=lambda: ["*"])  # glob patterns of signal ids
    description: str = ""
    auth: SourceAuth | None = None  # signed batches (http sources only)
    # Where a pulling or subscribing source connects: "mqtt://127.0.0.1:1883" (mqtt),
    # "opc.tcp://127.0.0.1:4840/nexus" (opcua). Not used by http, prometheus or replay.
    url: str | None = None
    topics: list[str] = Field(default_factory=list)  # mqtt: topic filters to subscribe to
    payload: PayloadFormat = "json"  # mqtt: how messages are encoded
    qos: int = Field(default=1, ge=0, le=2)  # mqtt: subscription quality of service
    interval: Duration = Field(default=1.0, gt=0)  # opcua: subscription publishing interval
    # External names -> signal ids; the targets are checked in `Site`. What a name is depends
    # on the kind: http (line protocol) "<measurement>[,<tag>=<v>...] <field>", ahead of the
    # "<measurement>.<field>" default, tags stored sorted as the parser builds the name (see
    # `ingest.lineprotocol`); mqtt a topic, or "<group>/<node>[/<device>]:<metric>" for
    # Sparkplug B; opcua a node id ("ns=2;s=Pump1.Pressure"); prometheus a series
    # 'name{label="v",...}', every label, in any order (see `ingest.remote_write`).
    map: dict[str, str] = Field(default_factory=dict)

    @field_validator("map")
    @classmethod
    def _external_names(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        if info.data.get("kind") != SourceKind.HTTP:
            return value  # each kind's own module reads (and checks) its names
        out: dict[str, str] = {}
        for key, target in value.items():
            m = _EXTERNAL.match(key)
            if not m:
                raise ValueError(
                    f"'{key}' is not '<measurement>[,<tag>=<value>...] <field>'"
                    " (no spaces, commas or '=' inside names)"
                )
            tags = sorted(m.group(2)[1:].split(",")) if m.group(2) else []
            name = ",".join([m.group(1), *tags]) + " " + m.group(3)
            if name in out:
                raise ValueError(f"'{key}' is mapped twice (tags are compared sorted)")
            out[name] = target
        return out


# A setpoint's default tolerance: this fraction of its range's width, or of |value| (at least
# 1) without a range. Small enough to catch a deliberate nudge, large enough for a controller
# that reports in float32 or rounds to its display resolution.
SETPOINT_TOLERANCE = 0.001


class Setpoint(_Strict):
    """A value operators set and a controller holds. `value` is the authorised value at start;
    changes go through the API (within `range`, when one is given). With `signal`, the value the
    controller reports as in effect is compared with the authorised one: a difference of more
    than `tolerance` (absolute) is an unauthorised change."""

    id: Id
    asset: Id
    value: float = Field(allow_inf_nan=False)
    unit: str = ""
    signal: str | None = None  # "<asset>.<name>": the controller's readback of the value in effect
    tolerance: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    range: Range | None = None  # the values an API change may set
    description: str = ""

    @property
    def allowed_deviation(self) -> float:
        """The tolerance, or the default (see `SETPOINT_TOLERANCE`) when none is declared."""
        if self.tolerance is not None:
            return self.tolerance
        scale = self.range.high - self.range.low if self.range else max(abs(self.value), 1.0)
        return SETPOINT_TOLERANCE * scale


class Directive(_Strict):
    """A mode a controller is told to run in. `value` is the authorised state at start, one of
    `states`; with `signal`, the controller reports the state in effect as its index into
    `states` (0 for the first), and any other index is an unauthorised change."""

    id: Id
    asset: Id
    states: list[Id] = Field(min_length=2)
    value: Id
    signal: str | None = None  # "<asset>.<name>": reports the index of the state in effect
    description: str = ""

    @field_validator("states", "value", mode="before")
    @classmethod
    def _yaml_booleans(cls, value: Any) -> Any:
        # YAML 1.1 reads an unquoted on/off/yes/no as a boolean, and "off" is a natural state.
        items = value if isinstance(value, list) else [value]
        if any(isinstance(item, bool) for item in items):
            raise ValueError(
                "a state must be a name: YAML reads unquoted on, off, yes and no as true or"
                ' false, so quote it ("off")'
            )
        return value


class SiteInfo(_Strict):
    name: str
    timezone: str = "UTC"
    description: str = ""


class Site(_Strict):
    """A whole site file. Cross-references are checked here (see `validate.cross_check`), so a
    `Site` object never holds a dangling reference; the issues travel inside the validation
    error and `load` gives each its own path and line."""

    version: Literal[1] = 1
    site: SiteInfo
    subsystems: list[Subsystem] = Field(min_length=1)
    assets: list[Asset] = Field(min_length=1)
    dependencies: list[Dependency] = Field(default_factory=list)
    redundancy_groups: list[RedundancyGroup] = Field(default_factory=list)
    failsafes: list[Failsafe] = Field(default_factory=list)
    sources: list[Source] = Field(default_factory=list)
    setpoints: list[Setpoint] = Field(default_factory=list)
    directives: list[Directive] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references(self) -> Site:
        issues = cross_check(self)
        if issues:
            raise CrossReferenceError(issues)
        return self
