"""``MlflowEpochCallback``: per-epoch metrics buffered, then sent as one ``log_batch``.

One MLflow call per ``flush_seconds`` (or per 1000 values) instead of one per epoch,
made in the training thread. Whatever is still buffered when the interpreter exits
is sent then, so a script that never ends its run keeps its metrics.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from collections.abc import Mapping
from typing import Any

from .base import numeric_metrics

_log = logging.getLogger(__name__)

# A run's epoch metrics go out at least this often (the MLflow UI shows them live).
DEFAULT_FLUSH_SECONDS = 2.0
_MAX_BUFFERED_METRICS = 1000


# Epoch callbacks still holding metrics at interpreter exit send them then.
_live_callbacks: weakref.WeakSet[MlflowEpochCallback] = weakref.WeakSet()
_exit_flush_registered = False


def _flush_at_exit() -> None:
    for callback in list(_live_callbacks):
        try:
            callback.flush()
        except Exception:
            _log.exception("nnpipe tracking: epoch metrics of run %s lost at exit", callback.run_id)


def _flush_callbacks_at_exit(callback: MlflowEpochCallback) -> None:
    global _exit_flush_registered
    _live_callbacks.add(callback)
    if not _exit_flush_registered:
        # Registered once MLflow is imported (the run exists by now), so it runs before
        # MLflow's own exit handlers: atexit runs handlers last-in, first-out.
        atexit.register(_flush_at_exit)
        _exit_flush_registered = True


class MlflowEpochCallback:
    """Buffers per-epoch metrics and sends them with ``MlflowClient.log_batch``.

    Call it once per epoch with a dict of numbers; the step is ``step`` when given,
    else ``metrics["epoch"]``, else one more than the previous call. Non-numeric
    values are skipped. The buffer goes out every ``flush_seconds`` seconds, when it
    holds 1000 values, on :meth:`flush` (the run's end flushes it, also when the run
    fails, so a failing run keeps what it had logged) and at interpreter exit.
    """

    def __init__(
        self,
        tracking_uri: str,
        run_id: str,
        flush_seconds: float = DEFAULT_FLUSH_SECONDS,
    ) -> None:
        self.tracking_uri = tracking_uri
        self.run_id = run_id
        self.flush_seconds = flush_seconds
        self._buffer: list[tuple[str, float, int, int]] = []
        self._next_step = 0
        self._last_flush = time.monotonic()
        self._lock = threading.Lock()
        _flush_callbacks_at_exit(self)

    def __call__(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Record one epoch's metrics."""
        if step is None:
            step = int(metrics["epoch"]) if "epoch" in metrics else self._next_step
        timestamp = int(time.time() * 1000)
        values = numeric_metrics(metrics)
        values.pop("epoch", None)
        with self._lock:
            self._buffer.extend((k, v, timestamp, int(step)) for k, v in values.items())
            self._next_step = int(step) + 1
            due = (
                len(self._buffer) >= _MAX_BUFFERED_METRICS
                or time.monotonic() - self._last_flush >= self.flush_seconds
            )
        if due:
            self.flush()

    def flush(self) -> None:
        """Send everything buffered now (one ``log_batch``, stored when this returns)."""
        with self._lock:
            pending, self._buffer = self._buffer, []
            self._last_flush = time.monotonic()
        if pending:
            from ._remote import store  # MLflow imported only once there is something to send

            store().log_batch(self.tracking_uri, self.run_id, pending)

    def __enter__(self) -> MlflowEpochCallback:
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush()
