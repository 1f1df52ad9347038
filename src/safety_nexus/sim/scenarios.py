"""The acceptance scenarios of the SPEC as named, parameterised fault schedules.

A scenario's builder turns parameters into a `Plan`: faults with their ticks and the asset the
labels blame. `Simulator.inject` adds the faults to the twin and works out the labels (see
`truth.py`). Targets default to the demo city's ids (docs/demo-city.md) and are parameters, so
the same scenarios run on any site with the asset types they need.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from safety_nexus.core.errors import SimError
from safety_nexus.core.types import SignalTable
from safety_nexus.sim.faults import (
    AssetTrip,
    ClockDrift,
    ControlChange,
    CoolingLoss,
    Effect,
    Fault,
    ForecastDisagreement,
    LevelStep,
    LoopOscillation,
    OffHours,
    RedundantSensorFault,
    SensorCoarse,
    SensorFlatline,
    SensorSpikes,
    SensorStale,
    SlowDrift,
    UnknownDevice,
    VarianceIncrease,
)
from safety_nexus.sim.truth import Kind, Label
from safety_nexus.site.graph import DependencyGraph
from safety_nexus.site.schema import DependencyKind, Directive, Setpoint, Site

ParamValue = float | str


@dataclass(frozen=True, slots=True)
class Plan:
    faults: list[Fault]
    root_cause: str
    effects: dict[str, Effect] = field(default_factory=dict)  # for measured labels, by signal


class Context:
    """What a builder may ask about the site and the simulator's clock."""

    def __init__(
        self,
        *,
        site: Site,
        graph: DependencyGraph,
        table: SignalTable,
        start: float,
        tick: float,
        next_k: int,
        at: float,
        rng: np.random.Generator,
        sample_every: np.ndarray,
        noise_sd: np.ndarray,
    ) -> None:
        self.site = site
        self.graph = graph
        self.table = table
        self.start = start
        self.tick = tick
        self.next_k = next_k
        self.at = at
        self.rng = rng
        self.sample_every = sample_every
        self.noise_sd = noise_sd
        self.asset_index = {a.id: i for i, a in enumerate(site.assets)}
        self.type_of = {a.id: a.type for a in site.assets}

    def col(self, signal: str) -> int:
        try:
            return self.table.index[signal]
        except KeyError:
            raise SimError(f"unknown signal '{signal}'") from None

    def asset(self, asset: str, types: tuple[str, ...] | None = None) -> int:
        if asset not in self.asset_index:
            raise SimError(f"unknown asset '{asset}'")
        if types is not None and self.type_of[asset] not in types:
            raise SimError(
                f"asset '{asset}' is a {self.type_of[asset]}, expected {' or '.join(types)}"
            )
        return self.asset_index[asset]

    def signals_of(self, asset: str) -> list[str]:
        return [s for s, a in zip(self.table.ids, self.table.assets, strict=True) if a == asset]

    def k(self, offset: float) -> int:
        """The first tick at or after `at + offset` (never one already reported)."""
        k = math.ceil((self.at + offset - self.start) / self.tick - 1e-9)
        return max(k, self.next_k)

    def ticks(self, seconds: float) -> int:
        return max(0, math.ceil(seconds / self.tick - 1e-9))

    def end(self, k0: int, duration: float) -> int | None:
        """The tick a fault starting at `k0` stops; `duration` 0 or infinite: never."""
        if duration <= 0 or math.isinf(duration):
            return None
        return k0 + max(1, self.ticks(duration))

    def downstream(self, asset: str, asset_type: str) -> list[str]:
        """Assets of `asset_type` that depend on `asset`, nearest (shortest lag) first."""
        return [a for a in self.graph.downstream(asset) if self.type_of[a] == asset_type]

    def providers(self, asset: str, asset_type: str, kind: DependencyKind) -> list[str]:
        return [
            d.provider
            for d in self.site.dependencies
            if d.dependant == asset and d.kind is kind and self.type_of[d.provider] == asset_type
        ]

    def centre(self, col: int) -> float:
        return 0.5 * float(self.table.normal_lo[col] + self.table.normal_hi[col])

    def width(self, col: int) -> float:
        return float(self.table.normal_hi[col] - self.table.normal_lo[col])


Builder = Callable[[Context, dict[str, ParamValue]], Plan]


@dataclass(frozen=True, slots=True)
class ScenarioDef:
    id: str
    name: str
    kind: Kind
    description: str
    params: Mapping[str, ParamValue]  # defaults; their types are the parameters' types
    build: Builder = field(repr=False)
    help: Mapping[str, str] = field(default_factory=dict)

    def resolve(self, given: Mapping[str, object]) -> dict[str, ParamValue]:
        """The defaults overridden by `given`, converted to the defaults' types."""
        out = dict(self.params)
        for key, value in given.items():
            if key not in self.params:
                known = ", ".join(self.params) or "none"
                raise SimError(f"scenario {self.id} has no parameter '{key}' (known: {known})")
            if isinstance(self.params[key], str):
                out[key] = str(value)
                continue
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise SimError(f"parameter '{key}' of {self.id} must be a number, not {value!r}")
            try:
                number = float(value)
            except ValueError:
                raise SimError(
                    f"parameter '{key}' of {self.id} must be a number, not {value!r}"
                ) from None
            if math.isnan(number):
                raise SimError(f"parameter '{key}' of {self.id} must be a number, not nan")
            out[key] = number
        return out


@dataclass(slots=True)
class ScenarioRun:
    """One injection of a scenario: its parameters, timing and ground truth."""

    run: int
    id: str
    name: str
    kind: Kind
    at: float  # time of the first tick any of its faults acts on
    end: float | None  # time its last fault stops acting; None: open-ended
    seed: int
    params: dict[str, ParamValue]
    root_cause: str
    labels: list[Label] = field(default_factory=list)


# -- builders ----------------------------------------------------------------------------------


def _num(p: dict[str, ParamValue], key: str) -> float:
    value = p[key]
    assert isinstance(value, float)
    return value


def _positive(p: dict[str, ParamValue], *keys: str) -> None:
    for key in keys:
        if _num(p, key) < 0:
            raise SimError(f"parameter '{key}' must not be negative")


def _creeping_latency(ctx: Context, p: dict[str, ParamValue]) -> Plan:
    _positive(p, "onset", "duration", "ramp")
    asset = str(p["asset"])
    ctx.asset(asset)
    signal = f"{asset}.job_latency"
    k0 = ctx.k(_num(p, "onset"))
    step = LevelStep(
        k0,
        ctx.end(k0, _num(p, "duration")),
        asset,
        signal=signal,
        col=ctx.col(signal),
        amount=_num(p, "step_ms"),
        ramp=ctx.ticks(_num(p, "ramp")),
    )
    return Plan([step], asset)


def _ripple(ctx: Context, p: dict[str, ParamValue]) -> Plan:
    """The root is upstream of all three symptoms: a substation feeds, through its feeders, both
    the pumps of a sprinkler main and the fans of a tunnel; its own forecasts are the first to go.
    The symptoms appear in the order of the graph's lags, `stagger` apart."""
    _positive(p, "onset", "duration", "stagger", "forecast_error", "rt_ppm")
    root = str(p["asset"])
    ctx.asset(root)
    k0 = ctx.k(_num(p, "onset"))
    last = ctx.end(k0, _num(p, "duration"))
    stagger = ctx.ticks(_num(p, "stagger"))
    faults: list[Fault] = []

    forecasts = [s for s in ctx.signals_of(root) if "forecast" in s.split(".", 1)[1]]
    if not forecasts:
        raise SimError(f"asset '{root}' has no forecast signals for the ripple to disturb")
    error = _num(p, "forecast_error")
    cols = [ctx.col(s) for s in forecasts]
    # Opposite signs: the forecasts disagree with each other as well as with the load.
    signs = [1.0 if i % 2 == 0 else -0.7 for i in range(len(cols))]
    faults.append(
        ForecastDisagreement(
            k0,
            last,
            root,
            names=tuple(forecasts),
            cols=tuple(cols),
            offsets=tuple(s * error * ctx.centre(c) for s, c in zip(signs, cols, strict=True)),
            ramp=ctx.ticks(60.0),
        )
    )

    tunnel = str(p["tunnel"]) or next(iter(ctx.downstream(root, "tunnel-section")), "")
    if tunnel:
        ctx.asset(tunnel)
        sensors = [s for s in ctx.signals_of(tunnel) if s.split(".", 1)[1].startswith("pressure")]
        factor = _num(p, "variance_factor")
        if factor < 1:
            raise SimError("parameter 'variance_factor' must be at least 1")
        tcols = [ctx.col(s) for s in sensors]
        extra = tuple(float(ctx.noise_sd[c]) * math.sqrt(factor**2 - 1.0) for c in tcols)
        faults.append(
            VarianceIncrease(
                k0 + stagger, last, root, names=tuple(sensors), cols=tuple(tcols), extra_sd=extra
            )
        )

    zone = str(p["sprinkler"]) or next(iter(ctx.downstream(root, "sprinkler-zone")), "")
    if zone:
        signal = f"{zone}.response_time"
        col = ctx.col(signal)
        rate = _num(p, "rt_ppm") * 1e-6 * ctx.centre(col)
        faults.append(SlowDrift(k0 + 2 * stagger, last, root, signal=signal, col=col, rate=rate))
    return Plan(faults, root)


def _alarm_storm(ctx: Context, p: dict[str, ParamValue]) -> Plan:
    _positive(p, "onset", "duration")
    asset = str(p["asset"])
    index = ctx.asset(asset)
    k0 = ctx.k(_num(p, "onset"))
    return Plan([AssetTrip(k0, ctx.end(k0, _num(p, "duration")), asset, asset=index)], asset)


def _distorted_data(ctx: Context, p: dict[str, ParamValue]) -> Plan:
    _positive(p, "onset", "duration", "stagger", "spikes", "spike_size", "clock_rate")
    k0 = ctx.k(_num(p, "onset"))
    stagger = ctx.ticks(_num(p, "stagger"))
    duration = _num(p, "duration")
    last = ctx.end(k0, duration)
    faults: list[Fault] = []

    def owner(signal: str) -> str:
        return signal.split(".", 1)[0]

    if stale := str(p["stale"]):
        faults.append(SensorStale(k0, last, owner(stale), signal=stale, col=ctx.col(stale)))
    if flat := str(p["flatline"]):
        k = k0 + stagger
        faults.append(SensorFlatline(k, last, owner(flat), signal=flat, col=ctx.col(flat)))
    if spike := str(p["spike"]):
        col = ctx.col(spike)
        k = k0 + 2 * stagger
        span = (last if last is not None else k + ctx.ticks(300.0)) - k
        count = int(_num(p, "spikes"))
        width = int(ctx.sample_every[col])
        if span > width and count > 0:
            at = np.sort(ctx.rng.choice(span - width, size=min(count, span - width), replace=False))
            size = _num(p, "spike_size") * ctx.width(col)
            amounts = size * (0.75 + 0.25 * ctx.rng.random(at.size))
            amounts *= np.where(ctx.rng.random(at.size) < 0.5, -1.0, 1.0)
            faults.append(
                SensorSpikes(
                    k,
                    last,
                    owner(spike),
                    signal=spike,
                    col=col,
                    at=tuple(int(k + a) for a in at),
                    amounts=tuple(float(x) for x in amounts),
                    width=width,
                )
            )
    if clock := str(p["clock"]):
        k = k0 + 3 * stagger
        jitter = np.abs(ctx.rng.normal(0.0, _num(p, "clock_jitter"), size=600))
        faults.append(
            ClockDrift(
                k,
                last,
                owner(clock),
                signal=clock,
                col=ctx.col(clock),
                rate=_num(p, "clock_rate"),
                jitter=jitter,
            )
        )
    if device := str(p["device"]):
        signal = str(p["device_signal"])
        name = signal.split(".", 1)[-1]
        # It imitates a real signal of that name, so its values look plausible.
        like = [i for i, s in enumerate(ctx.table.ids) if s.split(".", 1)[1] == name]
        base = ctx.centre(like[0]) if like else 0.0
        sd = float(ctx.noise_sd[like[0]]) if like else 1.0
        faults.append(
            UnknownDevice(
                k0 + 4 * stagger,
                last,
                device,
                source=device,
                signal=signal,
                every=max(1, ctx.ticks(1.0)),
                base=base,
                sd=sd,
                seed=int(ctx.rng.integers(2**63)),
            )
        )
    if not faults:
        raise SimError("distorted-data needs at least one target")
    return Plan(faults, faults[0].root)


def _sensor_disagreement(ctx: Context, p: dict[str, ParamValue]) -> Plan:
    """One sensor of a quantity measured redundantly (`measures` in the site) goes wrong."""
    _positive(p, "onset", "duration")
    signal = str(p["signal"])
    col = ctx.col(signal)
    quantity = int(ctx.table.measures[col])
    if quantity < 0:
        raise SimError(f"signal '{signal}' is not a redundant sensor (it declares no 'measures')")
    mode = str(p["mode"])
    if mode not in ("drift", "bias", "stuck"):
        raise SimError(f"parameter 'mode' must be 'drift', 'bias' or 'stuck', not '{mode}'")
    k0 = ctx.k(_num(p, "onset"))
    # Sizes are in units of the sensor's noise (its standard deviation), so that the defaults
    # mean the same on any quantity.
    sd = float(ctx.noise_sd[col])
    fault = RedundantSensorFault(
        k0,
        ctx.end(k0, _num(p, "duration")),
        signal.split(".", 1)[0],
        signal=signal,
        col=col,
        mode=mode,  # type: ignore[arg-type]  # checked above
        rate=_num(p, "drift_sd_per_min") * sd / 60.0,
        amount=_num(p, "bias_sd") * sd,
    )
    return Plan([fault], fault.root)


def _loop_oscillation(ctx: Context, p: dict[str, ParamValue]) -> Plan:
    """A control loop starts to hunt: its measured variable swings around its setpoint."""
    _positive(p, "onset", "duration", "ramp", "amplitude_sd", "period")
    signal = str(p["signal"])
    col = ctx.col(signal)
    if _num(p, "period") <= 0:
        raise SimError("parameter 'period' must be positive")
    k0 = ctx.k(_num(p, "onset"))
    fault = LoopOscillation(
        k0,
        ctx.end(k0, _num(p, "duration")),
        signal.split(".", 1)[0],
        signal=signal,
        col=col,
        amplitude=_num(p, "amplitude_sd") * float(ctx.noise_sd[col]),
        period=_num(p, "period"),
        ramp=ctx.ticks(_num(p, "ramp")),
    )
    return Plan([fault], fault.root)


def _coarse_sensor(ctx: Context, p: dict[str, ParamValue]) -> Plan:
    """A sensor starts reporting in coarse steps (or, with a step well above its noise, toggles
    between two values)."""
    _positive(p, "onset", "duration", "resolution_sd")
    signal = str(p["signal"])
    col = ctx.col(signal)
    resolution = _num(p, "resolution_sd") * float(ctx.noise_sd[col])
    if resolution <= 0:
        raise SimError("parameter 'resolution_sd' must be positive")
    k0 = ctx.k(_num(p, "onset"))
    fault = SensorCoarse(
        k0,
        ctx.end(k0, _num(p, "duration")),
        signal.split(".", 1)[0],
        signal=signal,
        col=col,
        resolution=resolution,
    )
    return Plan([fault], fault.root)


def _control_target(ctx: Context, signal: str) -> tuple[int, Setpoint | Directive]:
    """The column of a readback signal and the setpoint or directive it reports."""
    col = ctx.col(signal)
    specs: list[Setpoint | Directive] = [*ctx.site.setpoints, *ctx.site.directives]
    for spec in specs:
        if spec.signal == signal:
            return col, spec
    raise SimError(f"signal '{signal}' reports no setpoint or directive of the site")


def _setpoint_nudge(ctx: Context, p: dict[str, ParamValue]) -> Plan:
    """Small changes made at the controllers, one subsystem after another, `stagger` apart:
    setpoints nudged, then a directive altered. Each blames the asset its setpoint or directive
    belongs to; what the plant then does is measured (see `truth.py`)."""
    _positive(p, "onset", "duration", "stagger")
    k = ctx.k(_num(p, "onset"))
    last = ctx.end(k, _num(p, "duration"))
    stagger = ctx.ticks(_num(p, "stagger"))
    faults: list[Fault] = []
    for key, size in (("setpoint", "nudge"), ("setpoint_2", "nudge_2")):
        if signal := str(p[key]):
            col, spec = _control_target(ctx, signal)
            if not isinstance(spec, Setpoint):
                raise SimError(f"parameter '{key}': '{signal}' reports a directive, not a setpoint")
            if _num(p, size) == 0:
                raise SimError(f"parameter '{size}' must not be 0")
            faults.append(
                ControlChange(k, last, spec.asset, signal=signal, col=col, amount=_num(p, size))
            )
            k += stagger
    if signal := str(p["directive"]):
        col, spec = _control_target(ctx, signal)
        if not isinstance(spec, Directive):
            raise SimError(f"parameter 'directive': '{signal}' reports a setpoint, not a directive")
        state, now = _num(p, "state"), spec.states.index(spec.value)
        if state != int(state) or not 0 <= state < len(spec.states) or state == now:
            raise SimError(
                f"parameter 'state' must be the index of another state of '{spec.id}'"
                f" (0 to {len(spec.states) - 1}, not {now})"
            )
        faults.append(
            ControlChange(k, last, spec.asset, signal=signal, col=col, amount=state - now)
        )
    if not faults:
        raise SimError("setpoint-nudge needs at least one target")
    return Plan(faults, faults[0].root)


def _odd_night(ctx: Context, p: dict[str, ParamValue]) -> Plan:
    """A signal with a daily cycle behaves as if it were another time of day: by default a
    substation's night load rises to a daytime level (within its normal band)."""
    _positive(p, "onset", "duration", "ramp")
    signal = str(p["signal"])
    col = ctx.col(signal)
    k0 = ctx.k(_num(p, "onset"))
    fault = OffHours(
        k0,
        ctx.end(k0, _num(p, "duration")),
        signal.split(".", 1)[0],
        signal=signal,
        col=col,
        amount=_num(p, "shift") * ctx.width(col),
        ramp=ctx.ticks(_num(p, "ramp")),
    )
    return Plan([fault], fault.root)


def _core_breach(ctx: Context, p: dict[str, ParamValue]) -> Plan:
    _positive(p, "onset", "duration", "ramp")
    asset = str(p["asset"])
    index = ctx.asset(asset, ("compute-node",))
    k0 = ctx.k(_num(p, "onset"))
    last = ctx.end(k0, _num(p, "duration"))
    # The temperature climbs toward its hard limit: what the bank should say is when it will
    # cross it (its rate-of-change detector sees the climb too).
    effects: dict[str, Effect] = {f"{asset}.cpu_temp": "time_to_threshold"}
    cause = str(p["cause"])
    if cause == "node":
        severity = _num(p, "severity")
        if not 0 < severity < 1:
            raise SimError("parameter 'severity' must be between 0 and 1")
        loss = CoolingLoss(
            k0, last, asset, asset=index, severity=severity, ramp=ctx.ticks(_num(p, "ramp"))
        )
        return Plan([loss], asset, effects)
    if cause == "chiller":
        # Common mode: every chiller that cools the node stops (they share a PDU in the demo).
        chillers = ctx.providers(asset, "chiller", DependencyKind.WATER)
        if not chillers:
            raise SimError(f"no chiller cools '{asset}'")
        trips: list[Fault] = [
            AssetTrip(k0, last, chillers[0], asset=ctx.asset(c)) for c in chillers
        ]
        return Plan(trips, chillers[0], effects)
    raise SimError(f"parameter 'cause' must be 'node' or 'chiller', not '{cause}'")


# -- the catalogue ------------------------------------------------------------------------------

_TIMING = {
    "onset": "seconds after the injection time until the first fault",
    "duration": "seconds the faults last (0 or inf: until the run ends)",
}

_DEFS = [
    ScenarioDef(
        id="S1",
        name="creeping-latency",
        kind="cascade",
        description="the compute core's job latency steps up by a fraction of a second",
        params={"asset": "core-a1", "step_ms": 150.0, "ramp": 0.0, "onset": 0.0, "duration": 600.0},
        build=_creeping_latency,
        help={
            "asset": "compute node whose job latency steps up",
            "step_ms": "size of the step, ms",
            "ramp": "seconds over which the step builds up (0: at once)",
            **_TIMING,
        },
    ),
    ScenarioDef(
        id="S2",
        name="ripple",
        kind="cascade",
        description=(
            "tiny degradations one after another along the graph from one substation: its load "
            "forecasts stop agreeing with the load, a tunnel's pressure sensors get noisier, a "
            "sprinkler zone's response time creeps up by parts per million per second"
        ),
        params={
            "asset": "sub-1",
            "forecast_error": 0.1,
            "variance_factor": 1.5,
            "rt_ppm": 10.0,
            "tunnel": "",
            "sprinkler": "",
            "stagger": 120.0,
            "onset": 0.0,
            "duration": 1200.0,
        },
        build=_ripple,
        help={
            "asset": "the root cause, upstream of a tunnel and a sprinkler zone",
            "forecast_error": "how far the forecasts move off, as a fraction of the load",
            "variance_factor": "noise standard deviation of the tunnel's pressure, × normal",
            "rt_ppm": "response-time drift, parts per million of it per second",
            "tunnel": "tunnel section (default: the nearest downstream of the root)",
            "sprinkler": "sprinkler zone (default: the nearest downstream of the root)",
            "stagger": "seconds between one symptom and the next",
            **_TIMING,
        },
    ),
    ScenarioDef(
        id="S4",
        name="alarm-storm",
        kind="cascade",
        description="one substation or feeder trips and takes everything downstream with it",
        params={"asset": "sub-1", "onset": 0.0, "duration": 600.0},
        build=_alarm_storm,
        help={"asset": "the asset that trips", **_TIMING},
    ),
    ScenarioDef(
        id="S5",
        name="distorted-data",
        kind="sensor-fault",
        description=(
            "a sensor goes stale, one flatlines, one spikes, one's clock drifts, and an unknown "
            "device starts publishing"
        ),
        params={
            "stale": "pump-7.pressure",
            "flatline": "tunnel-6.co",
            "spike": "feeder-3.current",
            "clock": "tunnel-3.pressure_a",
            "device": "rogue-gw-7",
            "device_signal": "pump-11.pressure",
            "spikes": 5.0,
            "spike_size": 0.8,
            "clock_rate": 0.2,
            "clock_jitter": 1.0,
            "stagger": 30.0,
            "onset": 0.0,
            "duration": 600.0,
        },
        build=_distorted_data,
        help={
            "stale": "signal whose sensor stops reporting ('' to skip)",
            "flatline": "signal whose sensor repeats its last value ('' to skip)",
            "spike": "signal that shows single wild samples ('' to skip)",
            "clock": "signal whose sensor clock falls behind ('' to skip)",
            "device": "id of the unregistered source ('' to skip)",
            "device_signal": "signal id the unknown device publishes",
            "spikes": "number of spikes",
            "spike_size": "spike height in normal-band widths",
            "clock_rate": "seconds the clock loses per second",
            "clock_jitter": "standard deviation of the clock's jitter, s",
            "stagger": "seconds between one fault and the next",
            **_TIMING,
        },
    ),
    ScenarioDef(
        id="S7",
        name="core-breach",
        kind="cascade",
        description=(
            "a compute node's CPU temperature climbs fast toward its limit; it throttles, so its "
            "job latency and utilisation fail next"
        ),
        params={
            "asset": "core-a1",
            "cause": "node",
            "severity": 0.55,
            "ramp": 300.0,
            "onset": 0.0,
            "duration": 900.0,
        },
        build=_core_breach,
        help={
            "asset": "the compute node",
            "cause": "'node': its own cooling fails; 'chiller': every chiller cooling it stops",
            "severity": "fraction of the node's heat shedding lost (cause=node)",
            "ramp": "seconds over which the node's cooling fails (cause=node)",
            **_TIMING,
        },
    ),
]

# Beyond the SPEC's acceptance scenarios: the library's own, each exercising a detector family.
_DEFS.append(
    ScenarioDef(
        id="R1",
        name="sensor-disagreement",
        kind="sensor-fault",
        description=(
            "one of a tunnel section's two pressure transmitters drifts away from the other "
            "(or jumps, or sticks) while the pressure itself is fine"
        ),
        params={
            "signal": "tunnel-2.pressure_b",
            "mode": "drift",
            "drift_sd_per_min": 1.0,
            "bias_sd": 4.0,
            "onset": 0.0,
            "duration": 900.0,
        },
        build=_sensor_disagreement,
        help={
            "signal": "the faulty sensor (a signal that declares 'measures')",
            "mode": "'drift', 'bias' (a jump) or 'stuck' (keeps its last value)",
            "drift_sd_per_min": "drift per minute, in standard deviations of the sensor's noise",
            "bias_sd": "size of the jump, in standard deviations of the sensor's noise",
            **_TIMING,
        },
    )
)

# Single-signal detector families (seasonal, quantisation, oscillation), one scenario each; the
# time-to-threshold forecast is S7's.
_DEFS.append(
    ScenarioDef(
        id="O1",
        name="loop-oscillation",
        kind="cascade",
        description=(
            "a control loop starts to hunt (S6's oscillation): a pump's discharge pressure swings "
            "around its setpoint with a steady period"
        ),
        params={
            "signal": "pump-3.pressure",
            "amplitude_sd": 6.0,
            "period": 20.0,
            "ramp": 0.0,
            "onset": 0.0,
            "duration": 600.0,
        },
        build=_loop_oscillation,
        help={
            "signal": "the loop's measured variable",
            "amplitude_sd": "amplitude of the swing, in standard deviations of the sensor's noise",
            "period": "period of the swing, seconds",
            "ramp": "seconds over which the swing grows to its amplitude",
            **_TIMING,
        },
    )
)
_DEFS.append(
    ScenarioDef(
        id="Q1",
        name="coarse-sensor",
        kind="sensor-fault",
        description=(
            "a sensor loses resolution (an ADC drops bits): it reports in steps as large as its "
            "noise, so it keeps moving but keeps stepping back to the value it just left"
        ),
        params={
            "signal": "feeder-2.current",
            "resolution_sd": 1.0,
            "onset": 0.0,
            "duration": 900.0,
        },
        build=_coarse_sensor,
        help={
            "signal": "the sensor that coarsens",
            "resolution_sd": "its new resolution, in standard deviations of its noise",
            **_TIMING,
        },
    )
)
_DEFS.append(
    ScenarioDef(
        id="N1",
        name="odd-night",
        kind="benign",
        description=(
            "a night that behaves like a day: a substation's load rises to a daytime level in "
            "the small hours (an unscheduled shift), normal in value, abnormal for the hour"
        ),
        params={
            "signal": "sub-1.load",
            "shift": 0.25,
            "ramp": 1800.0,
            "onset": 0.0,
            "duration": 14400.0,
        },
        build=_odd_night,
        help={
            "signal": "a signal with a daily cycle",
            "shift": "how far it moves, as a fraction of its normal band's width",
            "ramp": "seconds over which it gets there",
            **_TIMING,
        },
    )
)

# Configuration integrity: changes made at the controllers rather than through the API.
_DEFS.append(
    ScenarioDef(
        id="C1",
        name="setpoint-nudge",
        kind="deliberate",
        description=(
            "the configuration part of S3's probe: someone at the controllers nudges a pump's "
            "pressure setpoint, then a chiller's supply temperature, then switches a standby "
            "generator out of auto, a couple of minutes apart, none of it through the API"
        ),
        params={
            "setpoint": "pump-2.pressure_setpoint",
            "nudge": 0.3,
            "setpoint_2": "chiller-1.supply_setpoint",
            "nudge_2": 1.0,
            "directive": "gen-2.mode",
            "state": 2.0,
            "stagger": 120.0,
            "onset": 0.0,
            "duration": 900.0,
        },
        build=_setpoint_nudge,
        help={
            "setpoint": "readback signal of the first setpoint changed ('' to skip)",
            "nudge": "how far it moves, in its unit",
            "setpoint_2": "readback signal of the second setpoint changed ('' to skip)",
            "nudge_2": "how far that one moves, in its unit",
            "directive": "readback signal of the directive changed ('' to skip)",
            "state": "index of the state it is switched to",
            "stagger": "seconds between one change and the next",
            **_TIMING,
        },
    )
)

SCENARIOS: dict[str, ScenarioDef] = {}
for _d in _DEFS:
    SCENARIOS[_d.id] = _d
    SCENARIOS[_d.name] = _d


def lookup(name: str) -> ScenarioDef:
    """The scenario called `name` (id or name, any case)."""
    d = SCENARIOS.get(name) or SCENARIOS.get(name.upper()) or SCENARIOS.get(name.lower())
    if d is None:
        known = ", ".join(f"{x.id} {x.name}" for x in _DEFS)
        raise SimError(f"unknown scenario '{name}' (known: {known})")
    return d
