"""Cross-signal detection: what the bank does for detectors that compare declared signals.

The single-signal detectors run inside the bank's shards, each of which sees a contiguous block
of columns; a forecast and its actual, or two redundant sensors, may sit in different shards. A
cross-signal detector therefore sees whole rows, through the index arrays of the SignalTable
(`forecast_of`, `measures`), and touches only the declared columns: its cost does not grow with
the number of signals a site has, only with the number it declares.

Each family turns its declarations into *residual* columns, one value per row where the inputs
allow it (a forecast's error against its actual, a sensor's deviation from the consensus of its
group), and runs the existing single-signal machinery over them — the robust baseline, the level
shift CUSUMs (long baseline and local level, calibrated for autocorrelation) and the variance
test, plus `ResidualDrift` for the slow departures the local level would follow — in
`Residuals`, which maps what those find back to the real signals with the family's kind. A
residual that departs from its own history is the finding: a forecast that has always been 2 %
high is not news; one that is suddenly 10 % off is.

Everything stays causal (a residual at row t uses samples up to t; a missing sample is held for
`stale_factor` of its period, then counts as missing), deterministic and independent of how the
stream is cut into frames. `Held` forward-fills declared columns across frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

from safety_nexus.core.types import FindingKind
from safety_nexus.detect.base import (
    EMPTY_INDEX,
    F32,
    F64,
    ActiveSet,
    BaselineView,
    Bools,
    Columns,
    Cusum,
    Detector,
    Hits,
    Index,
    ScratchState,
    Vif,
    latest_rows,
)
from safety_nexus.detect.baseline import Baseline
from safety_nexus.detect.config import DetectConfig
from safety_nexus.detect.cusum import LevelShiftDetector, time_scale
from safety_nexus.detect.variance import VarianceDetector

if TYPE_CHECKING:
    from safety_nexus.core.types import SignalTable

__all__ = [
    "CrossDetector",
    "CrossHits",
    "Edge",
    "Edges",
    "Held",
    "ResidualDrift",
    "Residuals",
    "lead_of",
    "max_age",
]


@dataclass(frozen=True, slots=True)
class CrossHits(Hits):
    """Hits over the bank's (global) columns, with what each onset's evidence is about."""

    context: tuple[str, ...] = ()


class CrossDetector(Protocol):
    """A detector over whole rows of declared columns (see the module docstring)."""

    name: ClassVar[str]
    kind: ClassVar[FindingKind]
    evidence_unit: ClassVar[str]

    def __init__(self, table: SignalTable, config: DetectConfig) -> None: ...

    @staticmethod
    def applies(table: SignalTable) -> bool:
        """Whether the table declares anything this family checks."""
        ...

    def run(self, times: F64, values: F64) -> list[tuple[int, CrossHits]]:
        """Process a validated frame; (row, hits) for rows where something started or cleared."""
        ...

    @property
    def active(self) -> Bools: ...

    def nbytes(self) -> int: ...


class Held:
    """The latest sample of some columns, carried across frames while it is fresh.

    `fill(times, values)` returns, per row and column, the latest sample at or before the row if
    it is at most `max_age` seconds old (NaN otherwise), and the raw samples (NaN = none).
    """

    def __init__(self, cols: Index, max_age: F64) -> None:
        self.cols = cols
        self.max_age = max_age
        self.last: F64 = np.full(cols.shape[0], np.nan)
        self.last_t: F64 = np.full(cols.shape[0], -np.inf)

    def fill(self, times: F64, values: F64) -> tuple[F64, F64]:
        raw = values[:, self.cols]
        rows = raw.shape[0]
        idx = latest_rows(~np.isnan(raw))
        seen = idx >= 0
        safe = np.maximum(idx, 0)
        cols = np.arange(raw.shape[1])
        held = np.where(seen, raw[safe, cols], self.last)
        when = np.where(seen, times[safe], self.last_t)
        held[times[:, None] - when > self.max_age] = np.nan
        if rows:
            self.last = np.where(seen[-1], raw[safe[-1], cols], self.last)
            self.last_t = np.where(seen[-1], times[safe[-1]], self.last_t)
        return raw, held

    def state_arrays(self) -> list[np.ndarray[Any, Any]]:
        return [self.last, self.last_t]


@dataclass(frozen=True, slots=True)
class Edges:
    """Which real signal each residual column's findings are about: residual `virt[e]` reports
    on column `owner[e]`, its evidence multiplied by `sign[e]` (the second sensor of a pair sees
    the pair's difference the other way round) and described by `context[e]`.

    Edges may compete (`contest[e]` >= 0: the edges of one contest), each with a `judge`
    residual: of the onsets of one row, only the one whose judge is furthest off is reported
    (the judge's own onset size, when the judge is the edge's residual; else how far the judge's
    local level is from its long baseline), and none while another owner of the contest is
    active. Of two forecasts that part, the one whose own error moved; of three or more sensors,
    the one that left the others (a fault of one moves the others' residuals too: by half of
    it, for three; the faulty sensor's residual moves most and usually fires first).
    """

    virt: Index
    owner: Index
    sign: F64
    context: tuple[str, ...]
    judge: Index
    contest: Index

    @staticmethod
    def build(items: Sequence[Edge]) -> Edges:
        return Edges(
            virt=np.asarray([i.virt for i in items], dtype=np.intp),
            owner=np.asarray([i.owner for i in items], dtype=np.intp),
            sign=np.asarray([i.sign for i in items], dtype=np.float64),
            context=tuple(i.context for i in items),
            judge=np.asarray([i.judge for i in items], dtype=np.intp),
            contest=np.asarray([i.contest for i in items], dtype=np.intp),
        )


@dataclass(frozen=True, slots=True)
class Edge:
    """One edge of `Edges`, for building them."""

    virt: int
    owner: int
    sign: float
    context: str
    judge: int = -1
    contest: int = -1


class ResidualDrift(ScratchState):
    """A slow departure of a residual from its long baseline: a two-sided CUSUM on the winsorised
    residual standardised by its measured variance inflation (`base.Vif`, at the CUSUM's time
    scale), as the local-level CUSUM of `cusum.py` is.

    On a real signal the long baseline lags the day and such a statistic would fire on the
    wander (which is why the classic long-baseline CUSUMs run only where the residual is white);
    a residual of redundant sensors or of a forecast has no day to follow, but its sensors'
    noise or the forecasting model's error is autocorrelated, so a CUSUM calibrated for white
    noise would fire on that instead. Standardised by √VIF it keeps its calibration at a cost in
    sensitivity, and finds what the local-level CUSUM cannot: a drift, which the local level
    follows. It fires only once its VIF is calibrated, re-centres the baseline as the level-shift
    detector does (and restarts where that one did), and clears when the local level is back
    within `return_fraction` of the largest distance from the level before the drift.
    """

    name: ClassVar[str] = "drift"
    kind: ClassVar[FindingKind] = FindingKind.LEVEL_SHIFT
    evidence_unit: ClassVar[str] = "{unit}"
    _scratch = ("_u", "_w", "_big", "_ok", "_bound", "_free")
    K: ClassVar[float] = 0.25  # allowance (sigmas) and threshold: the classic pair for 0.5σ shifts
    H: ClassVar[float] = 25.0

    def __init__(self, cols: Columns, config: DetectConfig) -> None:
        self.config = config
        self.n = n = cols.n
        self._cusum = Cusum([[self.K], [self.K]], [[self.H], [self.H]], n)
        self._vif = Vif(
            [time_scale(self.K, self.H)],
            n,
            memory=config.vif_memory,
            min_memory=config.vif_min_memory,
            mature=config.vif_mature,
            cap=16.0,
        )
        self._root: F32 = np.ones(n, dtype=np.float32)
        self._on: F32 = np.zeros(n, dtype=np.float32)  # 1 once the VIF is calibrated
        self._act = ActiveSet(n)
        self._ref: F64 = np.zeros(n, dtype=np.float64)
        self._peak: F32 = np.zeros(n, dtype=np.float32)
        self._blocked: Bools | None = None
        self._alloc_scratch()

    def quiet_while(self, active: Bools) -> None:
        """Watch no column while `active` (another detector's live mask) holds it: a level shift
        that one has established is not a drift, and what its re-centring leaves over is its
        to follow (a drift finding here would take the half-moved level as its reference)."""
        self._blocked = active

    def _alloc_scratch(self) -> None:
        self._free: F32 = np.empty(self.n, dtype=np.float32)
        self._u: F32 = np.empty((1, self.n), dtype=np.float32)
        self._w: F32 = np.empty((1, self.n), dtype=np.float32)
        self._big: F32 = np.empty((1, self.n), dtype=np.float32)
        self._ok: Bools = np.empty((1, self.n), dtype=np.bool_)
        self._bound: F32 = np.empty((1, self.n), dtype=np.float32)

    @property
    def active(self) -> Bools:
        return self._act.mask

    def update(self, t: float, x: F64, ctx: BaselineView) -> Hits | None:
        del t, x
        vif, cs = self._vif, self._cusum
        np.subtract(ctx.zc, vif.s[0], out=vif.delta[0])
        vif.smooth(ctx.pw)
        if vif.due:
            # Learn where the CUSUM is quiet (or the estimate still calibrating); standardise by
            # an upper bound of the VIF, one standard error above the estimate.
            freeze = np.float32(self.config.vif_freeze * self.H)
            np.less(cs.largest(self._big), freeze, out=self._ok)
            mature = vif.mature
            np.logical_or(self._ok, ~mature, out=self._ok)
            vif.learn(self._ok)
            bound = vif.white(1.0, out=self._bound)
            np.multiply(bound[0], vif.v[0], out=self._root)
            np.maximum(self._root, np.float32(1.0), out=self._root)
            np.sqrt(self._root, out=self._root)
            np.copyto(self._on, mature[0])
        moved = ctx.moved
        if moved.shape[0]:  # a level shift another detector established: not a drift
            cs.reset(moved)
        np.divide(ctx.zc, self._root, out=self._u[0])
        np.multiply(ctx.pw, self._on, out=self._w[0])
        if self._blocked is not None:
            np.logical_not(self._blocked, out=self._free, casting="unsafe")
            np.multiply(self._w[0], self._free, out=self._w[0])
        fired = cs.step(self._u, self._w)
        if not fired and not len(self._act):
            return None
        return self._events(ctx, fired)

    def _events(self, ctx: BaselineView, fired: bool) -> Hits | None:
        cfg, cs = self.config, self._cusum
        onsets: Index = EMPTY_INDEX
        cols: Index = EMPTY_INDEX
        score = observed = baseline = sigma = np.empty(0)
        if fired:
            cols = np.flatnonzero(cs.fired)
            side, _, ratio, runs = cs.best(cols)
            sgn = 1.0 - 2.0 * side
            mean_u = self.K + cs.S[side, 0, cols].astype(np.float64) / np.maximum(runs, 1.0)
            sd = ctx.std[cols].astype(np.float64)
            step = sgn * mean_u * sd * self._root[cols].astype(np.float64)
            cs.reset(cols)
            self._vif.reset(cols)
            # Re-centre on the new level, as the level-shift detector does, and keep the level
            # before the drift as the reference the finding is judged against.
            ctx.shift_mean(cols, cfg.recentre * step)
            new = ~self._act.mask[cols]
            onsets = cols[new]
            if onsets.shape[0]:
                mu = ctx.mean[onsets]
                self._ref[onsets] = mu
                self._peak[onsets] = np.abs(step[new])
                score, observed, baseline, sigma = ratio[new], mu + step[new], mu, sd[new]
                self._act.add(onsets)
        recovered: Index = EMPTY_INDEX
        if len(self._act):
            idx = np.setdiff1d(self._act.idx, cols, assume_unique=True) if fired else self._act.idx
            dist = np.abs(ctx.local_mean[idx] - self._ref[idx]).astype(np.float32)
            peak = np.maximum(self._peak[idx], dist)
            self._peak[idx] = peak
            recovered = idx[dist <= np.float32(cfg.return_fraction) * peak]
            if recovered.shape[0]:
                self._act.remove(recovered)
                # Back: the level before the drift is the best estimate of normal again (else
                # the re-centred mean would make the return look like a drift of its own).
                ctx.shift_mean(recovered, self._ref[recovered] - ctx.mean[recovered])
        if onsets.shape[0] or recovered.shape[0]:
            return Hits(onsets, score, observed, baseline, sigma, recovered)
        return None


# The single-signal detectors that run over residuals, whether their evidence is signed (a
# level is: a pair's second sensor sees it negated; a spread is not) and how a finding's context
# names what they saw. The level-shift detector comes first, the drift detector second (it stays
# quiet where the first is active).
Inner = tuple[type[Detector], bool, str]
INNER: tuple[Inner, ...] = (
    (LevelShiftDetector, True, ""),
    (ResidualDrift, True, ""),
    (VarianceDetector, False, "spread of "),
)


# (score, observed, baseline, sigma, context) of one onset, as the bank reports it.
_Evidence = tuple[float, float, float, float, str]


class Residuals:
    """The baseline, level-shift and variance detectors over residual columns, mapped back to
    the real signals they are about (`edges`); a real signal is active while any of its residual
    columns is, and its onset carries the evidence of the residual that set it off."""

    def __init__(
        self,
        n: int,
        period: F64,
        edges: Edges,
        config: DetectConfig,
        inner: tuple[Inner, ...] = INNER,
    ) -> None:
        m = int(period.shape[0])
        self.n = n
        self.edges = edges
        cols = Columns(period=period, limit_lo=np.full(m, -np.inf), limit_hi=np.full(m, np.inf))
        self.baseline = Baseline(m, config)
        self.inner = inner
        self.detectors: list[Detector] = [cls(cols, config) for cls, _, _ in inner]
        level, drift = self.detectors[0], self.detectors[1]
        assert isinstance(drift, ResidualDrift)
        drift.quiet_while(level.active)
        self.owners: Index = np.unique(edges.owner)
        self._local: Index = np.searchsorted(self.owners, edges.owner)
        self.real_active: Bools = np.zeros(self.owners.shape[0], dtype=np.bool_)
        n_contests = int(edges.contest.max()) + 1 if edges.contest.shape[0] else 0
        self._contests = [np.flatnonzero(edges.contest == c) for c in range(n_contests)]
        self._away: F64 = np.zeros(m)  # per residual, on rows with hits (see `_evidence`)

    def run(self, times: F64, virtual: F64) -> list[tuple[int, CrossHits]]:
        """Feed the residual rows (NaN = no residual sample); rows without any are skipped."""
        out: list[tuple[int, CrossHits]] = []
        base = self.baseline
        prepare, commit = base.prepare, base.commit
        updates = [det.update for det in self.detectors]
        virtual = np.ascontiguousarray(virtual)
        rows = np.flatnonzero(~np.isnan(virtual).all(axis=1)).tolist()
        tl: list[float] = times.tolist()
        for row in rows:
            t, x = tl[row], virtual[row]
            prepare(t, x)
            hits: list[tuple[int, Hits]] = []
            for j, update in enumerate(updates):
                h = update(t, x, base)
                if h is not None:
                    hits.append((j, h))
            if hits:  # before the row is learned and any onset re-centres its baseline
                self._away = np.abs(base.local_mean - base.mean) * base.inv_std
            commit()
            if hits:
                mapped = self._map(hits)
                if mapped is not None:
                    out.append((row, mapped))
        return out

    def _map(self, hits: list[tuple[int, Hits]]) -> CrossHits | None:
        e = self.edges
        virt_active = np.zeros(self.baseline.n, dtype=np.bool_)
        for det in self.detectors:
            virt_active |= det.active
        now = np.zeros(self.owners.shape[0], dtype=np.bool_)
        np.logical_or.at(now, self._local, virt_active[e.virt])
        gone = self.real_active & ~now
        # Candidates: signals that became active, each with its strongest onset this row.
        found: dict[int, tuple[float, int, _Evidence]] = {}
        for local in np.flatnonzero(now & ~self.real_active).tolist():
            best = self._evidence(local, hits)
            if best is not None:
                found[local] = best
        # Competing edges (see `Edges`): one winner per contest and row, none while another
        # owner of the contest is active.
        winners: dict[int, tuple[float, int]] = {}
        for local, (rank, edge, _) in found.items():
            contest = int(e.contest[edge])
            if contest >= 0 and (rank, -local) > winners.get(contest, (-np.inf, 0)):
                winners[contest] = (rank, -local)
        onsets: list[int] = []
        ev: list[_Evidence] = []
        for local in sorted(found):
            _, edge, evidence = found[local]
            contest = int(e.contest[edge])
            if contest >= 0:
                rivals = self._local[self._contests[contest]]
                if winners[contest][1] != -local or np.any(self.real_active[rivals]):
                    continue
            onsets.append(int(self.owners[local]))
            ev.append(evidence)
            self.real_active[local] = True
        # A signal whose residuals are active but that took no onset (a contest's loser) stays
        # inactive, and may still become active through another residual.
        self.real_active &= now
        recovered = self.owners[gone]
        if not onsets and not recovered.shape[0]:
            return None
        return CrossHits(
            onsets=np.asarray(onsets, dtype=np.intp) if onsets else EMPTY_INDEX,
            score=np.asarray([x[0] for x in ev], dtype=np.float64),
            observed=np.asarray([x[1] for x in ev], dtype=np.float64),
            baseline=np.asarray([x[2] for x in ev], dtype=np.float64),
            sigma=np.asarray([x[3] for x in ev], dtype=np.float64),
            recovered=np.sort(recovered),
            context=tuple(x[4] for x in ev),
        )

    def _evidence(
        self, local: int, hits: list[tuple[int, Hits]]
    ) -> tuple[float, int, _Evidence] | None:
        """The strongest onset among the residuals of real signal `local` on this row, with its
        edge and its rank in a contest: an edge without a contest outranks any with one; within
        a contest, by how far its judge is off (the onset's own size in sigmas when the judge is
        the residual itself, else how far the judge's local level is from its long baseline)."""
        e = self.edges
        best: tuple[float, int, _Evidence] | None = None
        for edge in np.flatnonzero(self._local == local).tolist():
            v = int(e.virt[edge])
            judge = int(e.judge[edge])
            for j, h in hits:
                where = np.flatnonzero(h.onsets == v)
                if not where.shape[0]:
                    continue
                i = int(where[0])
                _, signed, prefix = self.inner[j]
                s = float(e.sign[edge]) if signed else 1.0
                sd = float(h.sigma[i])
                if e.contest[edge] < 0:
                    rank = np.inf
                elif judge == v:
                    rank = abs(float(h.observed[i]) - float(h.baseline[i])) / max(sd, 1e-300)
                else:
                    rank = float(self._away[judge])
                evidence = (
                    float(h.score[i]),
                    s * float(h.observed[i]),
                    s * float(h.baseline[i]),
                    sd,
                    prefix + e.context[edge],
                )
                if best is None or (rank, evidence[0]) > (best[0], best[2][0]):
                    best = (rank, edge, evidence)
        return best

    @property
    def active(self) -> Bools:
        out = np.zeros(self.n, dtype=np.bool_)
        out[self.owners] = self.real_active
        return out

    def nbytes(self) -> int:
        seen: dict[int, int] = {}
        for owner in [self.baseline, *self.detectors]:
            for arr in owner.state_arrays():  # type: ignore[attr-defined]
                seen[id(arr)] = arr.nbytes
        return sum(seen.values()) + self.real_active.nbytes


def lead_of(table: SignalTable, a: int, b: int) -> tuple[int, int]:
    """Of two columns compared sample by sample, the one whose samples set the pace (the slower;
    the first on a tie) and the other, whose latest fresh value it is compared with."""
    return (b, a) if table.period[b] > table.period[a] else (a, b)


def max_age(table: SignalTable, cols: Index, config: DetectConfig) -> F64:
    """How long a sample of each column stays usable: what the stale detector allows."""
    out: F64 = np.asarray(table.period, dtype=np.float64)[cols] * config.stale_factor
    return out
