"""What machine a benchmark ran on: recorded with every result, since figures depend on it."""

from __future__ import annotations

import os
import platform
import sys
from typing import Any

import numpy as np


def machine(**extra: Any) -> dict[str, Any]:
    """CPU, cores, pinning, platform and versions, and the load average at the start (other
    processes share the machine: a high load average means noisy figures)."""
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cpus_online": os.cpu_count(),
        "pinned_to": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        **extra,
        "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
