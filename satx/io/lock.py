"""One run at a time per output: an exclusive lock on an output folder or gs:// prefix.

- Local: `fcntl.flock` on `ROOT/.satx.lock`. The kernel releases it when the holder dies, so
  a lock left by kill -9 is simply free for the next run, which writes its own details in.
- gs://: the object `ROOT/.satx.lock`, created only if absent (`ifGenerationMatch=0`). The
  holder rewrites it every `heartbeat_s`, each time matching the generation it wrote; a lock
  not refreshed for `stale_s`, or held by a process of this machine that is gone, belongs to a
  dead run and is taken over by deleting exactly that generation (two runs taking over at
  once: one delete wins, the loser sees the new lock).

A second run stops at once with the holder's pid, host and start time. The lock file is never
deleted by `--overwrite` clean-ups (`LOCK_NAME` is skipped), so it cannot be pulled from
under its holder.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from satx.errors import SatxError
from satx.io import claim, secrets, storage
from satx.io.claim import LOCK_NAME

log = logging.getLogger(__name__)

HEARTBEAT_S = 30.0
STALE_S = 180.0
_held: dict[str, int] = {}  # lock key -> how many times this process holds it
_held_lock = threading.Lock()


class OutputLockedError(SatxError):
    """Another run holds the output."""


def holder(what: str) -> dict[str, Any]:
    """Who is taking the lock: which run, pid, host, start time, command (secrets scrubbed)."""
    return {
        "run": what,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "time": time.time(),
        "command": secrets.scrub(" ".join(sys.argv)),
    }


def _refusal(where: str, info: dict[str, Any], after_death: str) -> OutputLockedError:
    who = f"pid {info.get('pid', '?')} on {info.get('host', '?')}"
    return OutputLockedError(
        f"{where} is in use by a {info.get('run', 'satx')} run ({who}, since "
        f"{info.get('started', '?')}): wait for it to finish or stop it, or choose another "
        f"output{f'. If that run was killed, {after_death}' if after_death else ''}."
    )


def _holder_info(fd: int, wait_s: float = 2.0) -> dict[str, Any]:
    """What the holder wrote into the lock file; it writes just after locking, so wait a little."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            info = json.loads(os.pread(fd, 65536, 0) or b"null")
        except ValueError:
            info = None
        if isinstance(info, dict) or time.monotonic() > deadline:
            return info if isinstance(info, dict) else {}
        time.sleep(0.05)


class _LocalLock:
    def __init__(self, root: str):
        self.path = Path(root).expanduser() / LOCK_NAME
        self.fd: int | None = None

    def acquire(self, what: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)  # close-on-exec (PEP 446)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            info = _holder_info(fd)
            os.close(fd)
            raise _refusal(str(self.path.parent), info, "") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder(what)).encode(), 0)
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.ftruncate(self.fd, 0)  # who held it is no one's business once the run is over
            os.close(self.fd)  # closing releases the flock; the file stays for the next run
            self.fd = None


def _dead_here(info: dict[str, Any]) -> bool:
    """Whether the holder ran on this machine and its process is gone."""
    if info.get("host") != socket.gethostname() or not isinstance(info.get("pid"), int):
        return False
    try:
        os.kill(info["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class _GcsLock:
    def __init__(self, root: str, heartbeat_s: float, stale_s: float):
        self.store = storage.GcsStore(root)
        self.heartbeat_s, self.stale_s = heartbeat_s, stale_s
        self.generation: int | None = None
        self.what = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _blob(self) -> Any:
        return self.store._blob(LOCK_NAME)

    def _create(self) -> bool:
        from google.api_core import exceptions

        blob = self._blob()
        try:
            blob.upload_from_string(json.dumps(holder(self.what)), if_generation_match=0)
        except exceptions.PreconditionFailed:
            return False
        self.generation = blob.generation
        return True

    def acquire(self, what: str) -> None:
        from google.api_core import exceptions

        self.what = what
        for _ in range(3):
            if self._create():
                break
            blob = self._blob()
            try:
                blob.reload()
                info = json.loads(blob.download_as_bytes(if_generation_match=blob.generation))
            except exceptions.NotFound:
                continue  # released meanwhile: try again
            except exceptions.PreconditionFailed:
                continue  # refreshed meanwhile
            age = time.time() - float(info.get("time", 0))
            dead = _dead_here(info)  # killed on this machine: no need to wait for staleness
            if not dead and age <= self.stale_s:
                raise _refusal(
                    self.store.url(""),
                    info,
                    f"run again in {self.stale_s - age:.0f} s, when its lock is stale",
                )
            log.warning(
                "%s: taking over the lock of a run that is gone (pid %s on %s, %s)",
                self.store.url(LOCK_NAME),
                info.get("pid"),
                info.get("host"),
                "no such process" if dead else f"not refreshed for {age:.0f} s",
            )
            with contextlib.suppress(exceptions.NotFound, exceptions.PreconditionFailed):
                blob.delete(if_generation_match=blob.generation)
        else:
            raise OutputLockedError(f"{self.store.url(LOCK_NAME)}: could not take the lock")
        self._thread = threading.Thread(target=self._beat, daemon=True, name="satx-lock")
        self._thread.start()

    def _beat(self) -> None:
        from google.api_core import exceptions

        while not self._stop.wait(self.heartbeat_s):
            blob = self._blob()
            try:
                info = json.dumps(holder(self.what))
                blob.upload_from_string(info, if_generation_match=self.generation)
                self.generation = blob.generation
            except exceptions.PreconditionFailed:
                log.error("%s: the lock was taken over by another run", self.store.url(LOCK_NAME))
                return
            except Exception as err:  # a failed refresh is retried at the next beat
                log.warning("%s: could not refresh the lock (%s)", self.store.url(LOCK_NAME), err)

    def release(self) -> None:
        from google.api_core import exceptions

        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.generation is not None:
            with contextlib.suppress(exceptions.NotFound, exceptions.PreconditionFailed):
                self._blob().delete(if_generation_match=self.generation)
            self.generation = None


@contextlib.contextmanager
def output_lock(
    root: str,
    what: str,
    layout: claim.Layout | None = None,
    inputs: tuple[tuple[str, str], ...] = (),
    heartbeat_s: float = HEARTBEAT_S,
    stale_s: float = STALE_S,
) -> Iterator[None]:
    """Hold the lock on `root` (local folder or gs:// prefix) for the block.

    With a `layout`, the folder is claimed for that stage (`satx.io.claim`): checked before
    the lock file is written (a refused folder gets nothing, not even a lock), checked again
    under the lock, then marked. Re-entrant within one process (a run that calls another on
    the same output).

    Raises:
        OutputLockedError: another live run holds it.
        InputError / OutputExistsError: the folder is not this stage's to write (`claim.check`).
    """
    if layout is not None:
        claim.check(root, layout, inputs)
    key = root.rstrip("/") if storage.is_gcs(root) else str(Path(root).expanduser().resolve())
    with _held_lock:
        if _held.get(key):
            _held[key] += 1
            lock = None
        else:
            lock = (
                _GcsLock(root, heartbeat_s, stale_s) if storage.is_gcs(root) else _LocalLock(root)
            )
    if lock is not None:
        lock.acquire(what)
        with _held_lock:
            _held[key] = 1
    try:
        if lock is not None and layout is not None:
            claim.check(root, layout, inputs)
            claim.mark(storage.open_store(root), layout)
        yield
    finally:
        with _held_lock:
            _held[key] -= 1
            last = _held[key] == 0
            if last:
                del _held[key]
        if last and lock is not None:
            lock.release()
