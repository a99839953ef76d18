"""Where runs go: the default tracking URI and the artifact root beside it.

No MLflow needed: the flows print ``default_tracking_uri()`` in their reports.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_DB_NAME = "mlflow.db"
DEFAULT_ARTIFACT_DIR = "mlartifacts"


def default_tracking_uri(cwd: str | os.PathLike | None = None) -> str:
    """``MLFLOW_TRACKING_URI`` when set, else ``sqlite:///<cwd>/mlflow.db``."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    base = Path(cwd) if cwd is not None else Path.cwd()
    return f"sqlite:///{(base / DEFAULT_DB_NAME).resolve()}"


def absolute_tracking_uri(uri: str, cwd: str | os.PathLike | None = None) -> str:
    """``uri`` with a relative SQLite file or local directory made absolute.

    A relative store path means the caller's directory at the time the tracker was
    made, even if the process (or a pickled copy elsewhere) changes directory later.
    """
    base = Path(cwd) if cwd is not None else Path.cwd()
    if uri.startswith("sqlite:///"):
        db = Path(uri[len("sqlite:///") :])
        return uri if db.is_absolute() else f"sqlite:///{(base / db).resolve()}"
    if "://" not in uri and not uri.startswith(("databricks", "file:")):
        return str((base / uri).resolve())  # a plain directory: MLflow's file store
    return uri


def default_artifact_root(tracking_uri: str, cwd: str | os.PathLike | None = None) -> str | None:
    """Artifact root for new experiments: beside an SQLite store; a server decides its own."""
    tracking_uri = absolute_tracking_uri(tracking_uri, cwd)
    if tracking_uri.startswith("sqlite:///"):
        db = Path(tracking_uri[len("sqlite:///") :])
        return (db.resolve().parent / DEFAULT_ARTIFACT_DIR).as_uri()
    if tracking_uri.startswith(("http://", "https://", "databricks")):
        return None
    base = Path(cwd) if cwd is not None else Path.cwd()
    return (base.resolve() / DEFAULT_ARTIFACT_DIR).as_uri()
