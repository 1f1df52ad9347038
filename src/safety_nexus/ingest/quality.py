"""Data quality at the door: values a sensor cannot physically report, and sender clocks that
run ahead of ours.

    out of physical range   a value outside the signal's `physical` range (site file) is bad
                            data, not a process excursion: the sample is kept away from the
                            detectors (it would fire limit and spike findings that say nothing
                            about the plant) and an `out_of_range` finding names the signal and
                            the value. The rest of the batch is accepted.
    clock skew              a sample dated more than `max_ahead` seconds after our clock comes
                            from a sender whose clock runs fast. It cannot be scored honestly
                            (it would hold the reorder buffer's watermark in the future and
                            make every other source's samples late), so the batch is refused
                            (400 `clock_skew`, naming the sample and the skew) and a
                            `clock_skew` finding names the source.

Staleness (a signal that stops reporting) is the detector bank's stale detector. Findings are
rate-limited per signal or source (`every` seconds), so a broken sensor raises one finding, not
one per sample. Vectorised: one comparison over the batch's arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from safety_nexus.core.errors import IngestError
from safety_nexus.core.types import Finding, FindingKind, SignalTable
from safety_nexus.ingest.json_batch import ParsedBatch
from safety_nexus.ingest.throttle import Throttle


@dataclass(frozen=True, slots=True)
class Screened:
    batch: ParsedBatch  # what may go on to the detectors
    findings: list[Finding]
    removed: int  # samples held back as out of physical range


class QualityScreen:
    """Screens batches against the signals' physical ranges and the receive clock."""

    def __init__(
        self, table: SignalTable, *, max_ahead: float | None = 5.0, every: float = 300.0
    ) -> None:
        self._table = table
        self._lo = table.physical_lo
        self._hi = table.physical_hi
        self._any_range = bool(np.isfinite(self._lo).any() or np.isfinite(self._hi).any())
        self.max_ahead = max_ahead  # None: the clock is simulated, skew means nothing
        self._throttle = Throttle(every, max_keys=100_000)

    def screen(self, batch: ParsedBatch, now: float) -> Screened:
        findings: list[Finding] = []
        if self.max_ahead is not None and len(batch):
            ahead = batch.times - now
            worst = int(np.argmax(ahead))
            if ahead[worst] > self.max_ahead:
                self._skew(batch, worst, float(ahead[worst]), now, findings)
                raise ClockSkewError(
                    f"samples[{worst}].time is {ahead[worst]:.1f} s ahead of the receiver's"
                    f" clock (the limit is {self.max_ahead:g} s): the sender's clock runs fast",
                    findings,
                )
        if not self._any_range or not len(batch):
            return Screened(batch, findings, 0)
        cols, values = batch.columns, batch.values
        bad = (values < self._lo[cols]) | (values > self._hi[cols])
        if not bad.any():
            return Screened(batch, findings, 0)
        for i in np.flatnonzero(bad):
            self._out_of_range(batch, int(i), now, findings)
        keep = ~bad
        kept = ParsedBatch(batch.source, cols[keep], batch.times[keep], values[keep])
        return Screened(kept, findings, int(bad.sum()))

    def _out_of_range(self, batch: ParsedBatch, i: int, now: float, out: list[Finding]) -> None:
        col = int(batch.columns[i])
        sid = self._table.ids[col]
        if not self._throttle.due("range:" + sid, now):
            return
        lo, hi = float(self._lo[col]), float(self._hi[col])
        unit = self._table.units[col]
        value = float(batch.values[i])
        out.append(
            Finding(
                time=float(batch.times[i]),
                signal=sid,
                asset=self._table.assets[col],
                kind=FindingKind.OUT_OF_RANGE,
                score=1.0,
                observed=value,
                baseline=min(max(value, lo), hi),
                sigma=0.0,
                unit=unit,
                detector="ingest",
                context=f"{value:.6g} {unit} is outside what the sensor can report"
                f" [{lo:.6g}, {hi:.6g}]; the sample is kept from the detectors",
            )
        )

    def _skew(
        self, batch: ParsedBatch, i: int, ahead: float, now: float, out: list[Finding]
    ) -> None:
        if not self._throttle.due("skew:" + batch.source, now):
            return
        col = int(batch.columns[i])
        out.append(
            Finding(
                time=now,
                signal=f"{batch.source}/clock",
                asset=batch.source,
                kind=FindingKind.CLOCK_SKEW,
                score=1.0,
                observed=ahead,
                baseline=0.0,
                sigma=0.0,
                unit="s",
                detector="ingest",
                context=f"source '{batch.source}' dates samples {ahead:.1f} s ahead of the"
                f" receiver's clock (e.g. {self._table.ids[col]}); its batches are refused",
            )
        )


class ClockSkewError(IngestError):
    """A batch refused for clock skew, carrying the finding to report."""

    def __init__(self, message: str, findings: list[Finding]) -> None:
        super().__init__(message, "clock_skew", 400)
        self.findings = findings
