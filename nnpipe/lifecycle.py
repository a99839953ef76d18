"""How an ``nnpipe`` command ends: on SIGTERM and Ctrl-C, and when it is killed.

SIGTERM raises :class:`Terminated` (a ``KeyboardInterrupt``) in the main thread,
so it unwinds like Ctrl-C: the MLflow run is ended KILLED with what was logged
flushed, Prefect and Dask shut down, and the command exits 143 (Ctrl-C: 130).
SIGKILL cannot be handled: the reaper (``nnpipe/reaper.py``), a small process
watching the command, ends whatever the command had started.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Any

EXIT_FAILURE, EXIT_USAGE = 1, 2
EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143

_reaper: subprocess.Popen | None = None


class Terminated(KeyboardInterrupt):
    """The command received SIGTERM."""


def _raise_terminated(signum: int, frame: Any) -> None:
    # The local Dask cluster is torn down while the command unwinds: the tasks it
    # cancels are expected, not errors to print with a traceback.
    logging.getLogger("distributed").setLevel(logging.CRITICAL)
    raise Terminated(f"terminated by signal {signum}")


def handle_sigterm() -> None:
    """Make SIGTERM unwind the command like Ctrl-C (main thread only)."""
    signal.signal(signal.SIGTERM, _raise_terminated)


def quiet_telemetry() -> None:
    """Turn MLflow's usage telemetry off for this command unless the user chose.

    Left on, it posts usage records to MLflow's collector from threads that the
    interpreter joins at exit (1 s timeouts each): about 1 s of every command's
    wall time here (``benchmarks/bench_start.py``). ``MLFLOW_DISABLE_TELEMETRY=false``
    turns it back on.
    """
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def skip_collection_at_exit() -> None:
    """Leave this process's objects to the OS at exit rather than to the garbage collector.

    With prefect, mlflow, sqlalchemy and pandas imported, the collections the
    interpreter runs while tearing its modules down took about 1.2 s of every
    command (``benchmarks/bench_start.py``). Atexit handlers, thread joins and
    reference-count finalizers (closing files, flushing logs) still run; only
    garbage in reference cycles is no longer swept on the way out.
    """
    gc.disable()
    gc.freeze()


def is_bad_input(exc: BaseException) -> bool:
    """Whether ``exc`` is the user's input at fault (exit 2) rather than a failure (exit 1)."""
    # ValueError covers config, data and model-file errors (ConfigError, DataError,
    # ModelFileError, pydantic's ValidationError); missing files are bad input too.
    return isinstance(exc, (ValueError, FileNotFoundError, NotADirectoryError, IsADirectoryError))


def report(command: str, exc: BaseException, debug: bool) -> int:
    """Print how ``command`` ended on one line (``debug``: the traceback first); the exit code.

    Ctrl-C: 130, SIGTERM: 143 (128 + the signal number, as shells report); bad
    input 2; any other failure 1.
    """
    if isinstance(exc, SystemExit):
        raise exc
    # Prefect's flow engine turns SIGTERM into its own TerminationSignal (with .signal).
    terminated = isinstance(exc, Terminated) or getattr(exc, "signal", None) == signal.SIGTERM
    if isinstance(exc, KeyboardInterrupt) or terminated:
        print(f"{command}: {'terminated' if terminated else 'interrupted'}", file=sys.stderr)
        return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
    if debug:
        traceback.print_exception(exc)
    bad_input = is_bad_input(exc)
    kind = "error" if bad_input else "failed"
    print(f"{command}: {kind}: {first_line(exc)}", file=sys.stderr)
    return EXIT_USAGE if bad_input else EXIT_FAILURE


def start_reaper() -> subprocess.Popen:
    """Start (once per process) the watcher that ends this command's children when it dies."""
    global _reaper
    if _reaper is None:
        script = Path(__file__).with_name("reaper.py")
        # Its stdin is this process's pipe: closed by the kernel however this process
        # ends. Its own session: the terminal's Ctrl-C goes to the command, not to it.
        # Neither of the command's output streams: a reader of them (`2>&1 | tee`, a
        # script capturing both) would otherwise wait for the reaper's exit too.
        _reaper = subprocess.Popen(
            [sys.executable, str(script), str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    return _reaper


def first_line(exc: BaseException) -> str:
    """The exception's message on one line (a service's multi-line reply cut to its first)."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
