"""The detector bank: every registered detector over every signal, one frame at a time.

Signals are split into shards of about `config.block` contiguous columns, each with its own
baseline and detector instances. A frame is processed shard by shard and, within a shard, row by
row: per row the baseline computes the residuals, each detector updates its arrays with a handful
of in-place ufuncs, then the baseline learns the row. Shards keep the working set of a row in the
CPU cache (a million signals' state would not be), and since every operation is elementwise per
signal the results do not depend on the shard size or on how a stream is cut into frames.

Findings are built only for onsets (the rising edge of a detector's `active` mask) and come out
sorted by (row, signal, detector); recoveries likewise.

Example (seeded): a 2σ level shift on one of three signals.

>>> import numpy as np
>>> from safety_nexus.core import Frame
>>> from safety_nexus.detect import DetectorBank
>>> from safety_nexus.detect.testing import make_table
>>> rng = np.random.default_rng(2)
>>> values = rng.normal(size=(3000, 3))
>>> values[2000:, 2] += 2.0
>>> bank = DetectorBank(make_table(3))
>>> result = bank.process(Frame(np.arange(3000.0), values))
>>> [(f.signal, f.kind.value, f.detector, f.time) for f in result.findings]
[('a2.s2', 'level_shift', 'cusum', 2007.0)]
>>> print(result.findings[0].explain())
a2.s2: level shift, observed 1.97979 V vs baseline -0.00254671 V (+1.98 V, +2.0σ)
>>> bank.active(result.findings[0].kind).tolist()
[False, False, True]
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from safety_nexus.core.errors import DetectError
from safety_nexus.core.types import Finding, FindingKind, Frame, Recovery, SignalTable
from safety_nexus.detect import state
from safety_nexus.detect.base import F64, Bools, Columns, Detector, Hits, Index, ScratchState
from safety_nexus.detect.baseline import Baseline
from safety_nexus.detect.config import DetectConfig
from safety_nexus.detect.counters import CounterRates
from safety_nexus.detect.cross import CrossDetector, CrossHits
from safety_nexus.detect.cusum import LevelShiftDetector
from safety_nexus.detect.forecast import ForecastDetector
from safety_nexus.detect.limit import LimitDetector
from safety_nexus.detect.oscillation import OscillationDetector
from safety_nexus.detect.quantisation import QuantisationDetector
from safety_nexus.detect.rate import RateDetector
from safety_nexus.detect.redundancy import RedundancyDetector
from safety_nexus.detect.seasonal import SeasonalDetector
from safety_nexus.detect.spike import SpikeDetector
from safety_nexus.detect.stale import FlatlineDetector, StaleDetector
from safety_nexus.detect.threshold import TimeToThresholdDetector
from safety_nexus.detect.variance import VarianceDetector

__all__ = ["CROSS_REGISTRY", "REGISTRY", "BankResult", "DetectConfig", "DetectorBank"]

REGISTRY: dict[str, type[Detector]] = {
    cls.name: cls
    for cls in (
        LevelShiftDetector,
        VarianceDetector,
        SpikeDetector,
        StaleDetector,
        FlatlineDetector,
        RateDetector,
        LimitDetector,
        SeasonalDetector,
        QuantisationDetector,
        TimeToThresholdDetector,
        OscillationDetector,
    )
}


# Detectors that compare declared signals (see cross.py): they see whole rows, after the shards.
CROSS_REGISTRY: dict[str, type[CrossDetector]] = {
    cls.name: cls for cls in (ForecastDetector, RedundancyDetector)
}


@dataclass(frozen=True, slots=True)
class BankResult:
    findings: list[Finding] = field(default_factory=list)
    recoveries: list[Recovery] = field(default_factory=list)


@dataclass(slots=True)
class _Shard:
    lo: int
    hi: int
    baseline: Baseline
    detectors: list[Detector]


# One raw event: (row, shard-local Hits, shard offset, detector index).
_Event = tuple[int, Hits, int, int]


class DetectorBank:
    """All detectors over all signals of a SignalTable; state lives in arrays, shard by shard."""

    def __init__(
        self,
        table: SignalTable,
        config: DetectConfig | None = None,
        detectors: Sequence[str] | None = None,
        cusum_design: tuple[F64, F64] | None = None,
    ) -> None:
        """`cusum_design`: per signal, the allowance k and threshold h (in sigmas) of the
        long-baseline level-shift CUSUM for signals whose expected shift δ is known (k = δ/2, h
        from `detect.design`), NaN for the config's allowances."""
        self.table = table
        self.config = config or DetectConfig()
        names = [*REGISTRY, *CROSS_REGISTRY] if detectors is None else list(detectors)
        unknown = [name for name in names if name not in REGISTRY and name not in CROSS_REGISTRY]
        if unknown:
            known = ", ".join([*REGISTRY, *CROSS_REGISTRY])
            raise DetectError(f"unknown detector '{unknown[0]}' (known: {known})")
        if len(set(names)) != len(names):
            raise DetectError("a detector is listed twice")
        self.detectors: list[type[Detector]] = [REGISTRY[n] for n in names if n in REGISTRY]
        n = len(table)
        period = np.asarray(table.period, dtype=np.float64)
        if n and not (np.all(np.isfinite(period)) and np.all(period > 0)):
            raise DetectError("every signal needs a finite, positive sample period")
        design = None
        if cusum_design is not None:
            design = tuple(np.asarray(a, dtype=np.float64) for a in cusum_design)
            if len(design) != 2 or any(a.shape != (n,) for a in design):
                raise DetectError(f"cusum_design needs two arrays of shape ({n},): k and h")
            k_own, h_own = design
            mixed = np.isfinite(k_own) != np.isfinite(h_own)
            if mixed.any() or np.any(k_own < 0) or np.any(h_own <= 0):
                raise DetectError("cusum_design needs k >= 0 and h > 0 (both NaN: the config's)")
        self._design = design  # kept to rebuild this bank's layout when a state is restored
        n_shards = -(-n // self.config.block) if n else 0
        bounds = np.linspace(0, n, n_shards + 1).round().astype(int).tolist()
        self._shards: list[_Shard] = []
        for lo, hi in itertools.pairwise(bounds):
            cols = Columns(
                period=period[lo:hi].copy(),
                limit_lo=np.asarray(table.limit_lo[lo:hi], dtype=np.float64).copy(),
                limit_hi=np.asarray(table.limit_hi[lo:hi], dtype=np.float64).copy(),
                cusum_k=None if design is None else design[0][lo:hi].copy(),
                cusum_h=None if design is None else design[1][lo:hi].copy(),
            )
            dets = [cls(cols, self.config) for cls in self.detectors]
            self._shards.append(_Shard(lo, hi, Baseline(hi - lo, self.config), dets))
        # Cross-signal detectors, only where the table declares something for them to compare.
        self._cross: list[CrossDetector] = [
            CROSS_REGISTRY[name](table, self.config)
            for name in names
            if name in CROSS_REGISTRY and CROSS_REGISTRY[name].applies(table)
        ]
        self._last_t = -np.inf
        # Counters are watched as rates per second (see detect/counters.py), in unit/s.
        is_counter = np.asarray(table.counter, dtype=np.bool_)
        self._counters = CounterRates(np.flatnonzero(is_counter)) if is_counter.any() else None
        self._units = tuple(
            f"{u}/s" if c else u for u, c in zip(table.units, is_counter.tolist(), strict=True)
        )

    # -- processing ---------------------------------------------------------------------------

    def process(self, frame: Frame, *, sample_times: F64 | None = None) -> BankResult:
        """Run every detector over the frame; findings for onsets, recoveries for clearings.

        `sample_times`: the samples' real times where `frame.times` had to be moved forward to
        keep the bank's rows strictly increasing (the pipeline does so for rows that arrive
        behind the bank, e.g. from a source whose clock lags). Rates of counters are taken over
        these real times (a row moved by a microsecond must not turn one count into a million
        per second); each signal's own samples are in order either way."""
        events = self._run(frame.times, frame.values, sample_times)
        return self._result(events, frame.times.tolist())

    def process_arrays(self, times: F64, values: F64) -> int:
        """The hot path without building Python objects: returns the number of onsets."""
        return sum(int(h.onsets.shape[0]) for _, h, _, _ in self._run(times, values))

    def tick(self, t: float) -> BankResult:
        """Advance time with no samples (so that stale signals are noticed when nothing comes)."""
        n = len(self.table)
        return self.process(Frame(np.array([t]), np.full((1, n), np.nan)))

    def _run(self, times: F64, values: F64, sample_times: F64 | None = None) -> list[_Event]:
        times = np.asarray(times, dtype=np.float64)
        values = np.ascontiguousarray(values, dtype=np.float64)
        n = len(self.table)
        if times.ndim != 1 or values.ndim != 2 or values.shape[0] != times.shape[0]:
            raise DetectError("frame needs times of shape (T,) and values of shape (T, N)")
        if values.shape[1] != n:
            raise DetectError(f"frame has {values.shape[1]} signals, the bank has {n}")
        if not times.shape[0]:
            return []
        if not np.all(np.isfinite(times)):
            raise DetectError("frame times must be finite")
        if times[0] <= self._last_t or np.any(np.diff(times) <= 0):
            raise DetectError("frame times must increase strictly, also across frames")
        if np.isinf(values).any():  # one cheap pass; NaN is "no sample", ±inf is a bad value
            raise DetectError("frame values must be finite (NaN for no sample)")
        if self._counters is not None:
            real = times if sample_times is None else np.asarray(sample_times, dtype=np.float64)
            if real.shape != times.shape:
                raise DetectError("sample_times must have the frame's shape (T,)")
            values = self._counters.apply(real, values)
        tl: list[float] = times.tolist()
        events: list[_Event] = []
        for shard in self._shards:
            self._run_shard(shard, tl, values, events)
        first = len(self.detectors)
        for c, cross in enumerate(self._cross):
            events += [(row, hits, 0, first + c) for row, hits in cross.run(times, values)]
        self._last_t = tl[-1]
        return events

    @staticmethod
    def _run_shard(shard: _Shard, times: list[float], values: F64, events: list[_Event]) -> None:
        base = shard.baseline
        block = values[:, shard.lo : shard.hi]
        prepare, commit = base.prepare, base.commit
        updates = list(enumerate(det.update for det in shard.detectors))
        lo = shard.lo
        for row, t in enumerate(times):
            x = block[row]
            prepare(t, x)
            for j, update in updates:
                hits = update(t, x, base)
                if hits is not None:
                    events.append((row, hits, lo, j))
            commit()

    def _result(self, events: list[_Event], times: list[float]) -> BankResult:
        if not events:
            return BankResult()
        table = self.table
        onsets: list[tuple[int, int, int, Finding]] = []
        recoveries: list[tuple[int, int, int, Recovery]] = []
        kinds: list[type[Detector] | type[CrossDetector]] = [*self.detectors]
        kinds += [type(c) for c in self._cross]
        for row, hits, lo, j in events:
            det = kinds[j]
            context = hits.context if isinstance(hits, CrossHits) else ()
            t = times[row]
            for i, col in enumerate(hits.onsets.tolist()):
                g = lo + col
                unit = det.evidence_unit.format(unit=self._units[g])
                finding = Finding(
                    time=t,
                    signal=table.ids[g],
                    asset=table.assets[g],
                    kind=det.kind,
                    score=float(hits.score[i]),
                    observed=float(hits.observed[i]),
                    baseline=float(hits.baseline[i]),
                    sigma=float(hits.sigma[i]),
                    unit=unit,
                    detector=det.name,
                    context=context[i] if context else "",
                    eta=float(hits.eta[i]) if hits.eta.shape[0] else None,
                    eta_low=float(hits.eta_low[i]) if hits.eta_low.shape[0] else None,
                    eta_high=float(hits.eta_high[i]) if hits.eta_high.shape[0] else None,
                    period=float(hits.period[i]) if hits.period.shape[0] else None,
                )
                onsets.append((row, g, j, finding))
            for col in hits.recovered.tolist():
                g = lo + col
                rec = Recovery(time=t, signal=table.ids[g], asset=table.assets[g], kind=det.kind)
                recoveries.append((row, g, j, rec))
        onsets.sort(key=lambda e: e[:3])
        recoveries.sort(key=lambda e: e[:3])
        return BankResult([e[3] for e in onsets], [e[3] for e in recoveries])

    # -- state --------------------------------------------------------------------------------

    def active(self, kind: FindingKind) -> Bools:
        """Per signal: currently abnormal for `kind` (all False if no detector of that kind)."""
        out = np.zeros(len(self.table), dtype=np.bool_)
        for shard in self._shards:
            for det in shard.detectors:
                if det.kind == kind:
                    out[shard.lo : shard.hi] |= det.active
        for cross in self._cross:
            if cross.kind == kind:
                out |= cross.active
        return out

    def baseline(self) -> tuple[F64, F64]:
        """Current mean and (robust) std per signal, e.g. to draw a trend's normal band."""
        n = len(self.table)
        mean = np.empty(n, dtype=np.float64)
        std = np.empty(n, dtype=np.float64)
        for shard in self._shards:
            mean[shard.lo : shard.hi] = shard.baseline.mean
            std[shard.lo : shard.hi] = shard.baseline.std
        return mean, std

    def time_to_threshold(self) -> tuple[F64, F64, F64]:
        """Per signal, seconds from the last row processed until its forecast crossing of a hard
        limit: (ETA, low, high). inf where it is not moving toward a limit, 0 once beyond it,
        NaN where there is no trend yet (or no time-to-threshold detector in the bank); see
        detect/threshold.py."""
        n = len(self.table)
        out = [np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)]
        for shard in self._shards:
            for det in shard.detectors:
                if isinstance(det, TimeToThresholdDetector):
                    for arr, part in zip(out, det.forecast(self._last_t), strict=True):
                        arr[shard.lo : shard.hi] = part
        return out[0], out[1], out[2]

    def warm(self) -> Bools:
        """Per signal: past warm-up (findings are possible)."""
        out = np.zeros(len(self.table), dtype=np.bool_)
        for shard in self._shards:
            out[shard.lo : shard.hi] = shard.baseline.warm
        return out

    def prime(self, mean: float | F64, std: float | F64, count: float | F64) -> None:
        """Start every signal's baseline from known statistics, as if it had already seen
        `count` samples with this mean and std (each a scalar or one value per signal): a level
        known from a long history instead of streamed again (see `Baseline.prime`). Call before
        the first frame."""
        n = len(self.table)
        try:
            m, s, c = (
                np.broadcast_to(np.asarray(a, dtype=np.float64), (n,)) for a in (mean, std, count)
            )
        except ValueError as err:
            raise DetectError(f"prime needs scalars or arrays of shape ({n},)") from err
        for shard in self._shards:
            sl = slice(shard.lo, shard.hi)
            shard.baseline.prime(m[sl], s[sl], c[sl])

    def rearm(self, signals: Sequence[int] | Index) -> None:
        """Forget the level-shift findings of these signals (indices into the table) and watch
        them afresh from the level before the findings (see `LevelShiftDetector.rearm`): no
        recovery is reported. Call between frames."""
        idx = np.unique(np.asarray(signals, dtype=np.intp))
        if idx.shape[0] and (idx[0] < 0 or idx[-1] >= len(self.table)):
            raise DetectError("rearm: signal index out of range")
        for shard in self._shards:
            cols = idx[(idx >= shard.lo) & (idx < shard.hi)] - shard.lo
            if not cols.shape[0]:
                continue
            for det in shard.detectors:
                if isinstance(det, LevelShiftDetector):
                    shard.baseline.mean[cols] += det.rearm(cols)

    def state_nbytes(self) -> int:
        """Bytes of detector state, baseline included (arrays shared between detectors counted
        once; per-row scratch excluded, it is per shard and bounded by the block size)."""
        total = 0
        for shard in self._shards:
            owners: list[ScratchState] = [shard.baseline]
            owners += [d for d in shard.detectors if isinstance(d, ScratchState)]
            seen: dict[int, int] = {}
            for owner in owners:
                for arr in owner.state_arrays():
                    seen[id(arr)] = arr.nbytes
                total += owner.extra_nbytes()
            total += sum(seen.values())
        return total + sum(cross.nbytes() for cross in self._cross)

    def scratch_nbytes(self) -> int:
        """Bytes of per-row workspace (per shard: bounded by the block size, not by signals)."""
        total = 0
        for shard in self._shards:
            for obj in [shard.baseline, *shard.detectors]:
                total += sum(
                    v.nbytes
                    for k, v in vars(obj).items()
                    if isinstance(v, np.ndarray) and k in getattr(obj, "_scratch", ())
                )
        return total

    # -- persistence (see detect/state.py) ------------------------------------------------------

    # Attributes that are configuration, not learned state: rebuilt from the table and config.
    _NOT_STATE = frozenset({"table", "config", "detectors", "_units", "_design"})

    @property
    def last_time(self) -> float:
        """Time of the last row processed (-inf before the first)."""
        return float(self._last_t)

    def last_sample_times(self) -> F64:
        """Per signal: time of its latest sample processed (-inf before the first)."""
        out = np.full(len(self.table), -np.inf)
        for shard in self._shards:
            out[shard.lo : shard.hi] = shard.baseline.last_t
        return out

    def _names(self) -> list[str]:
        """The detectors this bank runs, per-shard and cross-signal ones."""
        cross = [str(getattr(type(c), "name", "")) for c in getattr(self, "_cross", [])]
        return [d.name for d in self.detectors] + cross

    def fingerprint(self) -> dict[str, str]:
        """What a saved state of this bank is valid for (table, detectors, config)."""
        return state.fingerprint(self.table, self.config, self._names(), self._design)

    def save_state(self, path: Path, *, saved_at: float | None = None) -> int:
        """Write everything the bank has learned to `path`, atomically; returns the file size.

        Generic over the registered detectors: every attribute of the bank except its table,
        config and detector list is walked (see `state.write_state`)."""
        tree = {k: v for k, v in vars(self).items() if k not in self._NOT_STATE}
        header = {
            "fingerprint": self.fingerprint(),
            "saved_at": saved_at,
            "last_time": self.last_time,
        }
        return state.write_state(path, header, tree)

    def load_state(self, path: Path) -> dict[str, Any]:
        """Take over the state saved in `path`. Raises DetectError (and leaves the bank as it
        was) if the file is missing, corrupt, or was saved for another table, detector list or
        config; the message names what differs. Returns the file's header (`saved_at`,
        `last_time`)."""
        header, arrays = state.read_state(path)
        why = state.mismatch(header.get("fingerprint") or {}, self.fingerprint())
        if why is not None:
            raise DetectError(f"{path}: cannot restore detector state: {why}")
        design = None if self._design is None else (self._design[0], self._design[1])
        fresh = DetectorBank(self.table, self.config, self._names(), cusum_design=design)
        template = {k: v for k, v in vars(fresh).items() if k not in self._NOT_STATE}
        saved: dict[str, Any] = header.get("state") or {}
        if set(saved) != set(template):
            diff = sorted(set(saved) ^ set(template))
            raise DetectError(f"{path}: cannot restore detector state: bank field '{diff[0]}'")
        dec = state.decoder(arrays)
        try:
            restored = {k: dec.decode(saved[k], template[k], k) for k in template}
        except (TypeError, ValueError, KeyError, IndexError) as err:
            raise DetectError(f"{path}: corrupt detector state ({err})") from err
        except DetectError as err:
            raise DetectError(f"{path}: cannot restore detector state: {err}") from err
        for k, v in restored.items():
            setattr(self, k, v)
        return {k: v for k, v in header.items() if k != "state"}
