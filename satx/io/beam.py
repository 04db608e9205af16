"""Apache Beam pipelines for satx's engines: options passed through, the runner chosen.

`--beam_options="..."` is Beam's own command line (`--runner=DataflowRunner --project=...`).
Without `--runner`, the pipeline runs on Beam's pure-Python FnApiRunner, chosen explicitly:
Beam's default DirectRunner first tries the Prism runner, whose binary it downloads from the
internet (offline, it waits on that before falling back). The FnApiRunner takes
`--direct_num_workers=N --direct_running_mode=multi_processing` (N worker processes) or
`in_memory` (the default: this process).

`--runner=DaskRunner --dask_client_address=tcp://HOST:8786` runs the pipeline on a Dask
cluster (`satx[dask]`): Beam's Dask runner turns each stage into Dask bag partitions. It makes
partitions only where elements are created (a Reshuffle is a no-op there) and defaults to 128
elements a partition, and it runs each GroupByKey as a dask.bag task shuffle, whose task count
grows with the partitions (n * n for up to 32, more beyond) and whose output keeps them, so
every later shuffle is as large. Unless the options choose: a pipeline without shuffles
(predict) gets one element a partition (`--dask_partition_size=1`: an element is a chunk of
tiles, spread one task each); one with shuffles (make_records) gets 4 partitions per worker
of the cluster (`--dask_npartitions`), enough to keep every worker busy and small enough that
a shuffle is a few hundred tasks (128 partitions made 16,738 shuffle tasks, 2.4x the time of a
run with 8). Work made inside the pipeline is spread with `spread` (a keyed GroupByKey, which
Dask does shuffle). Beam leaves its Dask client open after the run; satx closes it when the
pipeline has finished.
"""

from __future__ import annotations

import json
import os
import shlex
import threading
import zlib
from collections.abc import Callable
from typing import Any, TypeVar

from satx.errors import InputError

T = TypeVar("T")
DASK_RUNNER = "apache_beam.runners.dask.dask_runner.DaskRunner"
RUNNER_NAMES = {"DaskRunner": DASK_RUNNER}  # runners Beam only knows by their full name
_made: dict[tuple[str, str], Any] = {}
_made_lock = threading.Lock()


def once_per_process(make: Callable[[Any], T], config: Any) -> T:
    """`make(config)`, built once per worker process and config, then reused.

    Beam runs many bundles in one worker process; an input listing, a tile source's connection
    pool or a model is built for the first and shared by the rest.
    """
    key = (make.__qualname__, json.dumps(config.to_dict(), sort_keys=True))
    with _made_lock:
        if key not in _made:
            _made[key] = make(config)
        return _made[key]


def pipeline(beam_options: str, shuffles: bool = False) -> Any:
    """A `beam.Pipeline` for these options (use it as a context manager: it runs on exit).

    `shuffles`: the pipeline has GroupByKeys (it decides the Dask partitioning, above).
    """
    try:
        import apache_beam as beam
        from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
    except ImportError as err:
        raise InputError("--engine=beam needs Apache Beam: pip install 'satx[beam]'") from err
    args = _with_runner_names(shlex.split(beam_options))
    if f"--runner={DASK_RUNNER}" in args:
        args = _dask_args(args, shuffles)
    try:
        options = PipelineOptions(args)
    except ValueError as err:
        raise InputError(f"--beam_options: {err}") from err
    runner = options.view_as(StandardOptions).runner
    if runner == DASK_RUNNER:
        return beam.Pipeline(runner=_closing_dask_runner(), options=options)
    if runner:
        return beam.Pipeline(options=options)
    return beam.Pipeline(runner=_local_runner(options), options=options)


def _with_runner_names(args: list[str]) -> list[str]:
    out = []
    for i, arg in enumerate(args):
        if arg == "--runner" and i + 1 < len(args):
            continue  # joined with its value below
        if i and args[i - 1] == "--runner":
            arg = f"--runner={arg}"
        if arg.startswith("--runner="):
            name = arg.split("=", 1)[1]
            arg = f"--runner={RUNNER_NAMES.get(name, name)}"
        out.append(arg)
    return out


def _dask_args(args: list[str], shuffles: bool) -> list[str]:
    try:
        import dask.distributed  # noqa: F401
    except ImportError as err:
        raise InputError("--runner=DaskRunner needs Dask: pip install 'satx[dask]'") from err
    if any(a.startswith(("--dask_partition_size", "--dask_npartitions")) for a in args):
        return args
    if not shuffles:
        return [*args, "--dask_partition_size=1"]
    return [*args, f"--dask_npartitions={4 * _dask_workers(args)}"]


def _dask_workers(args: list[str]) -> int:
    """Workers of the cluster the options name (this machine's cores without an address)."""
    address = next((a.split("=", 1)[1] for a in args if a.startswith("--dask_client_address=")), "")
    if not address:
        return os.cpu_count() or 1
    from distributed import Client

    try:
        with Client(address, timeout=30) as client:
            return max(1, len(client.scheduler_info().get("workers", {})))
    except OSError as err:
        raise InputError(
            f"--dask_client_address={address}: no Dask scheduler there ({err})"
        ) from err


def _closing_dask_runner() -> Any:
    # Beam's DaskRunner opens a distributed.Client per run and never closes it: the driver
    # keeps reconnecting to a scheduler that has gone (a traceback at exit).
    from apache_beam.runners.dask.dask_runner import DaskRunner, DaskRunnerResult

    class _ClosingResult(DaskRunnerResult):
        def wait_until_finish(self, duration: int | None = None) -> str:
            try:
                return super().wait_until_finish(duration)
            finally:
                if duration is None:
                    self.client.close()

    class _ClosingDaskRunner(DaskRunner):
        def run_pipeline(self, pipeline: Any, options: Any) -> Any:
            result = super().run_pipeline(pipeline, options)
            return _ClosingResult(result.client, result.futures)

    return _ClosingDaskRunner()


def spread(name: Callable[[Any], str]) -> Any:
    """A PTransform that redistributes elements made inside the pipeline over the workers.

    Beam's Reshuffle does that on every runner but Dask's, where it is a no-op; a GroupByKey is
    a shuffle on all of them. The key comes from `name(element)`, so a stage that Dask runs
    again after a worker died sends every element where it went the first time.
    """
    import apache_beam as beam

    @beam.ptransform_fn
    def _spread(elements: Any) -> Any:
        return (
            elements
            | "key" >> beam.Map(lambda e: (zlib.crc32(name(e).encode()), e))
            | "group" >> beam.GroupByKey()
            | "ungroup" >> beam.FlatMap(lambda keyed: keyed[1])
        )

    return _spread()


def _local_runner(options: Any) -> Any:
    # What DirectRunner does once it has given up on Prism: the FnApiRunner, told the options
    # so that its worker processes (multi_processing) see them too.
    from apache_beam.portability.api import beam_provision_api_pb2
    from apache_beam.runners.portability.fn_api_runner import fn_runner
    from apache_beam.runners.portability.portable_runner import JobServiceHandle

    encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
    info = fn_runner.ExtendedProvisionInfo(
        beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded)
    )
    return fn_runner.FnApiRunner(provision_info=info)
