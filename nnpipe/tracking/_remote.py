"""Where ``MlflowTracker``'s MLflow calls run: here, or in a helper process.

Importing MLflow and its SQL store takes about 1.6 s, and a command's process
spends its first 2.5 s importing Prefect and nnpipe: on this 2-core machine the
two can happen at once. An ``nnpipe`` command therefore starts (:func:`start`)
one helper process that imports ``_store`` (MLflow) straight away and then runs
the ``_store`` functions the tracker asks for, one at a time, replying with the
result or the exception. Every call still waits for its reply, so the order of
calls, their errors and "stored once the call returns" stay as in-process.

The helper runs in a process group of its own and ignores SIGINT and SIGTERM:
a Ctrl-C on the terminal must not take it down before the command records its
run as KILLED. It exits when its request pipe closes, that is when the command
exits or is killed; the reaper ends it too. Without :func:`start` (library use,
Dask workers, tests), the calls run in the calling process, as before.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

_helper: Helper | None = None


def store() -> Any:
    """The object whose ``_store`` functions the tracker calls: the helper, or the module."""
    if _helper is not None:
        return _helper
    from . import _store

    return _store


def start() -> None:
    """Start the helper process (once per process) and route the tracker's calls to it."""
    global _helper
    if _helper is None:
        _helper = Helper()


class HelperFailed(RuntimeError):
    """The helper process died or broke the protocol."""


class Helper:
    """The client side: ``helper.log_text(...)`` runs ``_store.log_text(...)`` in the helper."""

    def __init__(self) -> None:
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "nnpipe.tracking._remote", str(to_child_r), str(from_child_w)],
            pass_fds=(to_child_r, from_child_w),
            stdin=subprocess.DEVNULL,
            process_group=0,  # a Ctrl-C on the terminal goes to the command alone
            stdout=sys.stderr.fileno(),  # what MLflow prints must not reach --json's stdout
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self._out = os.fdopen(self._to_child, "wb")
        self._in = os.fdopen(self._from_child, "rb")
        self._lock = threading.Lock()
        self._environ: dict[str, str] = {}

    def _call(self, name: str, /, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            environ = dict(os.environ)  # e.g. timeouts the command set after starting us
            changed = environ if environ != self._environ else None
            try:
                pickle.dump((name, args, kwargs, changed), self._out)
                self._out.flush()
                ok, value = pickle.load(self._in)
            except (OSError, EOFError, pickle.PickleError) as exc:
                code = self._proc.poll()
                raise HelperFailed(
                    f"the MLflow helper process ended (exit code {code}) during {name}()"
                ) from exc
            self._environ = environ
        if ok:
            return value
        raise value

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name == "client":  # an MlflowClient cannot cross processes: this process's own
            from . import _store

            return _store.client
        return lambda *args, **kwargs: self._call(name, *args, **kwargs)

    @contextlib.contextmanager
    def system_metrics(
        self, uri: str, run_id: str, seconds: float, enabled: bool = True
    ) -> Iterator[None]:
        """MLflow's system-metrics monitor, sampling in the helper (the same machine)."""
        if not enabled:
            yield
            return
        self._call("_start_system_metrics", uri, run_id, seconds)
        try:
            yield
        finally:
            self._call("_stop_system_metrics", run_id)


def _reply_value(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling, else a RuntimeError with its type and message."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")


def serve(requests_fd: int, replies_fd: int) -> None:
    """The helper's loop: import MLflow, then answer calls until the request pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from . import _store

    requests, replies = os.fdopen(requests_fd, "rb"), os.fdopen(replies_fd, "wb")
    monitors: dict[str, contextlib.ExitStack] = {}
    while True:
        try:
            name, args, kwargs, environ = pickle.load(requests)
        except EOFError:
            break
        if environ is not None:
            os.environ.clear()
            os.environ.update(environ)
        try:
            if name == "_start_system_metrics":
                stack = monitors[args[1]] = contextlib.ExitStack()
                stack.enter_context(_store.system_metrics(*args))
                value = None
            elif name == "_stop_system_metrics":
                value = monitors.pop(args[0]).close()
            else:
                value = getattr(_store, name)(*args, **kwargs)
            reply = (True, value)
        except BaseException as exc:
            reply = (False, _reply_value(exc))
        pickle.dump(reply, replies)
        replies.flush()
    os._exit(0)  # every call has been answered; nothing is left to tear down


if __name__ == "__main__":
    serve(int(sys.argv[1]), int(sys.argv[2]))
