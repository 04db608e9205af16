"""Named crash points for testing resumability with a real `kill -9`.

Set `SATX_FAILPOINTS=name:N[,name:N]` and the process sends itself SIGKILL the N-th time it
reaches `hit("name")`. Unset (the normal case) this costs one dict lookup. Tests use it to stop a
job at an exact point (e.g. mid-shard) and check that a re-run completes without losing or
duplicating work.

With `SATX_FAILPOINTS_ONCE=PATH` as well, only the first process of a group to reach its count
dies: it creates PATH exclusively before the kill, and a process that finds PATH taken goes on.
Tests arm every worker of a cluster this way, whichever the scheduler gives the work to.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

ENV_VAR = "SATX_FAILPOINTS"
ONCE_VAR = "SATX_FAILPOINTS_ONCE"
_hits: Counter = Counter()


def _armed() -> dict[str, int]:
    armed = {}
    for part in filter(None, os.environ.get(ENV_VAR, "").split(",")):
        name, _, count = part.partition(":")
        armed[name.strip()] = int(count or 1)
    return armed


def hit(name: str) -> None:
    """Die with SIGKILL if failpoint `name` is armed and reached its count in this process."""
    if ENV_VAR not in os.environ:
        return
    target = _armed().get(name)
    if target is None:
        return
    _hits[name] += 1
    if _hits[name] >= target and _first_of_group():
        os.kill(os.getpid(), signal.SIGKILL)


def _first_of_group() -> bool:
    """True unless `SATX_FAILPOINTS_ONCE` names a file another process has already created."""
    path = os.environ.get(ONCE_VAR)
    if not path:
        return True
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True
