"""What this machine offers a process."""

from __future__ import annotations

import os


def cores_used() -> int:
    """CPU cores this process may run on (its affinity on Linux, else every core)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
