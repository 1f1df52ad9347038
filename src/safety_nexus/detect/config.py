"""Detector bank configuration: every tunable of every detector, with its default.

Sample counts are in samples *of that signal* (signals have different periods); times are in
multiples of the signal's declared period.

The thresholds (`cusum_h`, `local_h`, `variance_h_*`) are calibrated for independent residuals,
where each one-sided statistic has an in-control run length of millions of samples. Real
telemetry is not independent: sensor noise has a time constant, process dynamics and daily
cycles carry the level around, and a CUSUM fed with such residuals fires every few minutes. So
every CUSUM also measures, per signal, how much more its input varies at the time scale it
integrates over than independent samples would (the variance inflation factor, VIF; see
`base.Vif`), and the `vif_*` settings say what it does with that: the classic long-baseline
CUSUMs run only where the VIF says the residual is white, the local-level CUSUM and the upward
variance test are standardised by it. On independent noise the classic statistics behave as
before.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class DetectConfig(BaseModel):
    """Strict: unknown keys are rejected, values are range-checked, defaults live here."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # -- baseline -------------------------------------------------------------------------
    warmup: int = Field(100, ge=2, description="samples a signal must have before any finding")
    halflife: float = Field(
        5000.0, gt=1.0, description="baseline memory (samples); long, so small shifts stand out"
    )
    local_halflife: float = Field(
        15.0,
        gt=0.0,
        description=(
            "memory of the local level (samples): short, so that a level that wanders by itself"
            " (a temperature, a load) is followed and a step still stands out against it"
        ),
    )
    clip: float = Field(4.0, gt=0.0, description="winsorise baseline updates at this many sigmas")
    min_sigma: float = Field(1e-9, gt=0.0, description="floor of every learned scale (unit)")
    # -- level shift (CUSUM) ----------------------------------------------------------------
    # Several allowances run side by side: a small k catches 0.1σ shifts, a large k catches big
    # shifts with a short delay (k ≈ δ/2 is optimal for a shift δ). Each one-sided statistic
    # has an in-control run length of about 3·10^6 samples (Monte Carlo with the winsorised z,
    # 10^8 samples per threshold; Siegmund's approximation agrees within 30%).
    cusum_k: tuple[float, ...] = (0.05, 0.25, 1.0)
    cusum_h: tuple[float, ...] = (90.0, 25.0, 7.5)
    # These run against the long baseline, and only on signals whose residual is white at their
    # time scales (see the vif_* settings and cusum.py): on a signal that wanders by itself they
    # would fire on the wander. One more pair runs against the local level on every signal,
    # standardised by its VIF: it finds steps on wandering signals too. Its threshold is the
    # classic one for k = 1.
    local_k: float = Field(1.0, ge=0.0, description="allowance of the local-level CUSUM (sigmas)")
    local_h: float = Field(7.5, gt=0.0, description="threshold of the local-level CUSUM")
    # -- level shifts at the statistical limit (see detect/design.py) ----------------------
    # The defaults above suit real telemetry, whose residual is rarely white. A signal whose
    # residual is known to be independent noise (verified offline, or a benchmark) can get the
    # optimal CUSUM's sensitivity: `design.level_shift_config` sets these for a shift size (or
    # a range of them) and a target false-alarm run length.
    cusum_sides: Literal["both", "up", "down"] = Field(
        "both",
        description=(
            "directions the long-baseline CUSUMs watch: a known direction ('up' for a response"
            " time that can only grow) halves their false alarms, i.e. shortens the delay at"
            " the same false-alarm rate"
        ),
    )
    local_cusum: bool = Field(
        True,
        description="run the local-level CUSUM pair (steps on signals that wander by themselves)",
    )
    vif_gate: bool = Field(
        True,
        description=(
            "run the long-baseline CUSUMs only where the residual looks white (the VIF test);"
            " false: run them on every warmed-up signal, for residuals known to be independent"
        ),
    )
    # -- calibration on real residuals (variance inflation, see base.Vif and cusum.py) ------
    vif_memory: float = Field(
        50.0,
        gt=1.0,
        description=(
            "a CUSUM integrating over T samples learns its VIF over this many × T samples (at"
            " least `vif_min_memory`): long enough to be precise, short enough to follow the day"
        ),
    )
    vif_min_memory: float = Field(
        400.0, gt=1.0, description="shortest memory of a VIF estimate (samples)"
    )
    vif_max: float = Field(
        4.0,
        gt=1.0,
        description=(
            "the long-baseline CUSUMs of a signal are switched off while any of their inputs is"
            " this many times more variable at its time scale than white noise"
        ),
    )
    vif_min: float = Field(
        2.0,
        gt=1.0,
        description=(
            "a long-baseline VIF estimate precise enough to tell 1 from this value must look"
            " white (within its scatter) for those CUSUMs to run; a less precise one only"
            " counts against a signal above `vif_max`"
        ),
    )
    vif_significance: float = Field(
        2.5,
        gt=0.0,
        description=(
            "a long-baseline VIF estimate counts as white while within this many of its standard"
            " errors (about √(T/n) after n samples at scale T) of 1; a running family goes off"
            " only one standard error further out"
        ),
    )
    vif_mature: float = Field(
        4.0,
        ge=0.0,
        description=(
            "a CUSUM fires only once its VIF has seen this many windows of its time scale (the"
            " long-baseline ones: once each of theirs has): whether a residual is white over half"
            " an hour can only be told after a few half-hours"
        ),
    )
    vif_freeze: float = Field(
        0.5,
        gt=0.0,
        le=1.0,
        description=(
            "a VIF learns only while its CUSUM (for the long-baseline ones: each of those) is"
            " below this fraction of its threshold, so that a shift being accumulated is not"
            " learned as normal variability; not lower, or the estimate is biased low"
        ),
    )
    long_hold: float = Field(
        0.25,
        gt=0.0,
        le=1.0,
        description=(
            "the long-baseline CUSUMs of a signal are not switched on or off while any of them"
            " is above this fraction of its threshold"
        ),
    )
    # -- variance change ------------------------------------------------------------------
    variance_up: float = Field(1.5, gt=1.0, description="std ratio the increase test is tuned to")
    variance_down: float = Field(
        0.5, gt=0.0, lt=1.0, description="std ratio the decrease test is tuned to"
    )
    # z² is skewed, so the upward test needs a higher threshold than the downward one for the
    # same in-control run length: on independent Gaussian noise 40 and 10 give about 5·10^6
    # samples each (simulated). The upward test is set higher still, because on real signals
    # the whitened innovation is heavier-tailed than Gaussian and its spread follows the
    # process's activity (a load, a CPU, a current are busier at some hours): the VIF matches
    # the spread of z² at the test's time scale, not the tail the test fires on. Measured on
    # the demo city's tuning seeds, 40 gives ~150 findings a day, 60 about 10; downward, 10 is
    # already quiet (3 a day).
    variance_h_up: float = Field(60.0, gt=0.0, description="CUSUM threshold, variance increase")
    variance_h_down: float = Field(10.0, gt=0.0, description="CUSUM threshold, variance decrease")
    variance_rho_max: float = Field(
        0.95,
        ge=0.0,
        lt=1.0,
        description=(
            "largest lag-1 autocorrelation the variance detector removes from the local residual"
            " before it squares it (pre-whitening)"
        ),
    )
    variance_clip: float = Field(
        3.0, gt=0.0, description="residuals are winsorised at this many sigmas before squaring"
    )
    # -- spike ----------------------------------------------------------------------------
    spike_sigmas: float = Field(6.0, gt=0.0, description="an isolated sample beyond this spikes")
    spike_hold: float = Field(10.0, ge=0.0, description="periods a spike finding stays active")
    # -- stale / flatline -----------------------------------------------------------------
    stale_factor: float = Field(3.0, gt=1.0, description="stale after this × period without data")
    stale_surprise: float = Field(
        1e-6,
        gt=0.0,
        lt=1.0,
        description=(
            "on a signal that drops samples now and then (learned), a gap is stale only once so"
            " many samples in a row are missing that its drop rate makes this unlikely"
        ),
    )
    flatline_count: int = Field(10, ge=2, description="this many identical samples is a flatline")
    flatline_repeat_max: float = Field(
        0.2,
        gt=0.0,
        lt=1.0,
        description="only signals that repeat their last value less often than this can flatline",
    )
    # -- rate of change -------------------------------------------------------------------
    rate_lambda: float = Field(0.1, gt=0.0, le=1.0, description="EWMA weight of the slope")
    rate_threshold: float = Field(
        5.5, gt=0.0, description="slope beyond this many of its own sigmas is abnormal"
    )
    rate_clip: float = Field(
        2.5, gt=0.0, description="differences are capped at this many sigmas (spikes are not ramps)"
    )
    rate_clear: float = Field(
        0.5, gt=0.0, lt=1.0, description="a rate finding clears below this fraction of threshold"
    )
    # -- limits ---------------------------------------------------------------------------
    limit_hysteresis: float = Field(
        0.5, ge=0.0, description="sigmas back inside a hard limit before the finding clears"
    )
    # -- after a level shift or variance change is established --------------------------
    recentre: float = Field(
        0.75,
        gt=0.0,
        le=1.0,
        description=(
            "fraction of an estimated shift (log std change) the baseline moves at once; below 1"
            " because estimates at detection time are biased upwards for small changes"
        ),
    )
    return_fraction: float = Field(
        0.25,
        gt=0.0,
        lt=1.0,
        description=(
            "a level shift (variance change) clears when the level (log std) is back within this"
            " fraction of its largest distance from the reference"
        ),
    )
    # -- seasonality-aware baseline (seasonal.py) ------------------------------------------
    # Times here are in seconds, not periods: a day is a day whatever a signal's sample period.
    seasonal_every: float = Field(
        60.0, gt=0.0, description="seconds between the seasonal detector's looks at a signal"
    )
    seasonal_days: float = Field(
        7.0, gt=0.0, description="memory of the daily profile (days; a running average before)"
    )
    seasonal_weeks: float = Field(
        4.0, gt=0.0, description="memory of the day-of-week offsets (weeks)"
    )
    seasonal_warmup: float = Field(
        3.0, ge=1.0, description="days a signal must be watched before a seasonal finding"
    )
    seasonal_window: float = Field(
        1800.0,
        gt=0.0,
        description="seconds over which the deviation from the profile is averaged (EWMA)",
    )
    seasonal_threshold: float = Field(
        6.0,
        gt=0.0,
        description="the averaged deviation fires beyond this many of its own typical sizes",
    )
    seasonal_min_sigmas: float = Field(
        3.0,
        ge=0.0,
        description=(
            "... and only beyond this many of the signal's local noise sigmas (a profile that"
            " fits perfectly must not make every wobble abnormal)"
        ),
    )
    seasonal_clear: float = Field(
        0.5, gt=0.0, lt=1.0, description="a seasonal finding clears below this × its threshold"
    )
    # -- stuck / quantisation (quantisation.py) -------------------------------------------
    quant_rate: float = Field(
        0.1,
        gt=0.0,
        lt=1.0,
        description=(
            "rate of toggles (a step straight back to the value before) above the learned rate"
            " that the test is tuned to"
        ),
    )
    quant_factor: float = Field(
        3.0,
        gt=1.0,
        description=(
            "... and to at least this many times the learned rate (a sensor that was always"
            " quantised toggles now and then by itself)"
        ),
    )
    quant_floor: float = Field(
        0.002,
        gt=0.0,
        lt=0.5,
        description="floor of the learned toggle rate (a continuous signal's is 0)",
    )
    quant_h: float = Field(10.0, gt=0.0, description="threshold of the toggle-rate CUSUM")
    quant_clear: float = Field(
        0.25, gt=0.0, lt=1.0, description="a quantisation finding clears below this × threshold"
    )
    # -- time to threshold (threshold.py) -------------------------------------------------
    ttt_every: float = Field(
        5.0, gt=0.0, description="seconds between the trend's looks at a signal"
    )
    ttt_window: float = Field(
        60.0, gt=0.0, description="time constant of the trend's exponential weights, seconds"
    )
    ttt_horizon: float = Field(
        1800.0,
        gt=0.0,
        description="a finding is raised when the limit is forecast within this many seconds",
    )
    ttt_significance: float = Field(
        3.0, gt=0.0, description="the slope must be this many standard errors from 0"
    )
    ttt_z: float = Field(
        2.0, gt=0.0, description="the forecast's interval: slope ± this many standard errors"
    )
    ttt_min_points: float = Field(
        6.0,
        ge=3.0,
        description=(
            "looks (weighted) a trend needs before it forecasts; at most 1/(1 − e^(−every/window))"
            " are ever reached"
        ),
    )
    ttt_rate_sigmas: float = Field(
        5.0,
        gt=0.0,
        description=(
            "... and beyond this many of the signal's typical slopes (its own wander: a slope"
            " many standard errors from 0 can still be ordinary for an autocorrelated signal)"
        ),
    )
    ttt_memory: float = Field(
        21600.0, gt=0.0, description="memory of the typical slope, seconds (after a running start)"
    )
    ttt_calibration: float = Field(
        900.0, ge=0.0, description="seconds of looks at a signal before its first forecast"
    )
    ttt_clear: float = Field(
        1.5, gt=1.0, description="a forecast clears when the crossing is beyond this × horizon"
    )
    # -- control-loop oscillation (oscillation.py) ----------------------------------------
    osc_hysteresis: float = Field(
        2.5,
        gt=0.0,
        description="local sigmas the residual must reach on the other side to count a crossing",
    )
    osc_min_amplitude: float = Field(
        3.0,
        gt=0.0,
        description=(
            "amplitude (local sigmas, from the half-wave's mean) a half-wave needs to be regular"
        ),
    )
    osc_tolerance: float = Field(
        0.3,
        gt=0.0,
        lt=1.0,
        description="a period (two half-waves) is regular within this fraction of the last one",
    )
    osc_count: int = Field(
        2, ge=1, description="regular half-waves in a row that make an oscillation"
    )
    osc_min_half: float = Field(
        3.0, gt=0.0, description="shortest half-period, in samples of the signal"
    )
    osc_max_half: float = Field(
        500.0, gt=0.0, description="longest half-period, in samples of the signal"
    )
    osc_clear: float = Field(
        3.0,
        gt=1.0,
        description="an oscillation clears after this many half-periods without a crossing",
    )
    # -- execution ------------------------------------------------------------------------
    block: int = Field(
        16384, ge=1, description="signals per shard: a shard's state should stay in the L2/L3 cache"
    )

    @model_validator(mode="after")
    def _check_ttt(self) -> DetectConfig:
        reachable = 1.0 / (1.0 - math.exp(-self.ttt_every / self.ttt_window))
        if self.ttt_min_points > reachable:
            raise ValueError(
                f"ttt_min_points must not exceed the {reachable:.3g} looks that a window of"
                " ttt_window seconds holds at one look every ttt_every seconds"
            )
        return self

    @model_validator(mode="after")
    def _check_cusum(self) -> DetectConfig:
        if not self.cusum_k or len(self.cusum_k) != len(self.cusum_h):
            raise ValueError("cusum_k and cusum_h need the same, non-zero length")
        if any(k < 0 for k in self.cusum_k) or any(h <= 0 for h in self.cusum_h):
            raise ValueError("cusum_k must be >= 0 and cusum_h > 0")
        if self.warmup > self.n_eff:
            raise ValueError("warmup must not exceed the baseline's effective memory")
        if self.local_halflife >= self.halflife:
            raise ValueError("local_halflife must be shorter than halflife")
        return self

    @property
    def alpha(self) -> float:
        """Steady-state EWMA weight of the baseline for the configured half-life."""
        return 1.0 - math.exp(-math.log(2.0) / self.halflife)

    @property
    def local_alpha(self) -> float:
        """EWMA weight of the local level."""
        return 1.0 - math.exp(-math.log(2.0) / self.local_halflife)

    @property
    def n_eff(self) -> float:
        """Samples after which the running average turns into the EWMA (1/alpha)."""
        return 1.0 / self.alpha

    @property
    def variance_k_up(self) -> float:
        """Page's optimal allowance for z² when the std grows by variance_up (log-LR / scale)."""
        r2 = self.variance_up * self.variance_up
        return math.log(r2) * r2 / (r2 - 1.0)

    @property
    def variance_k_down(self) -> float:
        """Optimal allowance for z² when the std shrinks to variance_down."""
        r2 = self.variance_down * self.variance_down
        return math.log(1.0 / r2) * r2 / (1.0 - r2)
