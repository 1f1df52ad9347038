from __future__ import annotations

import itertools
import math

import pytest

from safety_nexus.core.errors import SimError
from safety_nexus.sim import Simulator, paced
from safety_nexus.sim.examples import tiny_site


class FakeClock:
    """A wall clock that moves only when slept on (or when the test says so)."""

    def __init__(self) -> None:
        self.t = 100.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


def test_frames_are_released_at_real_time_times_speed() -> None:
    sim = Simulator(tiny_site(), seed=1)
    clock = FakeClock()
    frames = paced(sim, speed=10.0, rows_per_batch=5, sleep=clock.sleep, monotonic=clock.monotonic)
    released = []
    for frame in itertools.islice(frames, 4):
        assert frame.n_rows == 5
        released.append(clock.t)
    # each frame holds 5 simulated seconds: half a wall second at ×10
    assert released == pytest.approx([100.5, 101.0, 101.5, 102.0])
    assert sim.now == sim.start + 20


def test_a_slow_consumer_is_not_slept_on_and_pacing_does_not_drift() -> None:
    sim = Simulator(tiny_site(), seed=1)
    clock = FakeClock()
    frames = paced(sim, speed=2.0, rows_per_batch=1, sleep=clock.sleep, monotonic=clock.monotonic)
    next(frames)  # due at +0.5 s
    clock.t += 3.0  # the consumer stalls for three wall seconds
    clock.sleeps.clear()
    for _ in range(5):  # frames due at +1.0 … +3.0 are overdue: no sleeping
        next(frames)
    assert clock.sleeps == []
    next(frames)  # due at +3.5, the clock is at +3.5: on time again
    next(frames)
    assert clock.t == pytest.approx(104.0)


def test_infinite_speed_never_sleeps() -> None:
    sim = Simulator(tiny_site(), seed=1)
    clock = FakeClock()
    frames = paced(
        sim, speed=math.inf, rows_per_batch=100, sleep=clock.sleep, monotonic=clock.monotonic
    )
    for _ in range(3):
        next(frames)
    assert clock.sleeps == []
    assert sim.now == sim.start + 300


@pytest.mark.parametrize(("speed", "rows"), [(0.0, 1), (-1.0, 1), (math.nan, 1), (1.0, 0)])
def test_bad_pacing_is_refused(speed: float, rows: int) -> None:
    sim = Simulator(tiny_site(), seed=1)
    with pytest.raises(SimError):
        next(paced(sim, speed=speed, rows_per_batch=rows))
