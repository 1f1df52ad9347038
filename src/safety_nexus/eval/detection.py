"""Match findings to the simulator's ground-truth labels: was each fault seen, and how soon?"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from safety_nexus.core.types import Finding


class LabelLike(Protocol):
    """The fields of a ground-truth label this module reads (`safety_nexus.sim.Label`)."""

    @property
    def signal(self) -> str: ...
    @property
    def start(self) -> float: ...
    @property
    def end(self) -> float | None: ...
    @property
    def effect(self) -> str: ...
    @property
    def root_cause(self) -> str: ...
    @property
    def scenario(self) -> str: ...


@dataclass(frozen=True, slots=True)
class LabelResult:
    signal: str
    asset: str
    effect: str
    start: float
    detected: bool
    delay: float | None  # seconds from the label's start to the first finding on its signal
    kind: str | None  # kind of that first finding


@dataclass(frozen=True, slots=True)
class AssetResult:
    asset: str
    labelled: int
    detected: int
    first_delay: float | None
    median_delay: float | None


def match(
    labels: Iterable[LabelLike], findings: Sequence[Finding], *, until: float
) -> list[LabelResult]:
    """First finding on the label's signal between its start and its end (or `until`)."""
    by_signal: dict[str, list[Finding]] = defaultdict(list)
    for f in findings:
        by_signal[f.signal].append(f)
    for fs in by_signal.values():
        fs.sort(key=lambda f: f.time)
    out: list[LabelResult] = []
    for label in labels:
        end = label.end if label.end is not None else until
        hit = next(
            (f for f in by_signal.get(label.signal, ()) if label.start <= f.time <= end), None
        )
        out.append(
            LabelResult(
                signal=label.signal,
                asset=label.signal.split(".", 1)[0],
                effect=label.effect,
                start=label.start,
                detected=hit is not None,
                delay=None if hit is None else hit.time - label.start,
                kind=None if hit is None else hit.kind.value,
            )
        )
    return out


def by_asset(results: Iterable[LabelResult]) -> list[AssetResult]:
    groups: dict[str, list[LabelResult]] = defaultdict(list)
    for r in results:
        groups[r.asset].append(r)
    out = []
    for asset, rs in groups.items():
        delays = [r.delay for r in rs if r.delay is not None]
        out.append(
            AssetResult(
                asset=asset,
                labelled=len(rs),
                detected=sum(r.detected for r in rs),
                first_delay=min(delays) if delays else None,
                median_delay=statistics.median(delays) if delays else None,
            )
        )
    out.sort(key=lambda a: (a.first_delay is None, a.first_delay or 0.0, a.asset))
    return out
