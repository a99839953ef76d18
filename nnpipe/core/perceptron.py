"""Rosenblatt's perceptron: a step activation and the perceptron learning rule.

For each row in turn, if ``t * (w . x + b) <= 0`` (wrong side of the boundary,
``t`` in {-1, +1}) then ``w += eta0 * t * x`` and ``b += eta0 * t``. On linearly
separable data this stops making mistakes after finitely many updates; on XOR it
never does, and ``fit`` reports that (``converged_ = False`` and a warning). More
than two classes are handled one-vs-rest, one weight vector per class.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .params import Params
from .serialization import ModelFileError, NpzFileMixin, params_from_json, params_to_json, require
from .sklearn_compat import ConvergenceWarning, sklearn_class, sklearn_tags
from .validation import (
    check_array,
    check_class_labels,
    check_is_fitted,
    check_n_features,
    check_positive,
    check_rng,
    resolve_dtype,
)

__all__ = ["ConvergenceWarning", "Perceptron"]


# Rows scored per matrix product while looking for the next mistake (see _one_pass):
# the first block after a mistake, and the cap as mistake-free blocks double it.
_BLOCK, _MAX_BLOCK = 8, 1024


def _one_pass(X: np.ndarray, T: np.ndarray, W: np.ndarray, eta: Any) -> int:
    """One pass of the perceptron rule over the rows of X in order; updates W; returns mistakes.

    X (n, d) holds the inputs (with a column of ones when the bias is learned, its
    row of W then being the bias), T (n, k) the targets in {-1, +1}, W (d, k) the
    weights. The same updates as visiting row by row, found faster: rows up to the
    next mistake leave W unchanged, so a block of them is scored with one matrix
    product, the first wrong row updates W, and scoring resumes after it (a few
    NumPy calls per mistake instead of per row; measured in the commit message).
    """
    mistakes, start, n, block = 0, 0, X.shape[0], _BLOCK
    while start < n:
        Tb = T[start : start + block]  # (m, k)
        wrong = np.multiply(Tb, X[start : start + block] @ W) <= 0  # (m, k); 0 is wrong too
        hit = wrong.any(axis=1)  # (m,)
        i = int(hit.argmax())  # the first wrong row, if any
        if not hit[i]:
            start += Tb.shape[0]
            block = min(2 * block, _MAX_BLOCK)
            continue
        step = eta * Tb[i] * wrong[i]  # (k,): +-eta on the wrong columns, 0 elsewhere
        W += X[start + i, :, None] * step  # the outer product x step
        mistakes += int(np.count_nonzero(step))
        start += i + 1
        block = max(2 * (i + 1), _BLOCK)
    return mistakes


class Perceptron(NpzFileMixin, Params):
    """Binary (or one-vs-rest multiclass) perceptron.

    Parameters
    ----------
    eta0 : float, default 1.0
        Step of each update.
    max_iter : int, default 1000
        Maximum passes over the data.
    fit_intercept : bool, default True
        Learn the bias ``b``.
    shuffle : bool, default True
        Visit rows in a new seeded order each pass.
    random_state : None, int or numpy.random.Generator
    dtype : {'float32', 'float64'}, default 'float64'
    verbose : bool, default False
        Print the number of mistakes per pass.

    Attributes
    ----------
    coef_ : ndarray (1, n_features) for two classes, else (n_classes, n_features)
    intercept_ : ndarray (1,) or (n_classes,)
    classes_ : ndarray (n_classes,)
    errors_ : list of int
        Mistakes (updates) in each pass.
    n_iter_ : int
        Passes made. ``converged_``: True when the last pass made no mistake.
    """

    def __init__(
        self,
        eta0=1.0,
        max_iter=1000,
        fit_intercept=True,
        shuffle=True,
        random_state=None,
        dtype="float64",
        verbose=False,
    ):
        self.eta0 = eta0
        self.max_iter = max_iter
        self.fit_intercept = fit_intercept
        self.shuffle = shuffle
        self.random_state = random_state
        self.dtype = dtype
        self.verbose = verbose

    def __sklearn_tags__(self):
        return sklearn_tags("classifier")

    def fit(self, X: Any, y: Any) -> Perceptron:
        """Learn from X (n_samples, n_features) and labels y (n_samples,)."""
        check_positive("eta0", self.eta0)
        check_positive("max_iter", self.max_iter, integer=True)
        dtype = resolve_dtype(self.dtype)
        rng = check_rng(self.random_state)
        X = check_array(X, dtype=dtype)
        y = check_class_labels(y, "Perceptron")
        if y.shape[0] != X.shape[0]:
            raise ValueError(
                f"y must be 1-D with one label per row of X ({X.shape[0]}); got shape {y.shape}"
            )
        self.classes_ = np.unique(y)
        if len(self.classes_) < 2:
            raise ValueError(
                f"need at least 2 classes; got {len(self.classes_)} class(es): "
                f"{self.classes_.tolist()}"
            )
        idx = np.searchsorted(self.classes_, y)
        k = 1 if len(self.classes_) == 2 else len(self.classes_)
        # Targets in {-1, +1}, one column per weight vector.
        T = np.where(idx[:, None] == (np.arange(k) + (k == 1)), 1.0, -1.0).astype(dtype)
        if self.fit_intercept:  # a column of ones: the last row of W is the bias
            X = np.hstack([X, np.ones((X.shape[0], 1), dtype=dtype)])
        W = np.zeros((X.shape[1], k), dtype=dtype)  # (n_features [+ 1], k)
        eta = dtype.type(self.eta0)
        self.errors_: list[int] = []
        self.converged_ = False
        for _ in range(self.max_iter):
            order = rng.permutation(X.shape[0]) if self.shuffle else slice(None)
            mistakes = _one_pass(X[order], T[order], W, eta)
            self.errors_.append(mistakes)
            if self.verbose:
                print(f"Pass {len(self.errors_)}, mistakes = {mistakes}")
            if mistakes == 0:
                self.converged_ = True
                break
        self.n_iter_ = len(self.errors_)
        n_features = X.shape[1] - self.fit_intercept
        self.coef_ = np.ascontiguousarray(W[:n_features].T)
        self.intercept_ = W[n_features].copy() if self.fit_intercept else np.zeros(k, dtype)
        self.n_features_in_ = n_features
        if not self.converged_:
            warnings.warn(
                f"Perceptron did not converge in max_iter={self.max_iter} passes "
                f"({self.errors_[-1]} mistakes in the last); the classes are probably not "
                "linearly separable",
                sklearn_class(ConvergenceWarning),
                stacklevel=2,
            )
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """Signed distance-like score w . x + b: (n_samples,) or (n_samples, n_classes)."""
        check_is_fitted(self, "coef_")
        X = check_array(X, dtype=self.coef_.dtype)
        check_n_features(X, self.n_features_in_, "Perceptron")
        scores = X @ self.coef_.T + self.intercept_
        return scores.ravel() if scores.shape[1] == 1 else scores

    def predict(self, X: Any) -> np.ndarray:
        """Step activation: the class on the positive side (or the highest score)."""
        scores = self.decision_function(X)
        idx = (scores > 0).astype(np.intp) if scores.ndim == 1 else scores.argmax(axis=1)
        return self.classes_[idx]

    def score(self, X: Any, y: Any) -> float:
        """Accuracy (a column-vector y counts as 1-D)."""
        return float(np.mean(self.predict(X) == np.asarray(y).ravel()))

    def boundary_line(self) -> tuple[float, float]:
        """(slope, offset) of the 2-feature boundary x2 = slope * x1 + offset, for plotting."""
        check_is_fitted(self, "coef_")
        if self.coef_.shape != (1, 2):
            raise ValueError(
                "boundary_line needs a two-class perceptron on exactly 2 features; "
                f"coef_ has shape {self.coef_.shape}"
            )
        w1, w2 = (float(v) for v in self.coef_[0])
        if w2 == 0.0:
            raise ValueError(f"the boundary is vertical (x1 = {-self.intercept_[0] / w1:g})")
        return -w1 / w2, -float(self.intercept_[0]) / w2

    def to_arrays(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """The state :meth:`save` writes, as (arrays, JSON-able meta) to embed in another file."""
        check_is_fitted(self, "coef_")
        params = params_to_json(self.get_params(), "Perceptron")
        arrays = {"coef_": self.coef_, "intercept_": self.intercept_, "classes_": self.classes_}
        meta = {
            "kind": "Perceptron",
            "params": params,
            "errors_": self.errors_,
            "converged_": self.converged_,
        }
        return arrays, meta

    @classmethod
    def from_arrays(
        cls, arrays: dict[str, np.ndarray], meta: dict[str, Any], path: Any = "<memory>"
    ) -> Perceptron:
        """Rebuild a perceptron from :meth:`to_arrays` output; ``path`` names it in errors."""
        try:
            model = cls(**params_from_json(meta["params"]))
            model.coef_ = require(arrays, "coef_", (None, None), path)
            k = model.coef_.shape[0]
            model.intercept_ = require(arrays, "intercept_", (k,), path)
            model.classes_ = require(arrays, "classes_", (None,), path)
            model.errors_ = [int(e) for e in meta["errors_"]]
            model.converged_ = bool(meta["converged_"])
        except (KeyError, TypeError) as exc:
            raise ModelFileError(f"{str(path)!r} is not a valid Perceptron file: {exc}") from exc
        model.n_iter_ = len(model.errors_)
        model.n_features_in_ = model.coef_.shape[1]
        return model
