"""The machine a benchmark ran on, for its header line: figures from different hosts do not compare."""

from __future__ import annotations

import os
import platform


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def describe() -> str:
    """E.g. '2 CPUs (AMD EPYC), load average 1.0'."""
    return f"{os.cpu_count()} CPUs ({cpu_model()}), load average {os.getloadavg()[0]:.1f}"
