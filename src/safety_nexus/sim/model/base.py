"""The plant: the physical state of the whole site, advanced one tick at a time.

Each asset *type* has a model (power.py, water.py, tunnels.py, compute.py) holding the state of
all assets of that type as arrays; the plant runs the models in a fixed order every tick. Models
talk to each other only through *ports*: per-asset quantities ("power", "head", "air", ...) kept
in a ring buffer, so a dependant reads its provider's value from `lag` ticks ago. That ring
buffer is the delay line of every dependency in the site file, and it is why a feeder trip
reaches the pump after the feeder→pump lag and the sprinkler after the whole chain's.

A dependant reads a provider at lag 0 when the provider's type runs earlier in the order; a read
of a later type (or of a dependant, upstream against the arrows, e.g. the current a feeder
carries) sees the previous tick. Cycles in the site graph therefore cannot deadlock.

Models compute *true* values; sensor noise, sampling and sensor faults are added afterwards by
`sensors.SensorBank`. Everything random here comes from the plant's own generator, drawn in
fixed-size blocks every tick, so that two copies of a plant with the same generator state evolve
identically: that is what the ground-truth labeller relies on (see `truth.py`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from safety_nexus.core.types import SignalTable
from safety_nexus.site.schema import DependencyKind, Directive, Setpoint, Site

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
Bool = NDArray[np.bool_]

# What each port carries, and what a reader sees when nothing has been written.
PORT_DEFAULTS: dict[str, float] = {
    "power": 1.0,  # power available at the asset's output, 0..1
    "volt": 1.0,  # output voltage relative to nominal
    "demand": 1.0,  # electrical demand relative to nominal (substations)
    "call": 0.0,  # a UPS asking its generator to start
    "draw": 1.0,  # electrical draw relative to nominal, read upstream by the supplier
    "head": 5.0,  # water pressure at the outlet, bar; a tank's level, m (both ~5 when normal)
    "flow": 0.0,  # water flow out of the asset, L/s
    "share": 1.0,  # a main asking its pumps for more flow (lost pumps), >= 1
    "air": 0.0,  # airflow delivered by a fan, m³/s
    "cool": 1.0,  # cooling capacity of a chiller, 0..1
    "data": 1.0,  # health of a network path, 0..1
    "util": 0.5,  # compute utilisation, 0..1
    "heat": 1.0,  # heat load relative to nominal, read upstream by the chiller
}


def cyc(hour: float, peak: float, period: float = 24.0) -> float:
    """A daily cosine with its maximum at `peak` o'clock."""
    return math.cos(2.0 * math.pi * (hour - peak) / period)


def clamp(x: F64, lo: float | F64, hi: float | F64) -> F64:
    """`np.clip` without its per-call overhead (it matters at a few hundred calls per tick)."""
    return np.minimum(np.maximum(x, lo), hi)


def bump(hour: float, centre: float, width: float) -> float:
    """A Gaussian bump in the day (rush hours), wrapped around midnight."""
    d = (hour - centre + 12.0) % 24.0 - 12.0
    return math.exp(-0.5 * (d / width) ** 2)


@dataclass(frozen=True, slots=True)
class Noise:
    """Sensor noise of one signal: white + AR(1) with time constant `tau`, then quantisation.

    `digital`: no sensor at all: a value a controller reports as it holds it (the readback of a
    setpoint or directive in effect), exactly, and without drawing any random numbers, so that
    adding such signals to a site leaves every other signal's noise as it was."""

    white: float
    ar: float = 0.0
    tau: float = 60.0
    resolution: float = 0.0
    floor: float = -math.inf  # physically impossible below (a valve, a utilisation, a gas)
    digital: bool = False

    @property
    def sd(self) -> float:
        return math.hypot(self.white, self.ar)


class Modifiers:
    """What the active faults do to the plant and to the sensors during one tick.

    Faults write here (`faults.py`); models and the sensor bank read. Neutral values mean "no
    fault", so the arrays are reset only on ticks after some fault was active.
    """

    def __init__(self, n_assets: int, n_signals: int) -> None:
        self.n_assets = n_assets
        self.n_signals = n_signals
        # physical: per asset
        self.trip = np.zeros(n_assets, dtype=np.bool_)  # breaker open / unit stopped
        self.health = np.ones(n_assets)  # < 1: degraded (pump wear, fan imbalance)
        self.cooling = np.ones(n_assets)  # < 1: local cooling impaired (node heatsink, airflow)
        # physical: per signal, after the models
        self.truth_add = np.zeros(n_signals)
        self.truth_sd = np.zeros(n_signals)  # extra process noise, shared by an asset's signals
        # sensor: per signal
        self.sensor_add = np.zeros(n_signals)
        self.noise_mul = np.ones(n_signals)
        self.spike = np.zeros(n_signals)
        self.delay = np.zeros(n_signals)  # seconds the sensor's clock lags
        self.stale = np.zeros(n_signals, dtype=np.bool_)
        self.flat = np.zeros(n_signals, dtype=np.bool_)
        self.coarse = np.zeros(n_signals)  # > 0: the sensor rounds to this resolution instead
        # control: per readback signal, what is added to the setpoint or directive in effect
        # (a change nobody authorised; see `TypeModel.in_effect`)
        self.control = np.zeros(n_signals)
        self.dirty = False

    def reset(self) -> None:
        self.trip[:] = False
        self.health[:] = 1.0
        self.cooling[:] = 1.0
        self.truth_add[:] = 0.0
        self.truth_sd[:] = 0.0
        self.sensor_add[:] = 0.0
        self.noise_mul[:] = 1.0
        self.spike[:] = 0.0
        self.delay[:] = 0.0
        self.stale[:] = False
        self.flat[:] = False
        self.coarse[:] = 0.0
        self.control[:] = 0.0
        self.dirty = False


class Links:
    """Edges from source assets (global index) to the local assets of one model, with lags.

    Reading gathers the source port at `lag` ticks ago and aggregates per target; targets with no
    edge get `default`. Built once: the flat positions of every edge's read in the ring buffer,
    for every position of the ring, and the aggregation as a small dense matrix, so a read is a
    `take` and a matrix-vector product rather than index arithmetic and scatter calls.
    """

    def __init__(
        self,
        src: list[int],
        dst: list[int],
        lag: list[int],
        n: int,
        weight: list[float],
        history: int,
        n_assets: int,
    ) -> None:
        self.src = np.asarray(src, dtype=np.int64)
        self.dst = np.asarray(dst, dtype=np.int64)
        self.lag = np.asarray(lag, dtype=np.int64)
        self.weight = np.asarray(weight, dtype=np.float64)
        self.n = n
        self.count = np.bincount(self.dst, minlength=n).astype(np.float64)
        self.has = self.count > 0
        pos = np.arange(history)[:, None]
        self.flat = ((pos - self.lag[None, :]) % history) * n_assets + self.src[None, :]
        edges = len(src)
        self.summer = np.zeros((n, edges))
        self.summer[self.dst, np.arange(edges)] = self.weight
        self.averager = np.zeros((n, edges))
        self.averager[self.dst, np.arange(edges)] = 1.0 / self.count[self.dst]
        self.member = np.zeros((n, edges), dtype=np.bool_)
        self.member[self.dst, np.arange(edges)] = True
        # One edge per target in target order (the common case) reads by plain indexing.
        self._simple = bool(np.array_equal(self.dst, np.arange(n)))
        self._all = bool(self.has.all())

    def __len__(self) -> int:
        return int(self.src.shape[0])

    def gather(self, plant: Plant, port: str) -> F64:
        # ravel of a contiguous buffer is a view; not kept as an attribute, because a view stored
        # beside its base would no longer alias it in a deep copy of the plant.
        vals: F64 = plant.ports[port].ravel().take(self.flat[plant.pos])
        return vals

    def _fill(self, out: F64, default: float) -> F64:
        return out if self._all else np.where(self.has, out, default)

    def max(self, plant: Plant, port: str, default: float) -> F64:
        vals = self.gather(plant, port)
        if self._simple:
            return vals
        if not len(self):
            return np.full(self.n, default)
        return self._fill(np.where(self.member, vals, -np.inf).max(axis=1), default)

    def sum(self, plant: Plant, port: str, default: float = 0.0) -> F64:
        return self._fill(self.summer @ self.gather(plant, port), default)

    def mean(self, plant: Plant, port: str, default: float) -> F64:
        vals = self.gather(plant, port)
        if self._simple:
            return vals
        return self._fill(self.averager @ vals, default)


@dataclass(frozen=True, slots=True)
class ControlPoint:
    """A setpoint or directive of each asset of a model, as the plant holds it: what the
    operators authorised (`Plant.authorised`, on the readback's column; `nominal` where nothing
    is declared), plus what a fault changed behind their backs (`Modifiers.control`). Models run
    their physics on `value` and report it on the readback."""

    nominal: F64  # per asset
    local: I64  # the assets that have the readback signal...
    cols: I64  # ...and its column
    authorised: F64  # the plant's array (per signal), read on every tick

    def value(self, mods: Modifiers) -> F64:
        if not self.local.size:
            return self.nominal
        out = self.nominal.copy()
        held = self.authorised[self.cols]
        out[self.local] = np.where(np.isnan(held), out[self.local], held) + mods.control[self.cols]
        return out


class TypeModel:
    """The physics of one asset type, over all assets of that type at once.

    Subclasses list the signal names they model (`NAMES`), their sensor noise (`NOISE`) and the
    normal bands the documentation gives (`BANDS`, used when an asset lacks that signal so the
    physics still has a nominal value). Nominal levels are read from the site's normal bands, so
    "in band in normal operation" holds for the site as declared.
    """

    TYPE: ClassVar[str] = ""
    NAMES: ClassVar[tuple[str, ...]] = ()
    NOISE: ClassVar[dict[str, Noise]] = {}
    BANDS: ClassVar[dict[str, tuple[float, float]]] = {}
    DRAWS: ClassVar[int] = 0  # process-noise draws per asset per tick

    def __init__(self, plant: Plant, assets: list[int]) -> None:
        self.plant = plant
        self.assets = np.asarray(assets, dtype=np.int64)
        self.n = len(assets)
        self.dt = plant.tick
        self.out = np.zeros((len(self.NAMES), self.n))
        self.row = {name: r for r, name in enumerate(self.NAMES)}
        dst: list[int] = []
        src: list[int] = []
        lo = {name: np.full(self.n, self.BANDS.get(name, (0.0, 1.0))[0]) for name in self.NAMES}
        hi = {name: np.full(self.n, self.BANDS.get(name, (0.0, 1.0))[1]) for name in self.NAMES}
        for i, a in enumerate(assets):
            for name, col in plant.columns_of[a].items():
                if name in self.row:
                    dst.append(col)
                    src.append(self.row[name] * self.n + i)
                    lo[name][i] = plant.table.normal_lo[col]
                    hi[name][i] = plant.table.normal_hi[col]
                    plant.claimed[col] = True
                    plant.noise[col] = self.NOISE.get(name, plant.noise[col])
        self.dst = np.asarray(dst, dtype=np.int64)
        self.src = np.asarray(src, dtype=np.int64)
        self.lo = lo
        self.hi = hi
        self.c = {name: 0.5 * (lo[name] + hi[name]) for name in self.NAMES}
        self.w = {name: hi[name] - lo[name] for name in self.NAMES}
        self.draws = self.DRAWS * self.n
        self._ar_coef: dict[float, tuple[float, float]] = {}

    # -- helpers for subclasses ------------------------------------------------------------

    def links(
        self,
        kind: DependencyKind,
        *,
        types: tuple[str, ...] | None = None,
        exclude: tuple[str, ...] = (),
        reverse: bool = False,
        weight_by_fanout: bool = False,
    ) -> Links:
        """Dependencies of `kind` into this model's assets (from providers of `types`), or with
        `reverse`, out of them (from dependants of `types`, read at the previous tick)."""
        p = self.plant
        local = {int(a): i for i, a in enumerate(self.assets)}
        src: list[int] = []
        dst: list[int] = []
        lag: list[int] = []
        weight: list[float] = []
        for e in p.edges:
            if e.kind is not kind:
                continue
            mine, other = (e.provider, e.dependant) if reverse else (e.dependant, e.provider)
            if mine not in local or p.types[other] in exclude:
                continue
            if types is not None and p.types[other] not in types:
                continue
            src.append(other)
            dst.append(local[mine])
            lag.append(1 if reverse else e.lag)
            weight.append(1.0 / p.fanout[(other, kind)] if weight_by_fanout else 1.0)
        order = np.argsort(np.asarray(dst, dtype=np.int64), kind="stable")
        return Links(
            [src[k] for k in order],
            [dst[k] for k in order],
            [lag[k] for k in order],
            self.n,
            [weight[k] for k in order],
            p.history,
            p.n_assets,
        )

    def alpha(self, tau: float | F64) -> F64:
        """Per-tick blend factor of a first-order lag with time constant `tau` seconds."""
        return np.asarray(1.0 - np.exp(-self.dt / np.asarray(tau, dtype=np.float64)))

    def ar(self, x: F64, z: F64, tau: float, sd: float | F64) -> F64:
        """One step of a stationary AR(1) process with standard deviation `sd`."""
        coef = self._ar_coef.get(tau)
        if coef is None:
            phi = math.exp(-self.dt / tau)
            coef = self._ar_coef[tau] = (phi, math.sqrt(1.0 - phi * phi))
        return coef[0] * x + (coef[1] * sd) * z

    def control_point(self, name: str, nominal: F64) -> ControlPoint:
        """A setpoint or directive of this model's assets whose readback signal is `name`: the
        site's authorised value where the asset has that signal and the site declares one,
        `nominal` (per asset) otherwise."""
        p = self.plant
        local: list[int] = []
        cols: list[int] = []
        for i, a in enumerate(self.assets.tolist()):
            col = p.columns_of[a].get(name)
            if col is not None:
                local.append(i)
                cols.append(col)
        return ControlPoint(
            np.broadcast_to(np.asarray(nominal, dtype=np.float64), (self.n,)).copy(),
            np.asarray(local, dtype=np.int64),
            np.asarray(cols, dtype=np.int64),
            p.authorised,
        )

    def put(self, name: str, values: F64 | float) -> None:
        self.out[self.row[name]] = values

    def publish(self, port: str, values: F64 | float) -> None:
        self.plant.ports[port][self.plant.pos, self.assets] = values

    def emit(self) -> None:
        self.plant.truth[self.dst] = self.out.ravel()[self.src]

    # -- the physics -----------------------------------------------------------------------

    def step(self, t: float, hour: float, z: F64, mods: Modifiers, first: bool) -> None:
        """Advance one tick: read ports, update state, publish ports, write truth (`emit`).
        `z` holds `self.draws` standard normals; `first` means "start from equilibrium"."""
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class Edge:
    provider: int
    dependant: int
    kind: DependencyKind
    lag: int  # ticks


class Plant:
    """Every asset's physical state; `step` advances it by one tick and fills `truth`."""

    def __init__(
        self,
        site: Site,
        table: SignalTable,
        rng: np.random.Generator,
        tick: float,
        tz_offset: float,
        models: list[type[TypeModel]],
        fallback: type[TypeModel],
    ) -> None:
        self.table = table
        self.rng = rng
        self.tick = tick
        self.tz_offset = tz_offset
        self.asset_ids = tuple(a.id for a in site.assets)
        self.asset_index = {a: i for i, a in enumerate(self.asset_ids)}
        self.types = tuple(a.type for a in site.assets)
        self.n_assets = len(self.asset_ids)
        self.columns_of: list[dict[str, int]] = [{} for _ in self.asset_ids]
        for col, sid in enumerate(table.ids):
            asset, name = sid.split(".", 1)
            self.columns_of[self.asset_index[asset]][name] = col
        self.signal_asset = np.asarray([self.asset_index[a] for a in table.assets], dtype=np.int64)
        self.edges = [
            Edge(
                self.asset_index[d.provider],
                self.asset_index[d.dependant],
                d.kind,
                max(0, math.floor(d.lag / tick + 0.5)),
            )
            for d in site.dependencies
        ]
        self.fanout: dict[tuple[int, DependencyKind], int] = {}
        for e in self.edges:
            key = (e.provider, e.kind)
            self.fanout[key] = self.fanout.get(key, 0) + 1
        self.history = max([e.lag for e in self.edges] + [0]) + 2
        self.ports = {
            name: np.full((self.history, self.n_assets), default)
            for name, default in PORT_DEFAULTS.items()
        }
        self.pos = 0
        n = len(table)
        self.truth = np.zeros(n)
        self.claimed = np.zeros(n, dtype=np.bool_)
        self.noise: list[Noise] = [Noise(0.0) for _ in range(n)]
        # What each readback signal reports as in effect when nothing interferes: the setpoint
        # or directive (its state's index) the operators authorised, at first the site file's
        # (`Simulator.set_control` changes it); NaN where none is declared.
        self.authorised = np.full(n, np.nan)
        specs: list[Setpoint | Directive] = [*site.setpoints, *site.directives]
        for spec in specs:
            if spec.signal is not None and spec.signal in table.index:
                self.authorised[table.index[spec.signal]] = (
                    spec.states.index(spec.value) if isinstance(spec, Directive) else spec.value
                )
        by_type: dict[str, list[int]] = {}
        for i, typ in enumerate(self.types):
            by_type.setdefault(typ, []).append(i)
        self.models: list[TypeModel] = [
            m(self, by_type[m.TYPE]) for m in models if m.TYPE in by_type
        ]
        # Whatever no model claimed (unknown types, unknown signal names) gets the fallback.
        self.models.append(fallback(self, list(range(self.n_assets))))
        self.draws = sum(m.draws for m in self.models)
        # Until every delay line holds real values, states jump to their equilibrium instead of
        # relaxing toward targets computed from the ports' placeholder defaults.
        self.settling = self.history

    def step(self, t: float, mods: Modifiers) -> None:
        prev = self.pos
        self.pos = (self.pos + 1) % self.history
        for buf in self.ports.values():
            buf[self.pos] = buf[prev]
        hour = ((t + self.tz_offset) % 86400.0) / 3600.0
        z = self.rng.standard_normal(self.draws + self.n_assets)
        k = 0
        for m in self.models:
            m.step(t, hour, z[k : k + m.draws], mods, self.settling > 0)
            k += m.draws
        if mods.dirty:
            self.truth += mods.truth_add
            self.truth += mods.truth_sd * z[k:][self.signal_asset]
        self.settling = max(0, self.settling - 1)
