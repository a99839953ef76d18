"""Final evaluation metrics logged at the end of a training run (NumPy only)."""

from __future__ import annotations

from typing import Any

import numpy as np

from nnpipe.core.metrics import r2_score


def regression_metrics(y_true: Any, y_pred: Any) -> dict[str, float]:
    """R2, RMSE and MAE over all targets (R2 averaged uniformly over target columns)."""
    t = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    t = t.reshape(t.shape[0], -1) if t.ndim else t.reshape(1, 1)  # (n, n_targets)
    p = p.reshape(p.shape[0], -1) if p.ndim else p.reshape(1, 1)
    if t.shape != p.shape:
        raise ValueError(f"y_true has shape {t.shape} but y_pred has shape {p.shape}")
    if t.shape[0] == 0:
        raise ValueError("cannot evaluate on 0 samples")
    err = p - t
    return {
        "r2": r2_score(t, p),
        "rmse": float(np.sqrt((err**2).mean())),
        "mae": float(np.abs(err).mean()),
    }


def classification_metrics(
    y_true: Any, y_pred: Any, proba: Any = None, classes: Any = None
) -> dict[str, float]:
    """Accuracy, macro F1, and log-loss when class probabilities ``proba`` (n, n_classes) are given.

    Macro F1 is the unweighted mean of each label's ``2 TP / (2 TP + FP + FN)`` over
    the labels present in ``y_true`` or ``y_pred`` (scikit-learn's ``f1_score``
    with ``average='macro'``).
    """
    t = np.asarray(y_true).reshape(-1)
    p = np.asarray(y_pred).reshape(-1)
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} labels but y_pred has {p.size}")
    if t.size == 0:
        raise ValueError("cannot evaluate on 0 samples")
    out = {"accuracy": float(np.mean(t == p)), "f1_macro": _macro_f1(t, p)}
    if proba is not None:
        P = np.asarray(proba, dtype=np.float64)
        if classes is None:
            raise ValueError("classes is required with proba (column order of proba)")
        classes = np.asarray(classes).reshape(-1)
        if P.ndim == 1:  # binary: probability of classes[1]
            P = np.column_stack([1.0 - P, P])
        if P.shape != (t.size, classes.size):
            raise ValueError(f"proba has shape {P.shape}, expected {(t.size, classes.size)}")
        index = {c: i for i, c in enumerate(classes.tolist())}
        missing = sorted({v for v in t.tolist() if v not in index})
        if missing:
            raise ValueError(f"labels {missing} are not among classes {classes.tolist()}")
        cols = np.fromiter((index[v] for v in t.tolist()), dtype=np.int64, count=t.size)
        eps = np.finfo(np.float64).eps
        picked = np.clip(P[np.arange(t.size), cols], eps, 1.0)
        out["log_loss"] = float(-np.mean(np.log(picked)))
    return out


def _macro_f1(t: np.ndarray, p: np.ndarray) -> float:
    labels = np.unique(np.concatenate([t, p]))  # (n_labels,)
    t_idx, p_idx = np.searchsorted(labels, t), np.searchsorted(labels, p)
    tp = np.bincount(t_idx[t_idx == p_idx], minlength=labels.size)
    true_count = np.bincount(t_idx, minlength=labels.size)  # TP + FN
    pred_count = np.bincount(p_idx, minlength=labels.size)  # TP + FP
    return float(np.mean(2.0 * tp / (true_count + pred_count)))
