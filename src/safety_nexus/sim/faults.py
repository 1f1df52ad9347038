"""The fault library: what can go wrong, as small objects that bend one tick of the simulation.

A fault is active on ticks `start <= k < end` (`end` None: until the run ends) and, while
active, writes into the tick's `Modifiers`. Two families:

* physical faults (`PHYSICAL = True`) change the plant — a breaker opens, a pump wears, a
  node's heatsink fails — and the physics carries the consequences along the dependencies.
  Which signals they end up moving, and from when, is measured by `truth.py`.
* signal faults change what one signal is (a latency step, a forecast that stops agreeing, a
  drifting response time, extra turbulence) or what its sensor reports (stale, flatline, spike,
  clock drift). They label exactly the signals they touch, from their onset (`EFFECT`).

`apply` must be a pure function of the tick: the labeller replays faults on copies of the plant.
Anything random (spike times, clock jitter) is drawn when the fault is built.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

import numpy as np

from safety_nexus.sim.model.base import F64, Modifiers

Effect = Literal[
    "level_shift",
    "variance",
    "spike",
    "stale",
    "flatline",
    "rate",
    "limit",
    "drift",
    "forecast",
    "disagreement",  # one of a set of redundant sensors no longer agrees with the others
    "clock",
    "foreign",  # an unregistered source publishing (the label's signal is the one it claims)
    "seasonal",  # normal in value, not for the time of day
    "quantisation",  # a sensor that reports in coarser steps (or toggles between two values)
    "time_to_threshold",  # climbing toward a hard limit: the crossing can be forecast
    "oscillation",  # a control loop that starts to hunt
    "config",  # a setpoint or directive in effect changed without going through the operators
]


@dataclass(frozen=True, slots=True)
class ForeignMessage:
    """A sample from a source the site does not know (S5: an unknown device starts publishing)."""

    source: str
    signal: str
    time: float
    value: float


@dataclass(eq=False)
class Fault:
    start: int  # first tick it acts on
    end: int | None  # first tick it no longer acts on; None: open-ended
    root: str  # asset id a label blames for what this fault causes

    PHYSICAL: ClassVar[bool] = False
    EFFECT: ClassVar[Effect | None] = None

    def apply(self, m: Modifiers, k: int, tick: float) -> None:
        raise NotImplementedError

    def signals(self) -> tuple[str, ...]:
        """Signal ids this fault acts on directly (labelled from `start` with `EFFECT`)."""
        return ()

    def foreign(self, k: int, time: float) -> list[ForeignMessage]:
        return []

    def ramp_fraction(self, k: int, ramp: int) -> float:
        """How far a fault that builds up over `ramp` ticks has got by tick `k`."""
        return 1.0 if ramp <= 0 else min(1.0, (k - self.start + 1) / ramp)


# -- physical ----------------------------------------------------------------------------------


@dataclass(eq=False)
class AssetTrip(Fault):
    """An asset drops out: a feeder or substation breaker opens, a fan or chiller stops."""

    asset: int = 0
    PHYSICAL: ClassVar[bool] = True

    def apply(self, m: Modifiers, k: int, tick: float) -> None:
        m.trip[self.asset] = True


@dataclass(eq=False)
class Degradation(Fault):
    """Wear (a pump's impeller, a fan's bearing): health falls by `severity` over `ramp` ticks;
    head and airflow fall with it and vibration rises."""

    asset: int = 0
    severity: float = 0.1
    ramp: int = 0
    PHYSICAL: ClassVar[bool] = True

    def apply(self, m: Modifiers, k: int, tick: float) -> None:
        level = 1.0 - self.severity * self.ramp_fraction(k, self.ramp)
        m.health[self.asset] = min(m.health[self.asset], level)


@dataclass(eq=False)
class CoolingLoss(Fault):
    """A compute node sheds heat worse (failed heatsink fan, blocked airflow): its CPU settles at
    a temperature above its inlet divided by (1 - severity)."""

    asset: int = 0
    severity: float = 0.5
    ramp: int = 0
    PHYSICAL: ClassVar[bool] = True

    def apply(self, m: Modifiers, k: int, tick: float) -> None:
        level = 1.0 - self.severity * self.ramp_fraction(k, self.ramp)
        m.cooling[self.asset] = min(m.cooling[self.asset], level)


@dataclass(eq=False)
class ControlChange(Fault):
    """A setpoint or directive changed at the controller, behind the operators' backs: what is
    in effect moves by `amount` (a directive: by state indices). The plant runs on the changed
    value (`Modifiers.control`) and the controller reports it on its readback `signal`, which
    is what the label names; what the physics does with it is measured like any physical
    fault's consequences."""

    signal: str = ""
    col: int = 0
    amount: float = 0.0
    PHYSICAL: ClassVar[bool] = True
    EFFECT: ClassVar[Effect | None] = "config"

    def apply(self, m: Modifiers, k: int, tick: float) -> None:
        m.control[self.col] += self.amount

    def signals(self) -> tuple[str, ...]:
        return (self.signal,)


# -- what a signal is --------------------------------------------------------------------------


@dataclass(eq=False)
class LevelStep(Fault):
    """The signal's value moves by `amount` (over `ramp` ticks): a job latency step."""

    signal: str = ""
    col: int = 0
    amount: float = 0.0
    ramp: int = 0
    EFFECT: ClassVar[Effect | None] = "level_shift"

    def apply(self, m: Modifiers, k: int, tick: float) -> None:
        m.truth_add[self.col] += self.amount * self.ramp_fraction(k, self.ramp)

    def signals(self) -> tuple[str, ...]:
        return (self.signal,)


@dataclass(eq=False)
class SlowDrift(Fault):
    """The signal creeps by `rate` units per second from its onset. With `sensor`, the sensor's
    calibration drifts rather than the quantity itself."""

    signal: str = ""
    col: int = 0
    rate: float = 0.0
    sensor: bool = False
    EFFECT: ClassVar[Effect | None] = "drift"

    def apply(self, m: Modifiers, k: int, tick: float) -> None:
        amount = self.rate * (k - self.start + 1) * tick
        if self.sensor:
            m.sensor_add[self.col] += amount
        else:
            m.truth_add[self.col] += amount

    def signals(self) -> tuple[str, ...]:
        return (self.signal,)


@dataclass(eq=False)
class VarianceIncrease(Fault):
    """More process noise (`extra_sd`, in each signal's unit) on the signals, shared by signals of
    the same asset: two redundant pressure sensors both see the turbulence."""

    names: tuple[str, ...] = ()
    cols: tuple[int, ...] = ()
    extra_sd: tuple[float, ...] = ()
    EFFECT: ClassVar[Effect | None] = "variance"

    def apply(self, m: Modifiers, k: int, tick: float) -> None:
        m.truth_sd[list(self.cols)] += np.asarray(self.extra_sd)

    def signals(self) -> tuple[str, ...]:
        return self.names


@dataclass(eq=False)
class ForecastDisagreement(Fault):
    """Forecasts stop agreeing with reality (and with each other): each is off by its own
    `offsets`, reached over `ramp` ticks."""

    names: tuple[str, ...] = ()
    cols: tuple[int, ...] = ()
    offsets: tuple[float, ...] = ()
    ramp: int = 0
    EFFECT: ClassVar[Effect | None] = "forecast"

    def apply(self, m: Modifiers, k: int, tick: float) -> None:
        f = self.ramp_fraction(k, self.ramp)
        m.truth_add[list(self.cols)] += f * np.asarray(self.offsets)

    def signals(self) -> tuple[str, ...]:
        return self.names


@dataclass(eq=False)
class LoopOscillation(Fault):
    """A control loop starts to hunt: the signal swings by `amplitude` (its unit) with a period
    of `period` seconds around where it would be, reaching full amplitude over `ramp` ticks."""

    signal: str = ""
    col: int = 0
    amplitude: float = 0.0
    period: float = 60.0
    ramp: int = 0
    EFFECT: ClassVar[Effect | None] = "oscillation"

    def apply(self, m: Modifiers, k: int, tick: float) -> None:
        phase = 2.0 * np.pi * (k - self.start) * tick / self.period
        amount = self.amplitude * self.ramp_fraction(k, self.ramp) * float(np.sin(phase))
        m.truth_add[self.col] += amount

    def signals(self) -> tuple[str, ...]:
        return (self.signal,)


@dataclass(eq=False)
class OffHours(Fault):
    """The signal behaves at the wrong time of day (a night that looks like a day): it moves by
    `amount` (its unit, e.g. the day's level minus the night's) over `ramp` ticks and stays
    there; its values are ones it has at other hours."""

    signal: str = ""
    col: int = 0
    amount: float = 0.0
    ramp: int = 0
    EFFECT: ClassVar[Effect | None] = "seasonal"

    def apply(self, m: Modifiers, k: int, tick: float) -> None:
        m.truth_add[self.col] += self.amount * self.ramp_fraction(k, self.ramp)

    def signals(self) -> tuple[str, ...]:
        return (self.signal,)


# -- what a sensor reports ---------------------------------------------------------------------


@dataclass(eq=False)
class SensorCoarse(Fault):
    """The sensor loses resolution (an ADC drops bits, a gateway starts rounding): it reports
    multiples of `resolution` (its unit)."""

    signal: str = ""
    col: int = 0
    resolution: float = 1.0
    EFFECT: ClassVar[Effect | None] = "quantisation"

    def apply(self, m: Modifiers, k: int, tick: float) -> None:
        m.coarse[self.col] = self.resolution

    def signals(self) -> tuple[str, ...]:
        return (self.signal,)


@dataclass(eq=False)
class RedundantSensorFault(Fault):
    """One of a set of redundant sensors goes wrong on its own, as calibrations and transmitters
    do: its reading `drift`s by `rate` units per second from the onset, jumps by `amount`
    (`bias`), or sticks at its last value (`stuck`). The quantity itself is untouched, so the
    other sensors of the quantity keep telling the truth."""

    signal: str = ""
    col: int = 0
    mode: Literal["drift", "bias", "stuck"] = "drift"
    rate: float = 0.0
    amount: float = 0.0
    EFFECT: ClassVar[Effect | None] = "disagreement"

    def apply(self, m: Modifiers, k: int, tick: float) -> None:
        if self.mode == "drift":
            m.sensor_add[self.col] += self.rate * (k - self.start + 1) * tick
        elif self.mode == "bias":
            m.sensor_add[self.col] += self.amount
        else:
            m.flat[self.col] = True

    def signals(self) -> tuple[str, ...]:
        return (self.signal,)


@dataclass(eq=False)
class SensorStale(Fault):
    """The sensor stops reporting."""

    signal: str = ""
    col: int = 0
    EFFECT: ClassVar[Effect | None] = "stale"

    def apply(self, m: Modifiers, k: int, tick: float) -> None:
        m.stale[self.col] = True

    def signals(self) -> tuple[str, ...]:
        return (self.signal,)


@dataclass(eq=False)
class SensorFlatline(Fault):
    """The sensor keeps reporting its last value."""

    signal: str = ""
    col: int = 0
    EFFECT: ClassVar[Effect | None] = "flatline"

    def apply(self, m: Modifiers, k: int, tick: float) -> None:
        m.flat[self.col] = True

    def signals(self) -> tuple[str, ...]:
        return (self.signal,)


@dataclass(eq=False)
class SensorSpikes(Fault):
    """Single wild samples: `amounts[i]` added for `width` ticks from tick `at[i]` (`width` is the
    signal's sample period, so exactly one report carries each spike)."""

    signal: str = ""
    col: int = 0
    at: tuple[int, ...] = ()
    amounts: tuple[float, ...] = ()
    width: int = 1
    _by_tick: dict[int, float] = field(default_factory=dict, init=False, repr=False)
    EFFECT: ClassVar[Effect | None] = "spike"

    def __post_init__(self) -> None:
        for tk, amount in zip(self.at, self.amounts, strict=True):
            for j in range(self.width):
                self._by_tick[tk + j] = amount

    def apply(self, m: Modifiers, k: int, tick: float) -> None:
        amount = self._by_tick.get(k)
        if amount is not None:
            m.spike[self.col] += amount

    def signals(self) -> tuple[str, ...]:
        return (self.signal,)


@dataclass(eq=False)
class ClockDrift(Fault):
    """The sensor's clock falls behind by `rate` seconds per second, with jitter: it reports, as
    now, what it measured that long ago."""

    signal: str = ""
    col: int = 0
    rate: float = 0.1
    jitter: F64 = field(default_factory=lambda: np.zeros(1))
    EFFECT: ClassVar[Effect | None] = "clock"

    def apply(self, m: Modifiers, k: int, tick: float) -> None:
        elapsed = (k - self.start + 1) * tick
        wobble = float(self.jitter[(k - self.start) % self.jitter.shape[0]])
        m.delay[self.col] = max(0.0, self.rate * elapsed + wobble)

    def signals(self) -> tuple[str, ...]:
        return (self.signal,)


@dataclass(eq=False)
class UnknownDevice(Fault):
    """A device the site does not know publishes `signal` every `every` ticks from `source`."""

    source: str = ""
    signal: str = ""
    every: int = 1
    base: float = 0.0
    sd: float = 1.0
    seed: int = 0
    EFFECT: ClassVar[Effect | None] = "foreign"

    def __post_init__(self) -> None:
        self._rng = np.random.Generator(np.random.PCG64(self.seed))

    def apply(self, m: Modifiers, k: int, tick: float) -> None:
        pass  # it touches nothing the site knows

    def signals(self) -> tuple[str, ...]:
        return (self.signal,)

    def foreign(self, k: int, time: float) -> list[ForeignMessage]:
        if (k - self.start) % self.every:
            return []
        value = self.base + self.sd * float(self._rng.standard_normal())
        return [ForeignMessage(self.source, self.signal, time, round(value, 3))]
