"""Cumulative counters turned into rates per second before any detector sees them.

A counter (`kind: counter` in the site file: packets_total, energy_kwh, requests) only ever
grows; its level says how long the process has run, not whether anything is wrong, and every
detector would find its endless ramp abnormal. What is monitored is its rate: the increase since
the previous sample over the real time between them, in unit per second, so that gaps and
irregular sampling give the right rate (an increase over a ten-minute gap is divided by ten
minutes, not by one period).

Resets are handled as Prometheus's `rate()` does: a decrease means the counter restarted from
zero (a device rebooted, a process restarted), so the increase is the new value itself. A
counter that wraps around at its width (2³² for a 32-bit register) is seen the same way, as a
reset: the increase up to the wrap is lost for that one sample (under-counted, never negative).
The first sample of a counter has no predecessor and gives no rate (NaN: no sample).

It lives inside the bank, as its first step, rather than as a pipeline stage before it: its
state (each counter's latest value and time) must survive a restart exactly like the detectors'
(`DetectorBank.save_state` walks it with everything else), and every caller of the bank (the
pipeline, replays, the evaluation harnesses) gets rates without having to remember a stage. The
pipeline records the frame before the bank sees it, so storage and trends keep the raw counter
values; findings on a counter are in unit per second (their evidence unit says "/s"), and a
counter's declared normal band and limits are read as rates too.

Example: a counter sampled irregularly, with a gap and a reset.

>>> import numpy as np
>>> rates = CounterRates(np.array([0]))
>>> times = np.array([0.0, 1.0, 3.0, 4.0, 10.0, 11.0])
>>> raw = np.array([[100.0], [110.0], [130.0], [np.nan], [200.0], [5.0]])
>>> rates.apply(times, raw)[:, 0].tolist()
[nan, 10.0, 10.0, nan, 10.0, 5.0]
"""

from __future__ import annotations

import numpy as np

from safety_nexus.detect.base import F64, Index, ScratchState, latest_rows


class CounterRates(ScratchState):
    """Rates per second of the counter columns `cols` of each frame; state: each counter's
    latest raw value and its time (so that a rate spans frames, gaps and restarts)."""

    def __init__(self, cols: Index) -> None:
        self.cols: Index = np.asarray(cols, dtype=np.intp)
        m = self.cols.shape[0]
        self.last: F64 = np.full(m, np.nan)  # latest raw value; NaN before the first
        self.last_t: F64 = np.full(m, -np.inf)

    def apply(self, times: F64, values: F64) -> F64:
        """`values` with the counter columns replaced by rates (a new array; the input is not
        touched). Vectorised over rows and counters: the previous sample of each counter at each
        row is found with a running maximum of row indices."""
        cols = self.cols
        m = cols.shape[0]
        rows = times.shape[0]
        if not m or not rows:
            return values
        raw = values[:, cols]  # a copy
        present = ~np.isnan(raw)
        at = latest_rows(present)  # latest row with a sample, this one included
        prev = np.empty_like(at)
        prev[0] = -1
        prev[1:] = at[:-1]
        has = prev >= 0
        safe = np.maximum(prev, 0)
        j = np.arange(m)
        prev_v = np.where(has, raw[safe, j], self.last)
        prev_t = np.where(has, times[safe], self.last_t)
        inc = raw - prev_v  # NaN where this or the previous sample is missing
        np.copyto(inc, raw, where=inc < 0)  # a decrease: the counter restarted from zero
        with np.errstate(divide="ignore", invalid="ignore"):
            rate = inc / (times[:, None] - prev_t)
        out = values.copy()
        out[:, cols] = rate
        last_row = at[-1]
        seen = last_row >= 0
        self.last[seen] = raw[last_row[seen], j[seen]]
        self.last_t[seen] = times[last_row[seen]]
        return out
