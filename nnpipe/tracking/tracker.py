"""``MlflowTracker``: runs, parameters, batched metrics, artifacts and the run lifecycle.

Everything goes through one ``MlflowClient`` bound to the tracker's URI and an
explicit run id, never through MLflow's thread-local active run, so a tracker (or
just its ``run_id``) can be handed to other threads, processes or Dask workers:
``MlflowTracker.attach(run_id, tracking_uri)`` logs to a run started elsewhere.

Defaults: ``MLFLOW_TRACKING_URI`` when set, otherwise an SQLite store
``<cwd>/mlflow.db`` with artifacts in ``<cwd>/mlartifacts`` (what ``make ui`` opens).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunStatus, RunTag
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, ErrorCode

from .base import LoggedModel, environment_info, flatten_params, numeric_metrics

_log = logging.getLogger(__name__)

DEFAULT_DB_NAME = "mlflow.db"
DEFAULT_ARTIFACT_DIR = "mlartifacts"
# MLflow's per-request limits for log_batch.
_MAX_METRICS_PER_BATCH = 1000
_MAX_PARAMS_PER_BATCH = 100
_MAX_TAG_VALUE_LENGTH = 5000
ERROR_TAG = "nnpipe.error"
# Package versions and the git commit are run tags named nnpipe.env.<name>.
ENV_TAG_PREFIX = "nnpipe.env."
TRACEBACK_ARTIFACT = "error/traceback.txt"


def default_tracking_uri(cwd: str | os.PathLike | None = None) -> str:
    """``MLFLOW_TRACKING_URI`` when set, else ``sqlite:///<cwd>/mlflow.db``."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    base = Path(cwd) if cwd is not None else Path.cwd()
    return f"sqlite:///{(base / DEFAULT_DB_NAME).resolve()}"


def default_artifact_root(tracking_uri: str, cwd: str | os.PathLike | None = None) -> str | None:
    """Artifact root for new experiments: beside an SQLite store; a server decides its own."""
    if tracking_uri.startswith("sqlite:///"):
        db = Path(tracking_uri[len("sqlite:///") :])
        if not db.is_absolute():
            db = (Path(cwd) if cwd is not None else Path.cwd()) / db
        return (db.resolve().parent / DEFAULT_ARTIFACT_DIR).as_uri()
    if tracking_uri.startswith(("http://", "https://", "databricks")):
        return None
    base = Path(cwd) if cwd is not None else Path.cwd()
    return (base.resolve() / DEFAULT_ARTIFACT_DIR).as_uri()


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "experiment"


class MlflowEpochCallback:
    """Buffers per-epoch metrics and sends them with ``MlflowClient.log_batch``.

    Call it once per epoch with a dict of numbers; the step is ``step`` when given,
    else ``metrics["epoch"]``, else one more than the previous call. Non-numeric
    values are skipped. The buffer is sent every ``flush_seconds`` seconds, when it
    holds ``_MAX_METRICS_PER_BATCH`` values, and on :meth:`flush` (the run's context
    flushes it on every exit, so a failing run keeps what it had logged).
    """

    def __init__(self, client: MlflowClient, run_id: str, flush_seconds: float = 10.0) -> None:
        self.client = client
        self.run_id = run_id
        self.flush_seconds = flush_seconds
        self._buffer: list[Metric] = []
        self._next_step = 0
        self._last_flush = time.monotonic()
        self._lock = threading.Lock()

    def __call__(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Record one epoch's metrics."""
        if step is None:
            step = int(metrics["epoch"]) if "epoch" in metrics else self._next_step
        timestamp = int(time.time() * 1000)
        values = numeric_metrics(metrics)
        values.pop("epoch", None)
        with self._lock:
            self._buffer.extend(Metric(k, v, timestamp, int(step)) for k, v in values.items())
            self._next_step = int(step) + 1
            due = (
                len(self._buffer) >= _MAX_METRICS_PER_BATCH
                or time.monotonic() - self._last_flush >= self.flush_seconds
            )
        if due:
            self.flush()

    def flush(self) -> None:
        """Send everything buffered now."""
        with self._lock:
            pending, self._buffer = self._buffer, []
            self._last_flush = time.monotonic()
        for start in range(0, len(pending), _MAX_METRICS_PER_BATCH):
            chunk = pending[start : start + _MAX_METRICS_PER_BATCH]
            self.client.log_batch(self.run_id, metrics=chunk, synchronous=True)

    def __enter__(self) -> MlflowEpochCallback:
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush()


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
        flush_seconds: float = 10.0,
        log_environment: bool = True,
    ) -> None:
        if not experiment_name or not isinstance(experiment_name, str):
            raise ValueError(f"experiment_name must be a non-empty string, got {experiment_name!r}")
        self.experiment_name = experiment_name
        self.tracking_uri = tracking_uri or default_tracking_uri()
        self.artifact_root = (
            artifact_root if artifact_root is not None else default_artifact_root(self.tracking_uri)
        )
        self.run_id = run_id
        self.registered_model_name = registered_model_name
        self.flush_seconds = flush_seconds
        self.log_environment = log_environment
        self.registered_models: list[LoggedModel] = []
        self._client: MlflowClient | None = None
        self._experiment_id: str | None = None
        self._callbacks: dict[str, list[MlflowEpochCallback]] = {}
        self._pending_registrations: dict[str, list[tuple[LoggedModel, str]]] = {}
        self._open_runs: set[str] = set()

    @classmethod
    def attach(cls, run_id: str, tracking_uri: str | None = None) -> MlflowTracker:
        """A tracker logging to the existing run ``run_id`` (for other threads/processes)."""
        tracker = cls(tracking_uri=tracking_uri, run_id=run_id, log_environment=False)
        run = tracker.client.get_run(run_id)  # fails clearly on an unknown id
        tracker._experiment_id = run.info.experiment_id
        tracker.experiment_name = tracker.client.get_experiment(run.info.experiment_id).name
        return tracker

    # -- pickling: ship the URI and run id, not the client -------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_client"] = None
        state["_callbacks"] = {}
        state["_pending_registrations"] = {}
        state["_open_runs"] = set()
        return state

    @property
    def client(self) -> MlflowClient:
        """The ``MlflowClient`` bound to this tracker's URI."""
        if self._client is None:
            self._client = MlflowClient(tracking_uri=self.tracking_uri)
        return self._client

    @property
    def experiment_id(self) -> str:
        """Id of the experiment, created (with the artifact root) when missing."""
        if self._experiment_id is None:
            self._experiment_id = self._get_or_create_experiment()
        return self._experiment_id

    def _get_or_create_experiment(self) -> str:
        found = self.client.get_experiment_by_name(self.experiment_name)
        if found is not None:
            if found.lifecycle_stage == "deleted":
                raise ValueError(
                    f"experiment {self.experiment_name!r} is deleted in {self.tracking_uri}; "
                    "restore it in the MLflow UI or choose another experiment_name"
                )
            return found.experiment_id
        location = None
        if self.artifact_root is not None:
            location = f"{self.artifact_root.rstrip('/')}/{_slug(self.experiment_name)}"
        try:
            return self.client.create_experiment(self.experiment_name, artifact_location=location)
        except MlflowException as exc:
            # Another process created it between our lookup and our create.
            if exc.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
                raise
            return self.client.get_experiment_by_name(self.experiment_name).experiment_id

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
        if parent_run_id is not None:
            all_tags["mlflow.parentRunId"] = parent_run_id
        run = self.client.create_run(self.experiment_id, run_name=run_name, tags=all_tags)
        self.run_id = run.info.run_id
        return self.run_id

    def end_run(self, status: str = "FINISHED", run_id: str | None = None) -> None:
        """Flush this run's epoch callbacks and mark it ``status`` (FINISHED/FAILED/KILLED)."""
        rid = self._rid(run_id)
        RunStatus.from_string(status)  # readable error on an unknown status
        self._flush_callbacks(rid)
        self.client.set_terminated(rid, status=status)

    @contextlib.contextmanager
    def run(
        self,
        run_name: str | None = None,
        tags: Mapping[str, Any] | None = None,
        nested: bool = False,
    ) -> Iterator[str]:
        """Context yielding a new run id; the run ends FINISHED, FAILED or KILLED.

        On an exception the error (type and message) becomes the ``nnpipe.error``
        tag and the traceback the ``error/traceback.txt`` artifact; metrics already
        buffered are sent first. A model version requested by :meth:`log_model` is
        registered only when the run succeeds. ``nested=True`` makes the current run
        the parent.
        """
        outer = self.run_id
        rid = self.start_run(run_name, tags, parent_run_id=outer if nested else None)
        self._open_runs.add(rid)
        try:
            try:
                yield rid
                # Register only once the work succeeded, before the run is marked FINISHED.
                self._register_pending(rid)
            except KeyboardInterrupt as exc:
                self._record_failure(rid, exc, "KILLED")
                raise
            except BaseException as exc:
                self._record_failure(rid, exc, "FAILED")
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
        try:
            self._flush_callbacks(rid)
        except Exception:
            _log.exception("could not send buffered metrics of failed run %s", rid)
        try:
            self.client.set_tag(rid, ERROR_TAG, message[:_MAX_TAG_VALUE_LENGTH])
            text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            self.client.log_text(rid, text, TRACEBACK_ARTIFACT)
        except Exception:
            _log.exception("could not record the error of run %s", rid)
        try:
            self.client.set_terminated(rid, status=status)
        except Exception:
            _log.exception("could not mark run %s %s", rid, status)

    # -- parameters, tags, metrics ---------------------------------------------------
    def log_params(self, params: Mapping[str, Any], run_id: str | None = None) -> None:
        """Log (nested) parameters flattened to ``a.b.c`` keys, in batches."""
        rid = self._rid(run_id)
        items = [Param(k, v) for k, v in flatten_params(params).items()]
        for start in range(0, len(items), _MAX_PARAMS_PER_BATCH):
            self.client.log_batch(rid, params=items[start : start + _MAX_PARAMS_PER_BATCH])

    def set_tags(self, tags: Mapping[str, Any], run_id: str | None = None) -> None:
        """Set string tags on the run."""
        rid = self._rid(run_id)
        items = [RunTag(str(k), str(v)[:_MAX_TAG_VALUE_LENGTH]) for k, v in tags.items()]
        if items:
            self.client.log_batch(rid, tags=items)

    def log_metrics(
        self, metrics: Mapping[str, Any], step: int | None = None, run_id: str | None = None
    ) -> None:
        """Log numeric metrics now, in one ``log_batch`` call (non-numbers skipped)."""
        rid = self._rid(run_id)
        timestamp = int(time.time() * 1000)
        items = [Metric(k, v, timestamp, step or 0) for k, v in numeric_metrics(metrics).items()]
        for start in range(0, len(items), _MAX_METRICS_PER_BATCH):
            self.client.log_batch(rid, metrics=items[start : start + _MAX_METRICS_PER_BATCH])

    def epoch_callback(
        self, run_id: str | None = None, flush_seconds: float | None = None
    ) -> MlflowEpochCallback:
        """A callable for the training loop: ``callback({"train_loss": ..., ...}, step=epoch)``."""
        rid = self._rid(run_id)
        callback = MlflowEpochCallback(
            self.client, rid, self.flush_seconds if flush_seconds is None else flush_seconds
        )
        self._callbacks.setdefault(rid, []).append(callback)
        return callback

    def _flush_callbacks(self, rid: str) -> None:
        for callback in self._callbacks.get(rid, []):
            callback.flush()

    # -- artifacts -----------------------------------------------------------------
    def log_artifact(
        self,
        path: str | os.PathLike,
        artifact_path: str | None = None,
        run_id: str | None = None,
    ) -> None:
        """Upload a file (or a directory's contents) to the run's artifacts."""
        rid = self._rid(run_id)
        path = Path(path)
        if path.is_dir():
            self.client.log_artifacts(rid, str(path), artifact_path)
        elif path.is_file():
            self.client.log_artifact(rid, str(path), artifact_path)
        else:
            raise FileNotFoundError(f"artifact {str(path)!r} does not exist")

    def log_dict(self, data: Any, filename: str, run_id: str | None = None) -> None:
        """Write ``data`` as JSON to the artifact ``filename`` (e.g. ``config.json``)."""
        text = json.dumps(data, indent=2, sort_keys=True, default=str)
        self.log_text(text, filename, run_id=run_id)

    def log_text(self, text: str, filename: str, run_id: str | None = None) -> None:
        """Write ``text`` to the artifact ``filename``."""
        self.client.log_text(self._rid(run_id), text, filename)

    def log_figure(self, figure: Any, filename: str, run_id: str | None = None) -> None:
        """Save a Matplotlib figure as the PNG artifact ``filename`` (e.g. ``plots/loss.png``)."""
        rid = self._rid(run_id)
        with tempfile.TemporaryDirectory(prefix="nnpipe-fig-") as tmp:
            local = Path(tmp) / Path(filename).name
            figure.savefig(local, dpi=100, format="png")
            parent = str(Path(filename).parent)
            self.client.log_artifact(rid, str(local), None if parent == "." else parent)

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
    ) -> LoggedModel:
        """Log the ``.npz`` network (+ feature scaler) as a servable MLflow pyfunc model.

        The network and scaler files are copied in as artifacts; the pyfunc is MLflow
        models-from-code (``nnpipe/tracking/pyfunc_model.py``), so nothing is pickled.
        With a registered model name (argument or the tracker's default) a new model
        version is created: at the end of the run when it succeeds if this is called
        inside :meth:`run`, otherwise at once.
        """
        from .model import log_pyfunc_model, register_model

        rid = self._rid(run_id)
        logged = log_pyfunc_model(
            self.tracking_uri,
            rid,
            model_path,
            scaler_path=scaler_path,
            input_example=input_example,
            feature_names=feature_names,
            name=name,
        )
        reg_name = registered_model_name or self.registered_model_name
        if reg_name is None:
            return logged
        if rid in self._open_runs:
            self._pending_registrations.setdefault(rid, []).append((logged, reg_name))
            return logged
        registered = register_model(self.tracking_uri, logged, reg_name)
        self.registered_models.append(registered)
        return registered

    def _register_pending(self, rid: str) -> None:
        from .model import register_model

        for logged, reg_name in self._pending_registrations.pop(rid, []):
            self.registered_models.append(register_model(self.tracking_uri, logged, reg_name))
