"""Experiment tracking behind a small ``Tracker`` protocol; the only package importing mlflow.

``NoopTracker``, the helpers in ``base`` and the store defaults in ``stores`` need no
MLflow. ``MlflowTracker`` makes the MLflow calls (``_store.py``, which imports MLflow
on the first call) in the calling thread, synchronously; epoch metrics are buffered
and sent as one ``log_batch`` every couple of seconds (``epochs.py``). The plots
load Matplotlib and the pyfunc model helpers MLflow, on first use.
"""

from __future__ import annotations

from nnpipe._lazy import lazy_attributes

from .base import (
    CHAMPION_ALIAS,
    EpochCallback,
    LoggedModel,
    NoopTracker,
    Tracker,
    ValidationScore,
    environment_info,
    flatten_params,
    git_commit,
)

_LAZY = {
    "MlflowTracker": "nnpipe.tracking.tracker",
    "MlflowEpochCallback": "nnpipe.tracking.epochs",
    "default_tracking_uri": "nnpipe.tracking.stores",
    "default_artifact_root": "nnpipe.tracking.stores",
    "log_pyfunc_model": "nnpipe.tracking.model",
    "register_model": "nnpipe.tracking.model",
    "load_scaler": "nnpipe.tracking.model",
    "use_tracking_uri": "nnpipe.tracking.model",
    "regression_metrics": "nnpipe.tracking.evaluation",
    "RegressionMetrics": "nnpipe.tracking.evaluation",
    "classification_metrics": "nnpipe.tracking.evaluation",
    "loss_curve_figure": "nnpipe.tracking.plots",
    "loss_curve_svg": "nnpipe.tracking.loss_svg",
    "render_png": "nnpipe.tracking.plots",
    "confusion_matrix": "nnpipe.tracking.plots",
    "confusion_matrix_figure": "nnpipe.tracking.plots",
    "energy_trajectory_figure": "nnpipe.tracking.plots",
    "capacity_curve_figure": "nnpipe.tracking.plots",
    "decision_boundary_figure": "nnpipe.tracking.pictures",
    "hopfield_recall_figure": "nnpipe.tracking.pictures",
    "save_png": "nnpipe.tracking.pictures",
    "energy_trajectories": "nnpipe.core.hopfield",
    "log_leaderboard": "nnpipe.tracking.sweep",
    "validation_loss_figure": "nnpipe.tracking.sweep",
    "promote_if_better": "nnpipe.tracking.model",
}

__all__ = [
    "CHAMPION_ALIAS",
    "EpochCallback",
    "LoggedModel",
    "NoopTracker",
    "Tracker",
    "ValidationScore",
    "environment_info",
    "flatten_params",
    "git_commit",
    *_LAZY,
]


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, __all__)
