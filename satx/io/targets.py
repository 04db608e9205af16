"""What a file write may replace: regular files only."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from satx.errors import StorageError


def check_target(path: str | Path, flag: str = "") -> None:
    """Refuse a file target that exists and is not a regular file (a device, FIFO, socket, folder).

    An atomic write renames a new file over its target: over `/dev/full` that replaces a
    device node with a CSV.

    Raises:
        StorageError: naming the target and the flag.
    """
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISREG(mode):
        kind = "a link" if stat.S_ISLNK(mode) else "not a file"
        kind = "a folder" if stat.S_ISDIR(mode) else kind
        raise StorageError(
            f"{f'{flag}=' if flag else ''}{path} is {kind}; satx writes only regular files "
            "(atomically, by replacing them): choose a file path"
        )
