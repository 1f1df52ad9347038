"""The configuration-integrity stage: what controllers report in effect against what is authorised.

A setpoint or directive declared with a `signal` has a readback: the value the controller says it
is holding (a directive: the index of its state). Every sample of a readback is compared with the
authorised value of `control.ConfigurationRegistry`; one that differs by more than the setpoint's
tolerance (a directive: any other index) is a configuration change nobody authorised. The stage
then raises one `unauthorised_change` finding naming the setpoint's asset (with the readback as
its signal, so the alarm takes the signal's priority and subsystem), journals the change as a
`config.observed_change` event, and stays quiet while the readback keeps that value: once per
change, not once per sample. A readback that moves again to another wrong value is another
change (another finding and event); one that returns to the authorised value is a `Recovery`,
which clears the alarm as a detector's recovery does. An authorised change followed by the
controller taking it up raises nothing (see the registry's grace for the old value).

A readback is judged against its authorised value, not statistically, so the detector bank's
findings on it are dropped here, except `stale` (a controller that stops reporting its setpoint
is worth knowing) and the ingestion kinds: a constant readback keeps the variance test's
downward side firing for ever, and an authorised change would read as a level shift.

It runs after `Detect` (which replaces the batch's findings) and before the findings are
recorded, alarmed and published. The comparison is NumPy over the frame's readback columns; only
the columns whose readback changes while, or by, being out of step take a short per-column path,
so a frame costs a few array operations whatever its length unless something changes in it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

import numpy as np

from safety_nexus.control.config_integrity import ConfigurationRegistry, Targets
from safety_nexus.core.types import F64, INGEST_KINDS, Finding, FindingKind, Recovery
from safety_nexus.pipeline.stages import Batch
from safety_nexus.site.schema import Directive, Setpoint, Site

DETECTOR = "config"  # the `detector` of the findings this stage raises
_KEEP = INGEST_KINDS | {FindingKind.STALE}  # the bank's findings on a readback that stay

Bools = np.ndarray[tuple[int, ...], np.dtype[np.bool_]]
_Judged = TypeVar("_Judged", Finding, Recovery)


def readback_signals(site: Site) -> frozenset[str]:
    """The signals through which a site's controllers report their setpoints and directives."""
    specs: list[Setpoint | Directive] = [*site.setpoints, *site.directives]
    return frozenset(spec.signal for spec in specs if spec.signal is not None)


def without_statistics(items: Iterable[_Judged], readbacks: frozenset[str]) -> list[_Judged]:
    """The detector bank's findings (or recoveries) less those on readbacks (see the module
    doc): what the pipeline keeps, for tools that run the bank on its own (benchmarks)."""
    return [x for x in items if x.kind in _KEEP or x.signal not in readbacks]


class WatchConfiguration:
    """Readbacks against authorised values; see the module doc."""

    name = "config"

    def __init__(self, registry: ConfigurationRegistry) -> None:
        self._registry = registry
        self._watch = registry.watch_list()
        self._cols = self._watch.cols
        self._readbacks = frozenset(self._watch.signals)
        n = len(self._watch)
        self._off = np.zeros(n, dtype=np.bool_)  # the readback's last sample was not authorised
        self._last = np.full(n, np.nan)  # each readback's last sample
        self._targets: Targets = registry.targets()

    @property
    def out_of_step(self) -> list[str]:
        """Ids of the setpoints and directives whose readback differs from the authorised."""
        return [self._watch.ids[j] for j in np.flatnonzero(self._off).tolist()]

    def run(self, batch: Batch) -> Batch:
        frame = batch.frame
        if frame.n_rows == 0 or not self._cols.size:
            return batch
        self._drop_statistics(batch)
        x = frame.values[:, self._cols]
        present = ~np.isnan(x)
        if not present.any():
            return batch
        if self._registry.version != self._targets.version:
            self._targets = self._registry.targets()
        t = self._targets
        times = frame.times
        match = np.abs(x - t.authorised) <= t.tolerance  # NaN compares False
        bad = present & ~match
        pending = np.isfinite(t.until)
        if pending.any():
            # The value before an authorised change is still fine until the grace ends or the
            # new value has been reported (from that row on, the old one is a change again).
            old = (np.abs(x - t.previous) <= t.tolerance) & (times[:, None] <= t.until)
            bad &= ~(old & ~np.logical_or.accumulate(match, axis=0))
            taken_up = np.flatnonzero(pending & match.any(axis=0))
            if taken_up.size:
                self._registry.confirm(taken_up.tolist(), t.version)
        if bad.any() or self._off.any():
            # An out-of-step readback that keeps reporting exactly its last (wrong) value
            # changes nothing: only the others take the per-column path.
            steady = self._off & (~present | ((x == self._last) & bad)).all(axis=0)
            for j in np.flatnonzero((bad.any(axis=0) | self._off) & ~steady).tolist():
                self._column(batch, j, times, x[:, j], present[:, j], bad[:, j], t)
        self._remember(x, present, times)
        return batch

    def _drop_statistics(self, batch: Batch) -> None:
        if batch.findings:
            batch.findings = without_statistics(batch.findings, self._readbacks)
        if batch.recoveries:
            batch.recoveries = without_statistics(batch.recoveries, self._readbacks)

    def _column(
        self, batch: Batch, j: int, times: F64, x: F64, present: Bools, bad: Bools, t: Targets
    ) -> None:
        """The transitions of one readback within the frame, in time order."""
        rows = np.flatnonzero(present)
        if not rows.size:
            return
        xs, bs = x[rows], bad[rows]
        was_bad = np.concatenate(([self._off[j]], bs[:-1]))
        before = np.concatenate(([self._last[j]], xs[:-1]))
        moved = np.abs(xs - before) > t.tolerance[j]  # NaN (no earlier sample) compares False
        onsets = bs & (~was_bad | moved)
        returns = ~bs & was_bad
        still_off = bool(bs[-1])
        watch, authorised = self._watch, float(t.authorised[j])
        for r in np.flatnonzero(onsets | returns).tolist():
            at, value = float(times[rows[r]]), float(xs[r])
            prior = float(before[r]) if np.isfinite(before[r]) else authorised
            self._registry.observed(j, at, prior, value, restored=bool(returns[r]))
            if returns[r]:
                # The alarm layer applies a batch's findings before its recoveries: a return
                # followed by another change within the frame must leave the alarm active.
                if not still_off:
                    batch.recoveries.append(
                        Recovery(
                            at, watch.signals[j], watch.assets[j], FindingKind.UNAUTHORISED_CHANGE
                        )
                    )
                continue
            tol = float(t.tolerance[j])
            batch.findings.append(
                Finding(
                    time=at,
                    signal=watch.signals[j],
                    asset=watch.assets[j],
                    kind=FindingKind.UNAUTHORISED_CHANGE,
                    score=max(1.0, abs(value - authorised) / tol) if tol > 0 else 1.0,
                    observed=value,
                    baseline=authorised,
                    sigma=tol,
                    unit=watch.units[j],
                    detector=DETECTOR,
                    context=(
                        f"{watch.kinds[j].value} {watch.ids[j]} reads {watch.show(j, value)},"
                        f" authorised {watch.show(j, authorised)}"
                    ),
                )
            )
        self._off[j] = still_off

    def _remember(self, x: F64, present: Bools, times: F64) -> None:
        """Each readback's last sample of the frame: for the next frame's comparison, and for
        the registry (the API shows what is reported)."""
        seen = present.any(axis=0)
        last_row = x.shape[0] - 1 - np.argmax(present[::-1], axis=0)
        slots = np.flatnonzero(seen)
        values = x[last_row[slots], slots]
        self._last[slots] = values
        self._registry.record_reports(slots, values, times[last_row[slots]])
