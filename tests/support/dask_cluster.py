"""A real Dask cluster on loopback: `dask scheduler` and `dask worker` processes, as people
start them on a cluster (here with no nanny, so a killed worker stays dead)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.support.helpers import REPO

BIN = Path(sys.executable).parent


class DaskCluster:
    """A scheduler and `workers` worker processes of one thread each, all on 127.0.0.1.

    `worker_env[i]` adds environment variables to worker i (a failpoint, say). The workers
    inherit this process's environment, so `STORAGE_EMULATOR_HOST` reaches them.
    """

    def __init__(self, folder: Path, workers: int = 2, worker_env: dict | None = None):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.scheduler_file = self.folder / "scheduler.json"
        self._logs: list = []
        self.scheduler = self._start(
            "scheduler",
            [
                str(BIN / "dask"),
                "scheduler",
                "--host=127.0.0.1",
                "--port=0",
                "--no-dashboard",
                f"--scheduler-file={self.scheduler_file}",
            ],
            # Queueing off: with it on, a killed worker's tasks once stayed `queued` beside an
            # idle survivor for 14 min (BUILD_NOTES, Beam).
            {"DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION": "inf"},
        )
        self.address = self._wait_for_address()
        self.workers = [
            self._start(
                f"worker-{i}",
                [
                    str(BIN / "dask"),
                    "worker",
                    self.address,
                    "--host=127.0.0.1",
                    "--nthreads=1",
                    "--no-nanny",
                    "--no-dashboard",
                    f"--name=w{i}",
                    f"--local-directory={self.folder / f'w{i}'}",
                    "--death-timeout=60",
                ],
                (worker_env or {}).get(i, {}),
            )
            for i in range(workers)
        ]
        self.wait_for_workers(workers)

    def _start(self, name: str, args: list[str], env: dict | None = None) -> subprocess.Popen:
        log = open(self.folder / f"{name}.log", "wb")  # noqa: SIM115 - open while it runs
        self._logs.append(log)
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        return subprocess.Popen(args, cwd=REPO, stdout=log, stderr=log, env=full_env)

    def _wait_for_address(self, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.scheduler_file.exists():
                try:
                    return json.loads(self.scheduler_file.read_text())["address"]
                except (ValueError, KeyError):
                    pass  # being written
            if self.scheduler.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"no Dask scheduler: {self.log('scheduler')}")

    def wait_for_workers(self, n: int, timeout: float = 120) -> None:
        """Until `n` workers are registered with the scheduler."""
        from distributed import Client

        with Client(self.address, timeout=30) as client:
            client.wait_for_workers(n, timeout=timeout)

    def log(self, name: str) -> str:
        """The text a process wrote so far."""
        return (self.folder / f"{name}.log").read_text(errors="replace")[-4000:]

    def exit_codes(self) -> list:
        """The workers' exit codes, the dead first (None: still running)."""
        return sorted((w.poll() for w in self.workers), key=lambda code: (code is None, code or 0))

    @property
    def beam_options(self) -> str:
        """`--beam_options` for satx to run on this cluster."""
        return f"--runner=DaskRunner --dask_client_address={self.address}"

    def stop(self) -> None:
        """Stop the workers, then the scheduler (a worker whose scheduler closes first can take
        20 s to give up on it)."""
        for group in (self.workers, [self.scheduler]):
            for proc in group:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for proc in group:
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        for log in self._logs:
            log.close()
