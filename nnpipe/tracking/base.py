"""The ``Tracker`` protocol, the do-nothing tracker, and helpers that need no MLflow.

Library users who do not want tracking pass :class:`NoopTracker`; flows pass an
``MlflowTracker``. Every method takes an optional ``run_id`` so that work running in
another thread or process can log to a run it was handed explicitly (MLflow's
active run is thread-local, so nothing here relies on it).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

# MLflow refuses longer parameter values; longer ones are cut and marked.
MAX_PARAM_VALUE_LENGTH = 6000
MAX_TAG_VALUE_LENGTH = 5000
# A failed run's error message (tag) and traceback (artifact).
ERROR_TAG = "nnpipe.error"
TRACEBACK_ARTIFACT = "error/traceback.txt"
ENVIRONMENT_PACKAGES = ("nnpipe", "numpy", "dask", "pyarrow", "mlflow")


# The registry alias of the best version so far of a registered model.
CHAMPION_ALIAS = "champion"


@dataclass(frozen=True)
class ValidationScore:
    """A model's validation metric, which decides whether its version becomes champion."""

    name: str
    value: float
    greater_is_better: bool = True

    def beats(self, other: float) -> bool:
        """Strictly better than ``other`` (a tie keeps the current champion)."""
        return self.value > other if self.greater_is_better else self.value < other


@dataclass(frozen=True)
class LoggedModel:
    """Where a logged pyfunc model lives and, when registered, its registry version."""

    model_uri: str
    run_id: str | None
    registered_name: str | None = None
    version: str | None = None
    champion: bool = False  # the version holds the @champion alias

    @property
    def registry_uri(self) -> str | None:
        """``models:/<name>/<version>`` when the model was registered."""
        if self.registered_name is None or self.version is None:
            return None
        return f"models:/{self.registered_name}/{self.version}"

    @property
    def champion_uri(self) -> str | None:
        """``models:/<name>@champion``: the registered model's best version so far."""
        if self.registered_name is None:
            return None
        return f"models:/{self.registered_name}@{CHAMPION_ALIAS}"


@runtime_checkable
class EpochCallback(Protocol):
    """What a training loop calls once per epoch with that epoch's metrics."""

    def __call__(self, metrics: Mapping[str, Any], step: int | None = None) -> None: ...

    def flush(self) -> None: ...


@runtime_checkable
class Tracker(Protocol):
    """What flows and training loops log through; see ``MlflowTracker`` and ``NoopTracker``."""

    run_id: str | None

    def run(
        self, run_name: str | None = None, tags: Mapping[str, Any] | None = None
    ) -> contextlib.AbstractContextManager[str | None]: ...

    def log_params(self, params: Mapping[str, Any], run_id: str | None = None) -> None: ...

    def log_metrics(
        self, metrics: Mapping[str, Any], step: int | None = None, run_id: str | None = None
    ) -> None: ...

    def epoch_callback(self, run_id: str | None = None) -> EpochCallback: ...

    def set_tags(self, tags: Mapping[str, Any], run_id: str | None = None) -> None: ...

    def log_artifact(
        self, path: str | os.PathLike, artifact_path: str | None = None, run_id: str | None = None
    ) -> None: ...

    def log_dict(self, data: Any, filename: str, run_id: str | None = None) -> None: ...

    def log_text(self, text: str, filename: str, run_id: str | None = None) -> None: ...

    def log_figure(self, figure: Any, filename: str, run_id: str | None = None) -> None: ...

    def log_plot(
        self, filename: str, make_figure: Any, *args: Any, run_id: str | None = None, **kwargs: Any
    ) -> None: ...

    def log_model(
        self,
        model_path: str | os.PathLike,
        *,
        scaler_path: str | os.PathLike | None = None,
        input_example: Any = None,
        feature_names: list[str] | None = None,
        registered_model_name: str | None = None,
        run_id: str | None = None,
    ) -> LoggedModel | None: ...


class _NoopEpochCallback:
    def __call__(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        return None

    def flush(self) -> None:
        return None


class NoopTracker:
    """A tracker that records nothing, for library use without MLflow."""

    run_id: str | None = None

    @contextlib.contextmanager
    def run(
        self, run_name: str | None = None, tags: Mapping[str, Any] | None = None
    ) -> Iterator[str | None]:
        """Yield ``None``: there is no run."""
        yield None

    def log_params(self, params: Mapping[str, Any], run_id: str | None = None) -> None:
        """Do nothing."""

    def log_metrics(
        self, metrics: Mapping[str, Any], step: int | None = None, run_id: str | None = None
    ) -> None:
        """Do nothing."""

    def epoch_callback(self, run_id: str | None = None) -> EpochCallback:
        """A callback that drops what it is given."""
        return _NoopEpochCallback()

    def set_tags(self, tags: Mapping[str, Any], run_id: str | None = None) -> None:
        """Do nothing."""

    def log_artifact(
        self, path: str | os.PathLike, artifact_path: str | None = None, run_id: str | None = None
    ) -> None:
        """Do nothing."""

    def log_dict(self, data: Any, filename: str, run_id: str | None = None) -> None:
        """Do nothing."""

    def log_text(self, text: str, filename: str, run_id: str | None = None) -> None:
        """Do nothing."""

    def start_run(self, run_name: str | None = None, tags: Mapping[str, Any] | None = None) -> None:
        """Do nothing; there is no run id."""
        return None

    def end_run(self, status: str = "FINISHED", run_id: str | None = None) -> None:
        """Do nothing."""

    def log_figure(self, figure: Any, filename: str, run_id: str | None = None) -> None:
        """Do nothing."""

    def log_plot(
        self, filename: str, make_figure: Any, *args: Any, run_id: str | None = None, **kwargs: Any
    ) -> None:
        """Do nothing (the figure is not even built)."""

    def log_model(self, model_path: str | os.PathLike, **kwargs: Any) -> LoggedModel | None:
        """Do nothing; there is no model URI."""
        return None


def flatten_params(params: Mapping[str, Any], prefix: str = "", sep: str = ".") -> dict[str, str]:
    """Flatten nested mappings into ``{"a.b.c": "value"}`` with string values MLflow accepts."""
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{sep}{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            if value:
                flat.update(flatten_params(value, name, sep))
            else:
                flat[name] = "{}"
            continue
        flat[name] = _param_value(value)
    return flat


def _param_value(value: Any) -> str:
    if isinstance(value, str):
        text = value
    elif isinstance(value, (list, tuple)):
        text = json.dumps([_scalar(v) for v in value])
    elif isinstance(value, os.PathLike):
        text = os.fspath(value)
    else:
        text = str(_scalar(value))
    if len(text) > MAX_PARAM_VALUE_LENGTH:
        text = text[: MAX_PARAM_VALUE_LENGTH - 14] + "...[truncated]"
    return text


def _scalar(value: Any) -> Any:
    # NumPy scalars, dtypes and classes print more readably through these.
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        return value.item()
    if isinstance(value, type):
        return value.__name__
    if isinstance(value, (list, tuple)):
        return [_scalar(v) for v in value]
    if isinstance(value, (int, float, bool, str)) or value is None:
        return value
    return str(value)


def numeric_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Keep the real-number values of ``metrics`` as floats; drop the rest (strings, None)."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if isinstance(value, bool) or value is None:
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        out[str(key)] = number
    return out


def git_commit(path: str | os.PathLike | None = None) -> str | None:
    """The commit checked out at ``path`` (default: nnpipe's source tree), or None."""
    where = Path(path) if path is not None else Path(__file__).resolve().parents[2]
    return _git_commit(str(where.resolve()))


# Once per directory and process: the code a process runs is the code it imported at
# start, so a later checkout would not describe it anyway.
@functools.lru_cache(maxsize=16)
def _git_commit(where: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and len(commit) == 40 else None


def environment_info(path: str | os.PathLike | None = None) -> dict[str, str]:
    """Versions of nnpipe and its main dependencies, and the git commit when there is one."""
    return dict(_environment_info(str(Path(path).resolve()) if path is not None else None))


# Once per process and path, like the commit: a process runs the packages it imported.
@functools.lru_cache(maxsize=16)
def _environment_info(path: str | None) -> dict[str, str]:
    info: dict[str, str] = {}
    for package in ENVIRONMENT_PACKAGES:
        try:
            info[f"{package}_version"] = metadata.version(package)
        except metadata.PackageNotFoundError:
            info[f"{package}_version"] = "not installed"
    commit = git_commit(path)
    if commit is not None:
        info["git_commit"] = commit
    return info
