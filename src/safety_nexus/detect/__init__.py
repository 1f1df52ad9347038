"""Detection: a vectorised bank of streaming detectors, state held in arrays across all signals.

`DetectorBank` runs every detector of `REGISTRY` over frames of telemetry and returns findings
(onsets) and recoveries; the cross-signal families of `CROSS_REGISTRY` compare the signals a
site declares as forecasts of others or as redundant sensors of one quantity (`cross`). One
module per detector family; `base` holds the protocol they share and `baseline` the robust
baseline they all standardise with.
"""

from __future__ import annotations

from safety_nexus.detect.bank import CROSS_REGISTRY, REGISTRY, BankResult, DetectorBank
from safety_nexus.detect.base import BaselineView, Columns, Detector, Hits
from safety_nexus.detect.baseline import Baseline
from safety_nexus.detect.config import DetectConfig
from safety_nexus.detect.cross import CrossDetector
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

__all__ = [
    "CROSS_REGISTRY",
    "REGISTRY",
    "BankResult",
    "Baseline",
    "BaselineView",
    "Columns",
    "CrossDetector",
    "DetectConfig",
    "Detector",
    "DetectorBank",
    "FlatlineDetector",
    "ForecastDetector",
    "Hits",
    "LevelShiftDetector",
    "LimitDetector",
    "OscillationDetector",
    "QuantisationDetector",
    "RateDetector",
    "RedundancyDetector",
    "SeasonalDetector",
    "SpikeDetector",
    "StaleDetector",
    "TimeToThresholdDetector",
    "VarianceDetector",
]
