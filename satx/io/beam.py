"""Apache Beam pipelines for satx's engines: options passed through, the runner chosen.

`--beam_options="..."` is Beam's own command line (`--runner=DataflowRunner --project=...`).
Without `--runner`, the pipeline runs on Beam's pure-Python FnApiRunner, chosen explicitly:
Beam's default DirectRunner first tries the Prism runner, whose binary it downloads from the
internet (offline, it waits on that before falling back). The FnApiRunner takes
`--direct_num_workers=N --direct_running_mode=multi_processing` (N worker processes) or
`in_memory` (the default: this process).
"""

from __future__ import annotations

import json
import shlex
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from satx.errors import InputError

T = TypeVar("T")
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


def pipeline(beam_options: str) -> Any:
    """A `beam.Pipeline` for these options (use it as a context manager: it runs on exit)."""
    try:
        import apache_beam as beam
        from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
    except ImportError as err:
        raise InputError("--engine=beam needs Apache Beam: pip install 'satx[beam]'") from err
    try:
        options = PipelineOptions(shlex.split(beam_options))
    except ValueError as err:
        raise InputError(f"--beam_options: {err}") from err
    if options.view_as(StandardOptions).runner:
        return beam.Pipeline(options=options)
    return beam.Pipeline(runner=_local_runner(options), options=options)


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
