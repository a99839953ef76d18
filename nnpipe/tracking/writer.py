"""The tracking writer: a background process that makes every MLflow call of a process.

Training must not wait for MLflow. MLflow's client does much of its work in
Python (a 100-metric ``log_batch`` into SQLite takes ~15 ms of cpu and ~40 ms of
wall on a loaded machine, a PNG render ~0.1 s), and a thread would compete for the
GIL with a training loop made of many small NumPy calls. MLflow's own asynchronous
logging (``log_batch(..., synchronous=False)``) is such a thread pool: in
``benchmarks/bench_tracking.py`` it kept the training thread blocked for ~3 % of an
untracked run's time, synchronous calls from the training thread for 5-6 %, this
writer for under 1 %.
So each process that tracks gets one writer process (started on first use, shared
by all trackers in the process, restarted after a fork) and talks to it over a
socket:

- ``send(op, ...)``: queue a write (params, metrics, text, figures, run status) and
  return at once. Writes are applied in the order they were sent.
- ``call(op, ...)``: do something whose answer is needed (create a run, log a
  model); everything sent earlier is applied first. Errors come back as the same
  exception type where it is a built-in or nnpipe's own, else ``TrackingError``.
- ``wait()``: block until everything sent is stored; raise ``TrackingError`` naming
  every queued write that failed since the last wait (they are also printed to
  stderr by the writer when they happen).

The writer ignores Ctrl-C and SIGTERM and exits when its socket closes, after
storing what it had received, so a parent that is interrupted or killed after
logging still leaves its runs complete. At interpreter exit the parent waits for
the writer (``NNPIPE_TRACKING_EXIT_TIMEOUT`` seconds, default 300).
``InlineWriter`` does the same calls in the calling thread (``background=False``).

Run as ``python -m nnpipe.tracking.writer FD`` by :class:`ProcessWriter` only.
"""

from __future__ import annotations

import atexit
import importlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import traceback
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

_log = logging.getLogger(__name__)

EXIT_TIMEOUT_ENV = "NNPIPE_TRACKING_EXIT_TIMEOUT"
_BARRIER = "_barrier"
_CLOSE = "_close"
_ENVIRONMENT = "_environment"
# Queued metric writes of one run coalesce into log_batch calls of at most this many.
_COALESCE_METRICS = 1000


class TrackingError(RuntimeError):
    """MLflow could not store something the tracker had queued, or the writer died."""


def _operations() -> dict[str, Any]:
    from ._store import OPERATIONS  # imports mlflow

    return OPERATIONS


def _rebuild(module: str, qualname: str, message: str, remote_tb: str) -> Exception:
    """The writer's exception in this process: same type when it is safe to make one."""
    exc: Exception | None = None
    if module == "builtins" or module.split(".")[0] == "nnpipe":
        try:
            cls = getattr(importlib.import_module(module), qualname)
            if isinstance(cls, type) and issubclass(cls, Exception):
                exc = cls(message)
        except Exception:
            exc = None
    if exc is None:
        exc = TrackingError(f"{qualname}: {message}")
    exc.add_note("raised in the tracking writer process:\n" + remote_tb.rstrip())
    return exc


class InlineWriter:
    """Does each MLflow call at once in the calling thread (no background process)."""

    background = False

    def call(self, op: str, *args: Any, **kwargs: Any) -> Any:
        return _operations()[op](*args, **kwargs)

    def send(self, op: str, *args: Any, **kwargs: Any) -> None:
        self.call(op, *args, **kwargs)

    def wait(self) -> None:
        return None


class ProcessWriter:
    """The parent's handle on one writer process (see the module docstring)."""

    background = True

    def __init__(self) -> None:
        parent_end, child_end = socket.socketpair()
        child_fd = child_end.fileno()
        os.set_inheritable(child_fd, True)
        env = dict(os.environ)
        # The writer imports nnpipe from wherever this process did.
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "nnpipe.tracking.writer", str(child_fd)],
                pass_fds=(child_fd,),
                stdin=subprocess.DEVNULL,
                stdout=2,  # keep the caller's stdout clean (``--json`` output)
                env=env,
            )
        finally:
            child_end.close()
        self.owner = os.getpid()
        # The MLFLOW_* variables the writer started with: it inherited this environment.
        self._environment = {k: v for k, v in env.items() if k.startswith("MLFLOW_")}
        self._conn = Connection(parent_end.detach())
        self._lock = threading.Lock()
        self._closed = False

    def alive(self) -> bool:
        return not self._closed and self.process.poll() is None

    def gone(self, doing: str) -> TrackingError:
        """The error for a writer that has exited (marks this handle closed)."""
        code = self.process.poll()
        self._closed = True
        return TrackingError(
            f"the tracking writer process (pid {self.process.pid}) is gone "
            f"(exit code {code}) while {doing}; writes queued before this may be lost. "
            "Its stderr above says why; the next tracker starts a new writer."
        )

    def send(self, op: str, *args: Any, **kwargs: Any) -> None:
        """Queue a write; returns once it is handed to the writer."""
        with self._lock:
            try:
                self._conn.send(("send", op, args, kwargs))
            except (BrokenPipeError, ConnectionResetError, EOFError, OSError) as exc:
                raise self.gone(f"sending {op!r}") from exc

    def call(self, op: str, *args: Any, **kwargs: Any) -> Any:
        """Run ``op`` in the writer after everything queued before it; return its result.

        First the writer's ``MLFLOW_*`` variables (registry URI, credentials) are
        made what this process has now, when they differ.
        """
        environment = {k: v for k, v in os.environ.items() if k.startswith("MLFLOW_")}
        with self._lock:
            try:
                if environment != self._environment:
                    update = {**dict.fromkeys(self._environment), **environment}
                    self._conn.send(("send", _ENVIRONMENT, (update,), {}))
                    self._environment = environment
                self._conn.send(("call", op, args, kwargs))
                reply = self._conn.recv()
            except (BrokenPipeError, ConnectionResetError, EOFError, OSError) as exc:
                raise self.gone(f"running {op!r}") from exc
        if reply[0] == "ok":
            return reply[1]
        _, module, qualname, message, remote_tb = reply
        raise _rebuild(module, qualname, message, remote_tb)

    def wait(self) -> None:
        """Block until every queued write is stored; raise if any of them failed."""
        errors = self.call(_BARRIER)
        if errors:
            raise TrackingError(
                f"{len(errors)} queued tracking write(s) failed:\n" + "\n".join(errors)
            )

    def close(self, timeout: float) -> list[str]:
        """Store what is queued, stop the writer, return the failures it had not reported."""
        if self._closed:
            return []
        errors: list[str] = []
        with self._lock:
            try:
                self._conn.send(("call", _CLOSE, (), {}))
                if self._conn.poll(timeout):
                    errors = list(self._conn.recv()[1])
                else:
                    errors = [f"the tracking writer did not finish within {timeout:.0f} s"]
            except (BrokenPipeError, ConnectionResetError, EOFError, OSError):
                errors = [f"the tracking writer had exited (code {self.process.poll()})"]
            self._closed = True
            self._conn.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        return errors


_shared: ProcessWriter | None = None
_shared_lock = threading.Lock()


def shared_writer() -> ProcessWriter:
    """This process's writer, started on first use (and again after a fork or a crash)."""
    global _shared
    with _shared_lock:
        if _shared is None or _shared.owner != os.getpid() or not _shared.alive():
            if _shared is None:
                atexit.register(_close_shared)
            _shared = ProcessWriter()
        return _shared


def wait_for_writes() -> None:
    """Block until this process's queued tracking writes are stored (raise on failures)."""
    writer = _shared
    if writer is not None and writer.owner == os.getpid() and writer.alive():
        writer.wait()


def _close_shared() -> None:
    writer = _shared
    if writer is None or writer.owner != os.getpid():
        return
    timeout = float(os.environ.get(EXIT_TIMEOUT_ENV, "300"))
    for error in writer.close(timeout):
        _log.error("nnpipe tracking: %s", error)


# -- the writer process -------------------------------------------------------------
def _describe(op: str, args: tuple) -> str:
    run = f" for run {args[1]}" if len(args) > 1 and isinstance(args[1], str) else ""
    return f"{op}{run}"


def _coalesce(messages: list[tuple]) -> list[tuple]:
    """Merge consecutive queued metric-only ``log_batch`` writes of the same run."""
    out: list[tuple] = []
    for message in messages:
        kind, op, args, kwargs = message
        if out and kind == "send" and op == "log_batch" and not kwargs and not any(args[3:]):
            last_kind, last_op, last_args, last_kwargs = out[-1]
            if (
                last_kind == "send"
                and last_op == "log_batch"
                and not last_kwargs
                and last_args[:2] == args[:2]
                and not any(last_args[3:])
                and len(last_args[2]) + len(args[2]) <= _COALESCE_METRICS
            ):
                merged = (*last_args[:2], [*last_args[2], *args[2]], *last_args[3:])
                out[-1] = ("send", "log_batch", merged, {})
                continue
        out.append(message)
    return out


def serve(conn: Connection) -> None:
    """Apply messages in order until the socket closes or the parent says close."""
    operations = _operations()
    errors: list[str] = []
    closed = False
    while not closed:
        messages: list[tuple] = []
        try:
            messages.append(conn.recv())
            while len(messages) < 256 and conn.poll():
                messages.append(conn.recv())
        except (EOFError, OSError):
            closed = True  # the parent is gone: store what it sent, then stop
        for kind, op, args, kwargs in _coalesce(messages):
            if kind == "call" and op in (_BARRIER, _CLOSE):
                _reply(conn, ("ok", errors))
                errors = []
                if op == _CLOSE:
                    return
                continue
            if op == _ENVIRONMENT:
                _mirror_environment(*args)
                continue
            try:
                result = operations[op](*args, **kwargs)
            except Exception as exc:
                if kind == "call":
                    cls = type(exc)
                    reply = ("error", cls.__module__, cls.__qualname__, str(exc))
                    _reply(conn, (*reply, traceback.format_exc()))
                else:
                    line = f"{_describe(op, args)}: {type(exc).__name__}: {exc}"
                    errors.append(line)
                    print(f"nnpipe tracking: {line}", file=sys.stderr, flush=True)
                continue
            if kind == "call":
                _reply(conn, ("ok", result))


def _mirror_environment(variables: dict[str, str | None]) -> None:
    for key, value in variables.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _reply(conn: Connection, message: tuple) -> None:
    try:
        conn.send(message)
    except (BrokenPipeError, ConnectionResetError, OSError):
        pass  # the parent is gone; keep storing what it sent


def main(argv: list[str]) -> int:
    # The parent decides when to stop: Ctrl-C or SIGTERM reaching the whole process
    # group must not lose the writes the parent has already queued.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if len(argv) != 1 or not argv[0].isdigit():
        print("usage: python -m nnpipe.tracking.writer FD (started by nnpipe)", file=sys.stderr)
        return 2
    conn = Connection(int(argv[0]))
    _operations()  # import MLflow while the parent trains
    try:
        import matplotlib.backends.backend_agg  # noqa: F401  (loss-curve PNGs arrive last)
    except ImportError:
        pass
    serve(conn)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
