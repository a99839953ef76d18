"""Multi-layer perceptrons trained by back-propagation: regression and classification.

The regressor uses an identity output and standardised targets by default, so
negative targets are predicted as negative numbers; an output activation whose
range cannot reach the (scaled) targets is refused with an error saying so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..metrics import r2_score
from ..scalers import SCALERS, MinMaxScaler, StandardScaler, scaler_from_arrays
from ..serialization import file_name, load_npz, require
from ..threads import blas_threads
from ..validation import (
    check_array,
    check_class_labels,
    check_is_fitted,
    check_n_features,
    check_option,
    check_y_given,
)
from .activations import ACTIVATIONS, activation_names
from .base import BaseMLP, DivergenceError
from .losses import LOSSES, regression_losses

__all__ = ["MLPRegressor", "MLPClassifier", "DivergenceError", "load_model", "network_from_arrays"]

_SHARED_DOC = """

    Parameters
    ----------
    hidden_layer_sizes : int or tuple of int, default (100,)
        Units of each hidden layer; the network is n_features -> ... -> n_outputs.
    activation : {'relu', 'tanh', 'logistic' (alias 'sigmoid'), 'leaky_relu', 'identity'}
        Hidden-layer activation, default 'relu'.
    solver : {'adam', 'sgd'}, default 'adam'
    alpha : float, default 1e-4
        L2 penalty: adds 0.5 * alpha * ||W||^2 / batch_rows to each batch's loss.
    l1 : float, default 0
        L1 penalty: adds l1 * sum|W| / batch_rows to each batch's loss.
    batch_size : int or 'auto', default 'auto'
        Rows per optimizer step; 'auto' = min(200, n_samples).
    learning_rate : {'constant', 'invscaling', 'adaptive'}, default 'constant'
        Schedule for solver='sgd' (adam keeps learning_rate_init).
    learning_rate_init, power_t, momentum, nesterovs_momentum, beta_1, beta_2, epsilon
        Optimizer settings, as in scikit-learn.
    max_iter : int, default 200
        Maximum number of epochs for ``fit``.
    shuffle : bool, default True
        Shuffle rows each epoch (with the estimator's own seeded generator).
    random_state : None, int or numpy.random.Generator
        Seeds weight initialisation, shuffling and the validation split.
    tol, n_iter_no_change : float, int
        Stop (or, with 'adaptive', divide the learning rate by 5) after more than
        n_iter_no_change epochs without the monitored loss improving by tol.
    early_stopping : bool, default False
        Hold out validation_fraction of the rows, monitor their loss, restore the
        best epoch's weights at the end.
    validation_fraction : float, default 0.1
    warm_start : bool, default False
        ``fit`` continues from the current weights and optimizer state.
    verbose : bool, default False
        Print the loss after each epoch.
    dtype : {'float32', 'float64'}, default 'float32'
    n_threads : int or None, default None
        BLAS threads while training/predicting; None chooses by layer size and by
        how busy the machine is (see nnpipe.core.threads).
"""


@dataclass(eq=False, repr=False)
class MLPRegressor(BaseMLP):
    __doc__ = (
        "Multi-layer perceptron regressor (back-propagation, NumPy)."
        + _SHARED_DOC
        + """    loss : {'squared_error', 'huber', 'absolute_error'}, default 'squared_error'
        Computed on scaled targets (Huber's threshold is 1 scaled unit).
    output_activation : str, default 'identity'
        Must be able to reach the scaled targets, else fit raises ValueError.
    target_scaling : {'standard', 'minmax', None}, default 'standard'
        Transform fitted on y and inverted by ``predict``.

    Attributes
    ----------
    coefs_ : list of ndarray (n_units_i, n_units_{i+1})
    intercepts_ : list of ndarray (n_units_{i+1},)
    target_scaler_ : fitted scaler or None
    loss_curve_, validation_loss_curve_, validation_scores_ : list of float
        Per-epoch training objective, validation loss and validation R^2.
    best_loss_ : float
        Best monitored loss (validation loss when early stopping, else training).
    n_iter_ : int
        Epochs recorded. ``t_``: samples seen.
    batch_loss_ : float
        Mean objective over the batches of the last ``partial_fit`` call.
    converged_ : bool
        ``fit`` stopped because the loss stopped improving (not at max_iter).
    learning_rate_ : float
        Current learning rate.
    n_features_in_, n_outputs_ : int

    Methods beyond scikit-learn's: ``data_loss(X, y)`` (mean data loss, without
    the penalty, in training units), ``record_epoch``, ``restore_best_weights``,
    ``set_target_scaler``, ``save``, ``load``.
    """
    )

    loss: str = "squared_error"
    output_activation: str = "identity"
    target_scaling: str | None = "standard"

    _estimator_type = "regressor"
    _multi_output = True

    @property
    def _output_name(self) -> str:
        return {"sigmoid": "logistic"}.get(self.output_activation, self.output_activation)

    def _validate_params(self) -> None:
        super()._validate_params()
        check_option("loss", self.loss, regression_losses())
        check_option("output_activation", self.output_activation, activation_names())
        check_option("target_scaling", self.target_scaling, [*SCALERS, None])

    def set_target_scaler(self, scaler: StandardScaler | MinMaxScaler | None) -> MLPRegressor:
        """Fix the target transform (a fitted nnpipe scaler) instead of fitting one on y."""
        if scaler is not None:
            if not isinstance(scaler, StandardScaler | MinMaxScaler):
                raise ValueError(
                    f"set_target_scaler expects a fitted nnpipe StandardScaler or "
                    f"MinMaxScaler; got {type(scaler).__name__}"
                )
            check_is_fitted(scaler, "n_samples_seen_")
            if hasattr(self, "n_outputs_") and scaler.n_features_in_ != self.n_outputs_:
                raise ValueError(
                    f"the target scaler has {scaler.n_features_in_} columns but the model "
                    f"predicts {self.n_outputs_} targets"
                )
        self._fixed_target_scaler = scaler
        self._has_fixed_target_scaler = True
        self.target_scaler_ = scaler
        return self

    def _prepare(self, X: Any, y: Any, *, reset: bool) -> tuple[np.ndarray, np.ndarray]:
        dtype = self._dtype if reset else self._params.dtype
        X = check_array(X, dtype=dtype)
        y_in = np.asarray(check_y_given(y, type(self).__name__))
        if y_in.ndim not in (1, 2):
            raise ValueError(f"y must be 1-D or 2-D; got shape {y_in.shape}")
        # float64 until scaled, so neither the scaler's statistics nor the scaled
        # targets see values rounded to a float32 model's dtype.
        Y = check_array(y_in.reshape(-1, 1) if y_in.ndim == 1 else y_in, name="y", dtype=np.float64)
        if Y.shape[0] != X.shape[0]:
            raise ValueError(
                f"X and y have different numbers of samples: X has {X.shape[0]}, y has {Y.shape[0]}"
            )
        if reset:
            self._y_1d = y_in.ndim == 1
            if getattr(self, "_has_fixed_target_scaler", False):
                self.target_scaler_ = self._fixed_target_scaler
            elif self.target_scaling is None:
                self.target_scaler_ = None
            else:
                self.target_scaler_ = SCALERS[self.target_scaling](dtype=dtype.name).fit(Y)
        else:
            check_n_features(X, self.n_features_in_, type(self).__name__)
            if Y.shape[1] != self.n_outputs_:
                raise ValueError(
                    f"y has {Y.shape[1]} target columns, but {type(self).__name__} was "
                    f"fitted with {self.n_outputs_}"
                )
        if self.target_scaler_ is not None:  # the model's dtype, whatever the scaler's
            Y = self.target_scaler_.transform(Y, dtype=dtype)
        else:
            Y = check_array(Y, name="y", dtype=dtype)
        self._check_reachable(Y)
        return X, Y

    def _check_reachable(self, Y: np.ndarray) -> None:
        act = ACTIVATIONS[self._output_name]
        lo, hi = float(Y.min()), float(Y.max())
        if lo >= act.low and hi <= act.high:
            return
        scaled = (
            "" if self.target_scaler_ is None else f" after {type(self.target_scaler_).__name__}"
        )
        raise ValueError(
            f"output_activation={self.output_activation!r} has range [{act.low:g}, "
            f"{act.high:g}] but the targets{scaled} span [{lo:.6g}, {hi:.6g}], so the "
            "network could never predict them. Use output_activation='identity' (the "
            "default for regression), or scale the targets into the activation's range."
        )

    def fit(self, X: Any, y: Any) -> MLPRegressor:
        """Train on X (n_samples, n_features) and y (n_samples,) or (n_samples, n_outputs)."""
        return self._fit(X, y)

    def partial_fit(self, X: Any, y: Any) -> MLPRegressor:
        """One pass over (X, y) in minibatches; one optimizer step when len(X) <= batch_size."""
        return self._partial_fit(X, y)

    def predict(self, X: Any) -> np.ndarray:
        """Predictions in the original target units, (n_samples,) or (n_samples, n_outputs).

        Always float64 (as scikit-learn's regressors), whatever ``dtype`` the network
        computes in.
        """
        out = self._predict_raw(X)  # (n, n_outputs), scaled units
        if self.target_scaler_ is not None:
            # float64 maths, straight into the float64 predictions (no rounding to
            # the scaler's or the network's dtype on the way)
            out = self.target_scaler_.inverse_transform(out, dtype=np.float64)
        out = out.astype(np.float64, copy=False)
        return out.ravel() if self._y_1d else out

    def _score_encoded(self, X: np.ndarray, Y: np.ndarray) -> float:
        # R^2 is unchanged by a per-column affine target transform: score scaled units.
        return r2_score(Y, self._forward(X))

    def score(self, X: Any, y: Any) -> float:
        """Coefficient of determination R^2 (averaged over outputs)."""
        pred = self.predict(X)
        y = np.asarray(y)
        return r2_score(y.reshape(len(y), -1), np.asarray(pred).reshape(len(y), -1))

    def _save_extra(self, arrays: dict, meta: dict) -> None:
        meta["y_1d"] = bool(self._y_1d)
        meta["fixed_target_scaler"] = bool(getattr(self, "_has_fixed_target_scaler", False))
        meta["target_scaler"] = None
        if self.target_scaler_ is not None:
            s_arrays, s_meta = self.target_scaler_.to_arrays()
            arrays.update({f"target_{k}": v for k, v in s_arrays.items()})
            meta["target_scaler"] = s_meta

    def _load_extra(self, arrays: dict, meta: dict, path: Any) -> None:
        self._y_1d = bool(meta["y_1d"])
        s_meta = meta["target_scaler"]
        self.target_scaler_ = None
        if s_meta is not None:
            prefix = "target_"
            s_arrays = {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
            self.target_scaler_ = scaler_from_arrays(s_arrays, s_meta, path)
        if meta["fixed_target_scaler"]:
            self.set_target_scaler(self.target_scaler_)


@dataclass(eq=False, repr=False)
class MLPClassifier(BaseMLP):
    __doc__ = (
        "Multi-layer perceptron classifier: logistic output for two classes, softmax for more."
        + _SHARED_DOC
        + """    loss : {'log_loss'}, default 'log_loss'

    Attributes
    ----------
    classes_ : ndarray (n_classes,)
    coefs_, intercepts_, loss_curve_, validation_loss_curve_, best_loss_, n_iter_
        As for MLPRegressor; validation_scores_ holds validation accuracy.
    batch_correct_ : int or None
        Rows the last one-step ``partial_fit`` classified right (before its update).
    """
    )

    loss: str = "log_loss"

    _estimator_type = "classifier"

    @property
    def _output_name(self) -> str:
        return "logistic" if len(self.classes_) == 2 else "softmax"

    def _validate_params(self) -> None:
        super()._validate_params()
        check_option("loss", self.loss, ["log_loss"])

    def _prepare(
        self, X: Any, y: Any, *, reset: bool, classes: Any = None
    ) -> tuple[np.ndarray, np.ndarray]:
        dtype = self._dtype if reset else self._params.dtype
        X = check_array(X, dtype=dtype)
        y = check_class_labels(y, type(self).__name__)
        if y.shape[0] != X.shape[0]:
            raise ValueError(
                f"X and y have different numbers of samples: X has {X.shape[0]}, y has {y.shape[0]}"
            )
        if reset:
            labels = np.unique(y) if classes is None else np.unique(np.asarray(classes))
            if labels.shape[0] < 2:
                raise ValueError(
                    f"need at least 2 classes to train a classifier; got {labels.shape[0]} "
                    f"class(es): {labels.tolist()}"
                )
            self.classes_ = labels
        else:
            check_n_features(X, self.n_features_in_, type(self).__name__)
        idx = np.searchsorted(self.classes_, y)
        idx[idx >= len(self.classes_)] = 0
        unknown = self.classes_[idx] != y
        if unknown.any():
            raise ValueError(
                f"y contains labels not among classes {self.classes_.tolist()}: "
                f"{np.unique(y[unknown])[:10].tolist()}"
            )
        if len(self.classes_) == 2:
            Y = idx.astype(dtype).reshape(-1, 1)  # (n, 1): P(class 1)
        else:
            Y = np.zeros((y.shape[0], len(self.classes_)), dtype=dtype)  # (n, n_classes)
            Y[np.arange(y.shape[0]), idx] = 1.0
        return X, Y

    def fit(self, X: Any, y: Any) -> MLPClassifier:
        """Train on X (n_samples, n_features) and class labels y (n_samples,)."""
        return self._fit(X, y)

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> MLPClassifier:
        """One pass over (X, y); ``classes`` (all labels) is required on the first call."""
        if not hasattr(self, "_params"):
            if classes is None:
                raise ValueError(
                    "classes must be given on the first call to partial_fit "
                    "(every label the stream can contain)"
                )
            self._validate_params()
            X, Y = self._prepare(X, y, reset=True, classes=classes)
            self._initialize(X.shape[1], Y.shape[1])
            return self._partial_fit_prepared(X, Y)
        if classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(
                f"classes={np.unique(classes).tolist()} differ from the classes seen before "
                f"{self.classes_.tolist()}"
            )
        X, Y = self._prepare(X, y, reset=False)
        return self._partial_fit_prepared(X, Y)

    def _partial_fit_prepared(self, X: np.ndarray, Y: np.ndarray) -> MLPClassifier:
        with blas_threads(self._threads()), np.errstate(all="ignore"):
            self.batch_loss_ = self._run_epoch(X, Y, shuffle=self.shuffle)
        # Rows the step's own forward pass classified right, read from its output
        # buffer (free; a predict would cost ~45% of the step): for one step only.
        n = X.shape[0]
        self.batch_correct_ = None
        if n <= self._batch_rows(n):
            P = self._get_cache(n).acts[-1][:n]  # (n, n_outputs), before the update
            self.batch_correct_ = _n_right(P, Y)
        return self

    def loss_and_correct(self, X: Any, y: Any) -> tuple[float, int]:
        """(``data_loss(X, y)``, rows ``predict`` gets right) from one forward pass."""
        check_is_fitted(self, "_params")
        X, Y = self._prepare(X, y, reset=False)
        with blas_threads(self._threads()), np.errstate(all="ignore"):
            P = self._forward(X)  # (n, n_outputs)
            return LOSSES[self.loss].value(Y, P), _n_right(P, Y)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (n_samples, n_classes), columns in ``classes_`` order."""
        p = self._predict_raw(X)
        if p.shape[1] == 1:
            return np.hstack([1.0 - p, p])
        return p

    def predict(self, X: Any) -> np.ndarray:
        """Most probable class label per row."""
        idx = _class_index(self._predict_raw(X))  # checks the fit before classes_ is read
        return self.classes_[idx]

    def _score_encoded(self, X: np.ndarray, Y: np.ndarray) -> float:
        return _n_right(self._forward(X), Y) / X.shape[0]

    def score(self, X: Any, y: Any) -> float:
        """Accuracy."""
        return float(np.mean(self.predict(X) == np.asarray(y).ravel()))

    def _save_extra(self, arrays: dict, meta: dict) -> None:
        if self.classes_.dtype == object:
            raise ValueError("classes_ of dtype object cannot be saved; use int or str labels")
        arrays["classes_"] = self.classes_

    def _load_extra(self, arrays: dict, meta: dict, path: Any) -> None:
        self.classes_ = require(arrays, "classes_", (None,), path)


def load_model(path: str | os.PathLike):
    """Load whichever nnpipe estimator the .npz at ``path`` holds."""
    arrays, meta = load_npz(path)
    return network_from_arrays(arrays, meta, file_name(path))


def network_from_arrays(arrays: dict, meta: dict, path: Any = "<memory>"):
    """Rebuild whichever estimator ``meta["kind"]`` names, from its ``to_arrays`` output."""
    from ..perceptron import Perceptron
    from ..serialization import ModelFileError

    kinds = {cls.__name__: cls for cls in (MLPRegressor, MLPClassifier, Perceptron)}
    cls = kinds.get(meta.get("kind"))
    if cls is None:
        raise ModelFileError(
            f"{str(path)!r} holds a {meta.get('kind')!r}; load_model reads {', '.join(kinds)}"
        )
    return cls.from_arrays(arrays, meta, path)


def _class_index(P: np.ndarray) -> np.ndarray:
    """Each row's class index from network outputs or one-hot targets (n, n_outputs)."""
    return (P[:, 0] > 0.5).astype(np.intp) if P.shape[1] == 1 else P.argmax(axis=1)


def _n_right(P: np.ndarray, Y: np.ndarray) -> int:
    """Rows whose outputs ``P`` pick the class their encoded targets ``Y`` name."""
    return int(np.count_nonzero(_class_index(P) == _class_index(Y)))
