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

import numpy as np

from safety_nexus.core.errors import DetectError
from safety_nexus.core.types import Finding, FindingKind, Frame, Recovery, SignalTable
from safety_nexus.detect.base import F64, Bools, Columns, Detector, Hits, ScratchState
from safety_nexus.detect.baseline import Baseline
from safety_nexus.detect.config import DetectConfig
from safety_nexus.detect.cusum import LevelShiftDetector
from safety_nexus.detect.limit import LimitDetector
from safety_nexus.detect.rate import RateDetector
from safety_nexus.detect.spike import SpikeDetector
from safety_nexus.detect.stale import FlatlineDetector, StaleDetector
from safety_nexus.detect.variance import VarianceDetector

__all__ = ["REGISTRY", "BankResult", "DetectConfig", "DetectorBank"]

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
    )
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
    ) -> None:
        self.table = table
        self.config = config or DetectConfig()
        names = list(REGISTRY) if detectors is None else list(detectors)
        unknown = [name for name in names if name not in REGISTRY]
        if unknown:
            raise DetectError(f"unknown detector '{unknown[0]}' (known: {', '.join(REGISTRY)})")
        if len(set(names)) != len(names):
            raise DetectError("a detector is listed twice")
        self.detectors: list[type[Detector]] = [REGISTRY[name] for name in names]
        n = len(table)
        period = np.asarray(table.period, dtype=np.float64)
        if n and not (np.all(np.isfinite(period)) and np.all(period > 0)):
            raise DetectError("every signal needs a finite, positive sample period")
        n_shards = -(-n // self.config.block) if n else 0
        bounds = np.linspace(0, n, n_shards + 1).round().astype(int).tolist()
        self._shards: list[_Shard] = []
        for lo, hi in itertools.pairwise(bounds):
            cols = Columns(
                period=period[lo:hi].copy(),
                limit_lo=np.asarray(table.limit_lo[lo:hi], dtype=np.float64).copy(),
                limit_hi=np.asarray(table.limit_hi[lo:hi], dtype=np.float64).copy(),
            )
            dets = [cls(cols, self.config) for cls in self.detectors]
            self._shards.append(_Shard(lo, hi, Baseline(hi - lo, self.config), dets))
        self._last_t = -np.inf

    # -- processing ---------------------------------------------------------------------------

    def process(self, frame: Frame) -> BankResult:
        """Run every detector over the frame; findings for onsets, recoveries for clearings."""
        events = self._run(frame.times, frame.values)
        return self._result(events, frame.times.tolist())

    def process_arrays(self, times: F64, values: F64) -> int:
        """The hot path without building Python objects: returns the number of onsets."""
        return sum(int(h.onsets.shape[0]) for _, h, _, _ in self._run(times, values))

    def tick(self, t: float) -> BankResult:
        """Advance time with no samples (so that stale signals are noticed when nothing comes)."""
        n = len(self.table)
        return self.process(Frame(np.array([t]), np.full((1, n), np.nan)))

    def _run(self, times: F64, values: F64) -> list[_Event]:
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
        tl: list[float] = times.tolist()
        events: list[_Event] = []
        for shard in self._shards:
            self._run_shard(shard, tl, values, events)
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
        for row, hits, lo, j in events:
            det = self.detectors[j]
            t = times[row]
            for i, col in enumerate(hits.onsets.tolist()):
                g = lo + col
                unit = det.evidence_unit.format(unit=table.units[g])
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

    def warm(self) -> Bools:
        """Per signal: past warm-up (findings are possible)."""
        out = np.zeros(len(self.table), dtype=np.bool_)
        for shard in self._shards:
            out[shard.lo : shard.hi] = shard.baseline.warm
        return out

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
        return total

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
