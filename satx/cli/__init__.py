"""The command-line layer: absl flags -> a config object -> one library call; errors -> exit codes.

Each stage's CLI is its package's `__main__` (`python -m satx.train`), plus the records tools
`satx.records.{__main__,inspect_main,sample_main}` behind `python -m tools.*`. They import
their library code inside `main`, after the flags are parsed, so that `--verbosity` (or
SATX_VERBOSE=1) can decide how loud TensorFlow is before it loads: by default a CLI prints no
TensorFlow load notices, C++ info lines or absl logging switches. Library code never imports a
CLI.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import shlex
import sys
import tempfile
from collections.abc import Callable, Iterator

from absl import flags as absl_flags

EXIT_USER_ERROR = 2
VERBOSE_ENV = "SATX_VERBOSE"  # 1: TensorFlow's C++ info lines and library chatter come back
# What TensorFlow's native code prints while it loads, whatever TF_CPP_MIN_LOG_LEVEL says
# (TF 2.21 logs through absl before absl::InitializeLog, straight to stderr).
NATIVE_NOTICES = (
    "All log messages before absl::InitializeLog()",
    "oneDNN custom operations are on",
    "cpu_feature_guard",
    "To enable the following instructions",
    "Unable to register cu",
    "computation placer already registered",
    "TF-TRT Warning",
)
_verbose = False


def _show_in_help(main: Callable) -> None:
    # absl's --help lists the key flags of the module named by sys.argv[0]; our flags live in
    # satx.* behind thin tools/ wrappers and console scripts, so register them there.
    main_module = sys.argv[0] if main.__module__ == "__main__" else main.__module__
    flags = absl_flags.FLAGS
    for flag in [
        *flags.get_flags_for_module(main_module),
        *flags.get_key_flags_for_module(main_module),
    ]:
        flags.register_key_flag_for_module(sys.argv[0], flag)


def _quiet(verbose: bool) -> None:
    """TensorFlow's C++ info lines, oneDNN notices and library chatter only when asked for.

    Must run before TensorFlow is imported: its C++ logging reads the variable at load.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if verbose else "2")
    level = logging.INFO if verbose else logging.ERROR
    chatty = ("absl", "tensorflow", "keras_tuner", "h5py", "matplotlib", "apache_beam", "numexpr")
    for name in chatty:  # numexpr (rio-tiler's, loaded by pandas): "defaulting to N threads"
        logging.getLogger(name).setLevel(level)


@contextlib.contextmanager
def _native_stderr_without(notices: tuple[str, ...]) -> Iterator[None]:
    """Capture what native code writes to file descriptor 2; replay all but `notices` lines."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode(errors="replace").splitlines():
                if not any(notice in line for notice in notices):
                    print(line, file=sys.stderr)


def load_tensorflow() -> None:
    """Import TensorFlow and Keras for a CLI, without their load-time notices unless verbose."""
    if _verbose or "tensorflow" in sys.modules:
        import tensorflow

        return
    with _native_stderr_without(NATIVE_NOTICES):
        import keras  # noqa: F401
        import tensorflow  # noqa: F401


def run(main: Callable[[list[str]], int | None]) -> None:
    """Run an absl `main`, turning `SatxError` into one clear line and exit code 2.

    Args:
        main: the absl main function of a CLI module (its module's flags show in --help).
    """
    from absl import app
    from absl import logging as absl_logging

    _show_in_help(main)

    def guarded(argv: list[str]) -> int | None:
        global _verbose
        verbose = absl_flags.FLAGS.verbosity > 0 or os.environ.get(VERBOSE_ENV, "") not in ("", "0")
        _verbose = verbose
        absl_logging.use_python_logging(quiet=True)
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", force=True)
        _quiet(verbose)
        from satx.errors import SatxError
        from satx.io import secrets

        secrets.scrub_logs()
        # before anything is written: the lock file and the first log line quote the command
        secrets.register_args({n: f.value for n, f in absl_flags.FLAGS._flags().items()})

        if len(argv) > 1 and not getattr(main, "takes_arguments", False):
            print(f"error: unexpected arguments {argv[1:]}", file=sys.stderr)
            return EXIT_USER_ERROR
        try:
            return main(argv)
        except SatxError as err:
            print(f"error: {secrets.scrub(str(err))}", file=sys.stderr)
            return EXIT_USER_ERROR

    def parse(argv: list[str]) -> list[str]:
        # absl prints "FATAL Flags parsing error" plus a hint and exits 1; a bad flag value is a
        # user's mistake like any other: one line, exit code 2.
        try:
            return absl_flags.FLAGS(argv)
        except absl_flags.Error as err:
            print(f"error: {err} (--helpshort lists the flags)", file=sys.stderr)
            sys.exit(EXIT_USER_ERROR)

    app.run(guarded, flags_parser=parse)


def command_line(module: str) -> str:
    """This process's command, as the user would type it (`python -m MODULE --flags`)."""
    return shlex.join(["python", "-m", module, *sys.argv[1:]])


def entry_point(main: Callable[[list[str]], int | None]) -> Callable[[], None]:
    """The console-script entry point (`entry`) of a CLI module's `main`."""
    return functools.partial(run, main)


def takes_arguments(main: Callable) -> Callable:
    """Mark a CLI `main` that takes positional arguments (the rest refuse them)."""
    main.takes_arguments = True  # type: ignore[attr-defined]
    return main
