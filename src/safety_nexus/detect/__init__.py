"""Detection: a vectorised bank of streaming detectors, state held in arrays across all signals.

`DetectorBank` runs every detector of `REGISTRY` over frames of telemetry and returns findings
(onsets) and recoveries. One module per detector family; `base` holds the protocol they share
and `baseline` the robust baseline they all standardise with.
"""

from __future__ import annotations

from safety_nexus.detect.bank import REGISTRY, BankResult, DetectorBank
from safety_nexus.detect.base import BaselineView, Columns, Detector, Hits
from safety_nexus.detect.baseline import Baseline
from safety_nexus.detect.config import DetectConfig
from safety_nexus.detect.cusum import LevelShiftDetector
from safety_nexus.detect.limit import LimitDetector
from safety_nexus.detect.rate import RateDetector
from safety_nexus.detect.spike import SpikeDetector
from safety_nexus.detect.stale import FlatlineDetector, StaleDetector
from safety_nexus.detect.variance import VarianceDetector

__all__ = [
    "REGISTRY",
    "BankResult",
    "Baseline",
    "BaselineView",
    "Columns",
    "DetectConfig",
    "Detector",
    "DetectorBank",
    "FlatlineDetector",
    "Hits",
    "LevelShiftDetector",
    "LimitDetector",
    "RateDetector",
    "SpikeDetector",
    "StaleDetector",
    "VarianceDetector",
]
