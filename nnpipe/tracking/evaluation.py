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


class RegressionMetrics:
    """:func:`regression_metrics` and ranges, accumulated chunk by chunk in constant memory.

    The target's sum of squares about its mean is combined across chunks by each
    chunk's own mean (Chan et al.), as exact as one pass over all rows.
    """

    def __init__(self) -> None:
        self.n = 0
        self.mean = self.m2 = self.sse = 0.0
        self.sae = 0.0
        self.t_min = self.p_min = np.inf
        self.t_max = self.p_max = -np.inf
        self.t_negative = self.p_negative = 0

    def update(self, y_true: Any, y_pred: Any) -> None:
        t = np.asarray(y_true, dtype=np.float64)
        p = np.asarray(y_pred, dtype=np.float64)
        t, p = t.reshape(t.shape[0], -1), p.reshape(p.shape[0], -1)
        if t.shape != p.shape:
            raise ValueError(f"y_true has shape {t.shape} but y_pred has shape {p.shape}")
        k = len(t)
        if k == 0:
            return
        mean, err = t.mean(axis=0), p - t
        m2 = ((t - mean) ** 2).sum(axis=0)
        delta, n = mean - self.mean, self.n + k
        self.m2 = self.m2 + m2 + delta**2 * self.n * k / n
        self.mean, self.n = self.mean + delta * k / n, n
        self.sse = self.sse + (err**2).sum(axis=0)
        self.sae += float(np.abs(err).sum())
        self.t_min, self.t_max = min(self.t_min, t.min()), max(self.t_max, t.max())
        self.p_min, self.p_max = min(self.p_min, p.min()), max(self.p_max, p.max())
        self.t_negative += int((t < 0).sum())
        self.p_negative += int((p < 0).sum())

    def result(self) -> dict[str, float]:
        """R2, RMSE, MAE, row count, ranges and negative fractions of what was added."""
        if self.n == 0:
            raise ValueError("cannot evaluate on 0 samples")
        sse, m2 = np.atleast_1d(self.sse), np.atleast_1d(self.m2)
        with np.errstate(divide="ignore", invalid="ignore"):
            r2 = np.where(m2 > 0, 1.0 - sse / m2, np.where(sse == 0, 1.0, 0.0))
        values = self.n * len(sse)
        return {
            "r2": float(r2.mean()),
            "rmse": float(np.sqrt(sse.sum() / values)),
            "mae": self.sae / values,
            "val_rows": float(self.n),
            "prediction_min": float(self.p_min),
            "prediction_max": float(self.p_max),
            "target_min": float(self.t_min),
            "target_max": float(self.t_max),
            "negative_prediction_fraction": self.p_negative / values,
            "negative_target_fraction": self.t_negative / values,
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
