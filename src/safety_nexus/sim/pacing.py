"""Running the simulator against the wall clock: real time × `speed`, or flat out.

Frames are anchored to the wall time at which pacing began, not to the previous frame, so
sleeping imprecisely never accumulates into drift: a frame is released when the wall clock has
caught up with its last timestamp. A consumer that falls behind gets the frames it missed as fast
as it can take them, and pacing resumes from there.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator

from safety_nexus.core.errors import SimError
from safety_nexus.core.types import Frame
from safety_nexus.sim.simulator import Simulator


def paced(
    sim: Simulator,
    *,
    speed: float,
    rows_per_batch: int,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> Iterator[Frame]:
    """Frames of `rows_per_batch` rows, forever, each released when wall time × `speed` has
    reached its last row's simulated time. `speed = math.inf`: as fast as possible."""
    if not speed > 0:  # also rejects NaN
        raise SimError(f"speed must be positive (math.inf for as fast as possible), not {speed}")
    if rows_per_batch < 1:
        raise SimError(f"rows_per_batch must be at least 1, not {rows_per_batch}")
    flat_out = math.isinf(speed)
    wall0 = monotonic()
    sim0 = sim.now
    while True:
        frame = sim.step(rows_per_batch)
        if not flat_out:
            due = wall0 + (sim.now - sim0) / speed
            wait = due - monotonic()
            if wait > 0:
                sleep(wait)
        yield frame
