"""``MlflowTracker``: runs, parameters, batched metrics, artifacts and the run lifecycle.

Everything goes through an explicit run id, never through MLflow's thread-local
active run, so a tracker (or just its ``run_id``) can be handed to other threads,
processes or Dask workers: ``MlflowTracker.attach(run_id, tracking_uri)`` logs to a
run started elsewhere.

The MLflow calls (``_store.py``) are made in the calling thread, synchronously: a
call returns once its write is stored, and a write MLflow refuses raises there.
Epoch metrics are the one exception: the epoch callback buffers them and sends one
``log_batch`` every ``flush_seconds`` (or 1000 values), at the run's end and at
interpreter exit, so the training loop makes no MLflow call per epoch. On a ~26 s
training run the training thread spent about 0.9% of the run in tracking calls,
plus ~0.1 s fixed per run (``benchmarks/bench_tracking.py``); a writer process
and MLflow's asynchronous logging were measured against it and bought nothing
worth their machinery (docs/ARCHITECTURE.md).

Defaults: ``MLFLOW_TRACKING_URI`` when set, otherwise an SQLite store
``<cwd>/mlflow.db`` with artifacts in ``<cwd>/mlartifacts`` (what ``make ui`` opens).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
import traceback
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from .base import (
    ERROR_TAG,
    MAX_TAG_VALUE_LENGTH,
    TRACEBACK_ARTIFACT,
    LoggedModel,
    ValidationScore,
    environment_info,
    flatten_params,
    numeric_metrics,
)
from .epochs import DEFAULT_FLUSH_SECONDS, MlflowEpochCallback
from .stores import absolute_tracking_uri, default_artifact_root, default_tracking_uri

_log = logging.getLogger(__name__)

# Package versions and the git commit are run tags named nnpipe.env.<name>.
ENV_TAG_PREFIX = "nnpipe.env."
RUN_STATUSES = ("FINISHED", "FAILED", "KILLED")
# How often a run with system metrics samples CPU and memory (MLflow's default is 10 s;
# most nnpipe runs last well under a minute).
SYSTEM_METRICS_SECONDS = 2.0
# The Prefect flow a run belongs to (tag value: the flow's name, e.g. train_bp).
FLOW_TAG = "nnpipe.flow"
# On a run ended KILLED because its process died: the run that continued its work.
CONTINUED_BY_TAG = "nnpipe.continued_by"

__all__ = [
    "ERROR_TAG",
    "TRACEBACK_ARTIFACT",
    "MlflowEpochCallback",
    "MlflowTracker",
    "default_artifact_root",
    "default_tracking_uri",
]


class MlflowTracker:
    """Log nnpipe runs to MLflow through an explicit run id.

    Parameters
    ----------
    experiment_name : str
        One experiment per flow (e.g. ``"nnpipe-train"``); created when missing.
    tracking_uri : str, optional
        Default: ``MLFLOW_TRACKING_URI`` or ``sqlite:///<cwd>/mlflow.db``.
    artifact_root : str, optional
        Artifact location for a newly created experiment (``<root>/<experiment>``).
        Default: ``mlartifacts`` beside an SQLite store; the server's choice otherwise.
    run_id : str, optional
        Log to this existing run (e.g. one started in another process).
    registered_model_name : str, optional
        Default name under which :meth:`log_model` registers a model version.
    flush_seconds : float
        How often epoch callbacks send their buffered metrics.
    log_environment : bool
        Tag each new run with package versions (nnpipe, numpy, dask, pyarrow, mlflow)
        and the git commit when there is one (``nnpipe.env.*`` tags).
    """

    def __init__(
        self,
        experiment_name: str = "nnpipe",
        *,
        tracking_uri: str | None = None,
        artifact_root: str | None = None,
        run_id: str | None = None,
        registered_model_name: str | None = None,
        flush_seconds: float = DEFAULT_FLUSH_SECONDS,
        log_environment: bool = True,
    ) -> None:
        if not experiment_name or not isinstance(experiment_name, str):
            raise ValueError(f"experiment_name must be a non-empty string, got {experiment_name!r}")
        if not flush_seconds >= 0:
            raise ValueError(f"flush_seconds must be >= 0, got {flush_seconds!r}")
        self.experiment_name = experiment_name
        self.tracking_uri = absolute_tracking_uri(tracking_uri or default_tracking_uri())
        self.artifact_root = (
            artifact_root if artifact_root is not None else default_artifact_root(self.tracking_uri)
        )
        self.run_id = run_id
        self.registered_model_name = registered_model_name
        self.flush_seconds = flush_seconds
        self.log_environment = log_environment
        self.registered_models: list[LoggedModel] = []
        self._experiment_id: str | None = None
        self._callbacks: dict[str, list[MlflowEpochCallback]] = {}
        self._pending_registrations: dict[str, list[tuple[Any, ...]]] = {}
        self._open_runs: set[str] = set()

    @classmethod
    def attach(cls, run_id: str, tracking_uri: str | None = None) -> MlflowTracker:
        """A tracker logging to the existing run ``run_id`` (for other threads/processes)."""
        tracker = cls(tracking_uri=tracking_uri, run_id=run_id, log_environment=False)
        experiment, name = _store().run_experiment(tracker.tracking_uri, run_id)
        tracker._experiment_id = experiment
        tracker.experiment_name = name
        return tracker

    # -- pickling: ship the URI and run id, not the epoch buffers ----------------------
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_callbacks"] = {}
        state["_pending_registrations"] = {}
        state["_open_runs"] = set()
        return state

    def wait(self) -> None:
        """Send the epoch metrics this tracker's callbacks still buffer.

        Every other write is stored when its call returns, so afterwards everything
        logged through this tracker is in the store.
        """
        for callbacks in list(self._callbacks.values()):
            for callback in callbacks:
                callback.flush()

    @property
    def client(self) -> Any:
        """The ``MlflowClient`` bound to this tracker's URI."""
        return _store().client(self.tracking_uri)

    @property
    def experiment_id(self) -> str:
        """Id of the experiment, created (with the artifact root) when missing."""
        if self._experiment_id is None:
            self._experiment_id = _store().experiment_id(
                self.tracking_uri, self.experiment_name, self.artifact_root
            )
        return self._experiment_id

    def _rid(self, run_id: str | None) -> str:
        rid = run_id or self.run_id
        if rid is None:
            raise RuntimeError(
                "no MLflow run: start one with `with tracker.run(...)` or pass run_id="
            )
        return rid

    # -- lifecycle -----------------------------------------------------------------
    def start_run(
        self,
        run_name: str | None = None,
        tags: Mapping[str, Any] | None = None,
        parent_run_id: str | None = None,
    ) -> str:
        """Create a run, make it this tracker's current run, and return its id."""
        all_tags: dict[str, str] = {}
        if self.log_environment:
            # As tags of the new run: no extra store round trip per run.
            env = environment_info()
            all_tags.update({f"{ENV_TAG_PREFIX}{k}": v for k, v in env.items()})
            if "git_commit" in env:
                all_tags["mlflow.source.git.commit"] = env["git_commit"]
        all_tags.update({k: str(v) for k, v in (tags or {}).items()})
        flow = all_tags.get(FLOW_TAG)
        if flow:  # the MLflow UI's Source column: the flow's module and function
            all_tags.setdefault("mlflow.source.name", f"flows/{flow}.py:{flow}")
            all_tags.setdefault("mlflow.source.type", "JOB")
        if parent_run_id is not None:
            all_tags["mlflow.parentRunId"] = parent_run_id
        self.run_id = _store().create_run(self.tracking_uri, self.experiment_id, run_name, all_tags)
        return self.run_id

    def end_run(self, status: str = "FINISHED", run_id: str | None = None) -> None:
        """Flush this run's epoch callbacks and mark it ``status`` (FINISHED/FAILED/KILLED)."""
        rid = self._rid(run_id)
        if status not in RUN_STATUSES:
            raise ValueError(f"unknown run status {status!r}; use one of {list(RUN_STATUSES)}")
        self._flush_callbacks(rid)
        _store().set_terminated(self.tracking_uri, rid, status)

    def end_abandoned(self, run_id: str, continued_by: str) -> bool:
        """End ``run_id`` KILLED if its process died leaving it RUNNING; True if it did.

        The tag ``nnpipe.continued_by`` names the run that carries on its work.
        """
        if _store().run_status(self.tracking_uri, run_id) != "RUNNING":
            return False
        self.set_tags({CONTINUED_BY_TAG: continued_by}, run_id=run_id)
        _store().set_terminated(self.tracking_uri, run_id, "KILLED")
        return True

    @contextlib.contextmanager
    def run(
        self,
        run_name: str | None = None,
        tags: Mapping[str, Any] | None = None,
        nested: bool = False,
        system_metrics: bool = False,
    ) -> Iterator[str]:
        """Context yielding a new run id; the run ends FINISHED, FAILED or KILLED.

        On an exception the error (type and message) becomes the ``nnpipe.error``
        tag and the traceback the ``error/traceback.txt`` artifact; metrics already
        buffered are sent first, and the exception propagates once all of it is
        stored. A model version requested by :meth:`log_model` is registered only
        when the run succeeds. ``nested=True`` makes the current run the parent.
        ``system_metrics=True`` samples CPU, memory, disk and network use (MLflow's
        ``system/*`` metrics, every ``SYSTEM_METRICS_SECONDS``) while the block runs.
        """
        outer = self.run_id
        rid = self.start_run(run_name, tags, parent_run_id=outer if nested else None)
        self._open_runs.add(rid)
        try:
            try:
                with _store().system_metrics(
                    self.tracking_uri, rid, SYSTEM_METRICS_SECONDS, enabled=system_metrics
                ):
                    yield rid
                # Register only once the work succeeded, before the run is marked FINISHED.
                self._register_pending(rid)
            except BaseException as exc:
                # Not an Exception: Ctrl-C, SIGTERM (e.g. Prefect's TerminationSignal), exit.
                killed = not isinstance(exc, Exception)
                self._record_failure(rid, exc, "KILLED" if killed else "FAILED")
                raise
            self.end_run("FINISHED", run_id=rid)
        finally:
            self._open_runs.discard(rid)
            self._pending_registrations.pop(rid, None)
            self._callbacks.pop(rid, None)
            self.run_id = outer

    def _record_failure(self, rid: str, exc: BaseException, status: str) -> None:
        # The original exception matters more than a tracking problem while reporting it.
        message = f"{type(exc).__name__}: {exc}"
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        try:
            self._flush_callbacks(rid)
            _store().record_failure(self.tracking_uri, rid, message, text, status)
        except Exception as failure:  # e.g. the server is gone: one line, no traceback
            reason = (str(failure).strip().splitlines() or [type(failure).__name__])[0]
            _log.warning("could not record the error of run %s (%s): %s", rid, status, reason)

    # -- parameters, tags, metrics ---------------------------------------------------
    def log_params(self, params: Mapping[str, Any], run_id: str | None = None) -> None:
        """Log (nested) parameters flattened to ``a.b.c`` keys, in batches."""
        rid = self._rid(run_id)
        items = list(flatten_params(params).items())
        if items:
            _store().log_batch(self.tracking_uri, rid, params=items)

    def set_tags(self, tags: Mapping[str, Any], run_id: str | None = None) -> None:
        """Set string tags on the run."""
        rid = self._rid(run_id)
        items = [(str(k), str(v)[:MAX_TAG_VALUE_LENGTH]) for k, v in tags.items()]
        if items:
            _store().log_batch(self.tracking_uri, rid, tags=items)

    def log_metrics(
        self, metrics: Mapping[str, Any], step: int | None = None, run_id: str | None = None
    ) -> None:
        """Log numeric metrics in one ``log_batch`` call (non-numbers skipped)."""
        rid = self._rid(run_id)
        timestamp = int(time.time() * 1000)
        rows = [(k, v, timestamp, step or 0) for k, v in numeric_metrics(metrics).items()]
        if rows:
            _store().log_batch(self.tracking_uri, rid, metrics=rows)

    def epoch_callback(
        self, run_id: str | None = None, flush_seconds: float | None = None
    ) -> MlflowEpochCallback:
        """A callable for the training loop: ``callback({"train_loss": ..., ...}, step=epoch)``."""
        rid = self._rid(run_id)
        callback = MlflowEpochCallback(
            self.tracking_uri,
            rid,
            self.flush_seconds if flush_seconds is None else flush_seconds,
        )
        self._callbacks.setdefault(rid, []).append(callback)
        return callback

    def _flush_callbacks(self, rid: str) -> None:
        for callback in self._callbacks.get(rid, []):
            callback.flush()

    def log_dataset(
        self,
        name: str,
        *,
        digest: str,
        source: str,
        columns: Mapping[str, str],
        n_rows: int,
        context: str = "training",
        run_id: str | None = None,
    ) -> None:
        """Record a dataset the run read as an MLflow dataset input (the UI's Datasets).

        ``digest`` identifies the data's content (at most 36 characters are kept, as
        MLflow stores them), ``source`` is its path or URL, ``columns`` maps column
        names to MLflow types (``double``, ``long``, ``string``...), ``context`` says
        what the run did with it (``training``, ``evaluation``...).
        """
        rid = self._rid(run_id)
        _store().log_dataset(
            self.tracking_uri,
            rid,
            name,
            digest[:36],
            source,
            list(columns.items()),
            n_rows,
            context,
        )

    # -- artifacts -----------------------------------------------------------------
    def log_artifact(
        self,
        path: str | os.PathLike,
        artifact_path: str | None = None,
        run_id: str | None = None,
    ) -> None:
        """Upload a file (or a directory's contents) to the run's artifacts."""
        rid = self._rid(run_id)
        local = Path(path).resolve()
        if not local.exists():
            raise FileNotFoundError(f"artifact {str(path)!r} does not exist")
        _store().log_artifact(self.tracking_uri, rid, str(local), artifact_path)

    def log_dict(self, data: Any, filename: str, run_id: str | None = None) -> None:
        """Write ``data`` as JSON to the artifact ``filename`` (e.g. ``config.json``)."""
        text = json.dumps(data, indent=2, sort_keys=True, default=str)
        self.log_text(text, filename, run_id=run_id)

    def log_text(self, text: str, filename: str, run_id: str | None = None) -> None:
        """Write ``text`` to the artifact ``filename``."""
        _store().log_text(self.tracking_uri, self._rid(run_id), str(text), filename)

    def log_figure(self, figure: Any, filename: str, run_id: str | None = None) -> None:
        """Save a Matplotlib figure as the PNG artifact ``filename`` (e.g. ``plots/loss.png``).

        Rendered and stored before this returns: later edits to the figure are not logged.
        """
        _store().log_figure(self.tracking_uri, self._rid(run_id), figure, filename)

    def log_plot(
        self, filename: str, make_figure: Any, *args: Any, run_id: str | None = None, **kwargs: Any
    ) -> None:
        """Store ``make_figure(*args, **kwargs)`` as the PNG artifact ``filename``.

        E.g. ``tracker.log_plot("plots/loss_curve.png", loss_curve_figure,
        model.loss_curve_)``; the figure is built with Matplotlib's Agg backend (the
        plot functions of ``nnpipe.tracking`` use no display).
        """
        rid = self._rid(run_id)
        self.log_figure(make_figure(*args, **kwargs), filename, run_id=rid)

    # -- the model -----------------------------------------------------------------
    def log_model(
        self,
        model_path: str | os.PathLike,
        *,
        scaler_path: str | os.PathLike | None = None,
        input_example: Any = None,
        feature_names: list[str] | None = None,
        registered_model_name: str | None = None,
        name: str = "model",
        run_id: str | None = None,
        score: ValidationScore | None = None,
    ) -> LoggedModel:
        """Log a model file as a servable MLflow pyfunc model.

        ``model_path`` is a :class:`~nnpipe.core.trained_model.TrainedModel` file
        (network, feature scaler and column names), or a bare network file with an
        optional ``scaler_path`` and ``feature_names``; either way the model is
        logged as one TrainedModel artifact. The pyfunc is MLflow models-from-code
        (``nnpipe/tracking/pyfunc_model.py``), so nothing is pickled.
        With a registered model name (argument or the tracker's default) a new model
        version is created: at the end of the run when it succeeds if this is called
        inside :meth:`run`, otherwise at once. Returns once the model is stored.
        With a ``score`` (its validation metric) the new version also takes the
        ``@champion`` alias if it beats the current champion, or there is none.
        """
        rid = self._rid(run_id)
        logged = _store().log_model(
            self.tracking_uri,
            rid,
            str(Path(model_path).resolve()),
            scaler_path=None if scaler_path is None else str(Path(scaler_path).resolve()),
            input_example=input_example,
            feature_names=feature_names,
            name=name,
        )
        reg_name = registered_model_name or self.registered_model_name
        if reg_name is None:
            return logged
        if rid in self._open_runs:
            self._pending_registrations.setdefault(rid, []).append((logged, reg_name, score))
            return logged
        registered = _store().register_model(self.tracking_uri, logged, reg_name, score)
        self.registered_models.append(registered)
        return registered

    def _register_pending(self, rid: str) -> None:
        for logged, reg_name, score in self._pending_registrations.pop(rid, []):
            registered = _store().register_model(self.tracking_uri, logged, reg_name, score)
            self.registered_models.append(registered)


def _store() -> Any:
    """``nnpipe.tracking._store`` (imported with MLflow on the first call), or the helper
    process running it for a command (``_remote.py``)."""
    from ._remote import store

    return store()
