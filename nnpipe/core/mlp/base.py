"""The back-propagation network shared by MLPRegressor and MLPClassifier.

Parameters and their checks, set-up, forward and backward passes, the epoch
loop, early stopping and the learning-rate schedule. The weights are one flat
vector with per-layer views (:mod:`.flat`).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..params import Params
from ..sklearn_compat import sklearn_tags
from ..threads import blas_threads, choose_n_threads
from ..validation import (
    check_array,
    check_is_fitted,
    check_layer_sizes,
    check_n_features,
    check_option,
    check_positive,
    check_rng,
    resolve_dtype,
)
from .activations import ACTIVATIONS, OUTPUT_ONLY, activation_names, get_activation
from .flat import BatchCache, n_parameters, split_flat
from .initializers import init_layer
from .io import MLPFileMixin
from .losses import CANONICAL_PAIRS, LOSSES
from .optimizers import BLOCK, OPTIMIZERS


class DivergenceError(FloatingPointError):
    """Training produced a non-finite loss or gradient; the weights are the last finite ones."""


# The constructor is generated from the fields below, so the parameters shared by
# MLPRegressor and MLPClassifier are declared once and each subclass adds only its
# own; the generated __init__ has an explicit signature, which get_params and
# scikit-learn's clone read. eq/repr stay off: estimators compare by identity (and
# stay hashable) and Params provides the repr.
@dataclass(eq=False, repr=False)
class BaseMLP(Params, MLPFileMixin):
    """Parameters, training loop, early stopping and persistence; subclasses add targets."""

    hidden_layer_sizes: int | tuple[int, ...] = (100,)
    activation: str = "relu"
    solver: str = "adam"
    alpha: float = 0.0001
    batch_size: int | str = "auto"
    learning_rate: str = "constant"
    learning_rate_init: float = 0.001
    power_t: float = 0.5
    max_iter: int = 200
    shuffle: bool = True
    random_state: Any = None
    tol: float = 1e-4
    verbose: bool = False
    warm_start: bool = False
    momentum: float = 0.9
    nesterovs_momentum: bool = True
    early_stopping: bool = False
    validation_fraction: float = 0.1
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-8
    n_iter_no_change: int = 10
    l1: float = 0.0
    loss: str = "squared_error"
    dtype: Any = "float32"
    n_threads: int | None = None

    _estimator_type = "regressor"
    _multi_output = False  # y may be 2-D (n_samples, n_outputs)

    # -- scikit-learn estimator protocol ------------------------------------------
    def __sklearn_tags__(self):
        return sklearn_tags(self._estimator_type, multi_output=self._multi_output)

    def __getstate__(self) -> dict[str, Any]:
        # Views do not survive copying or pickling; they are rebuilt on demand.
        state = self.__dict__.copy()
        state.pop("_cache", None)
        return state

    # -- parameter validation -----------------------------------------------------
    def _validate_params(self) -> None:
        self._hidden = check_layer_sizes("hidden_layer_sizes", self.hidden_layer_sizes)
        check_option("activation", self.activation, activation_names())
        check_option("solver", self.solver, list(OPTIMIZERS))
        check_option("learning_rate", self.learning_rate, ["constant", "invscaling", "adaptive"])
        check_positive("alpha", self.alpha, allow_zero=True)
        check_positive("l1", self.l1, allow_zero=True)
        check_positive("learning_rate_init", self.learning_rate_init)
        check_positive("power_t", self.power_t, allow_zero=True)
        check_positive("max_iter", self.max_iter, integer=True)
        check_positive("tol", self.tol, allow_zero=True)
        check_positive("n_iter_no_change", self.n_iter_no_change, integer=True)
        check_positive("epsilon", self.epsilon)
        if self.batch_size != "auto":
            check_positive("batch_size", self.batch_size, integer=True)
        for name in ("momentum", "beta_1", "beta_2", "validation_fraction"):
            value = getattr(self, name)
            upper_open = name != "momentum"
            if not isinstance(value, numbers.Real) or not (
                0 <= value < 1 if upper_open else 0 <= value <= 1
            ):
                bound = "[0, 1)" if upper_open else "[0, 1]"
                raise ValueError(f"{name}={value!r} is invalid; expected a number in {bound}")
        if self.early_stopping and not 0 < self.validation_fraction < 1:
            raise ValueError(
                f"validation_fraction={self.validation_fraction!r} must be in (0, 1) "
                "when early_stopping=True"
            )
        if self.n_threads is not None:
            check_positive("n_threads", self.n_threads, integer=True)
        self._dtype = resolve_dtype(self.dtype)
        check_rng(self.random_state)

    # -- network set-up -------------------------------------------------------------
    def _initialize(self, n_features: int, n_outputs: int) -> None:
        self._layer_sizes = [n_features, *self._hidden, n_outputs]
        sizes, dtype = self._layer_sizes, self._dtype
        self._rng = check_rng(self.random_state)
        n_total = n_parameters(sizes)
        self._params = np.zeros(n_total, dtype=dtype)
        self._grads = np.zeros(n_total, dtype=dtype)
        coefs, intercepts = split_flat(self._params, sizes)
        for W, b in zip(coefs, intercepts, strict=True):  # one bound rule for every layer
            W[...], b[...] = init_layer(self._rng, W.shape[0], W.shape[1], self._hidden_name)
        self._optimizer = self._make_optimizer(n_total)
        self._best_params = self._params.copy()
        self.n_features_in_ = n_features
        self.n_outputs_ = n_outputs
        self.n_iter_ = 0
        self.t_ = 0
        self.loss_curve_: list[float] = []
        self.validation_loss_curve_: list[float] = []
        self.validation_scores_: list[float] = []
        self.best_loss_ = np.inf
        self.best_epoch_ = 0
        self._no_improvement_count = 0
        self._cache_drop()

    def _make_optimizer(self, n_params: int):
        if self.solver == "adam":
            return OPTIMIZERS["adam"](
                n_params, self._dtype, self.learning_rate_init, self.beta_1, self.beta_2,
                self.epsilon,
            )  # fmt: skip
        return OPTIMIZERS["sgd"](
            n_params, self._dtype, self.learning_rate_init, self.learning_rate, self.momentum,
            self.nesterovs_momentum, self.power_t,
        )  # fmt: skip

    @property
    def _hidden_name(self) -> str:
        return {"sigmoid": "logistic"}.get(self.activation, self.activation)

    def _cache_drop(self) -> None:
        self.__dict__.pop("_cache", None)

    def _get_cache(self, rows: int) -> BatchCache:
        cache = self.__dict__.get("_cache")
        if cache is None or cache.rows < rows:
            cache = self._cache = BatchCache(self._params, self._grads, self._layer_sizes, rows)
        return cache

    def _batch_rows(self, n_samples: int) -> int:
        return min(200, n_samples) if self.batch_size == "auto" else int(self.batch_size)

    def _threads(self) -> int:
        if self.n_threads is not None:
            return int(self.n_threads)
        return choose_n_threads(self._layer_sizes, self._batch_rows(1 << 30))

    # -- public learned state -------------------------------------------------------
    @property
    def coefs_(self) -> list[np.ndarray]:
        """Weight matrices, ``coefs_[i]`` of shape (n_units_i, n_units_{i+1}) (views)."""
        check_is_fitted(self, "_params")
        return self._get_cache(1).coefs

    @property
    def intercepts_(self) -> list[np.ndarray]:
        """Bias vectors, ``intercepts_[i]`` of shape (n_units_{i+1},) (views)."""
        check_is_fitted(self, "_params")
        return self._get_cache(1).intercepts

    @property
    def learning_rate_(self) -> float:
        """Current learning rate (changed by the 'invscaling' and 'adaptive' schedules)."""
        check_is_fitted(self, "_optimizer")
        return self._optimizer.learning_rate

    @property
    def n_layers_(self) -> int:
        check_is_fitted(self, "_layer_sizes")
        return len(self._layer_sizes)

    # -- forward and backward -------------------------------------------------------
    def _forward(self, X: np.ndarray, cache: BatchCache | None = None) -> np.ndarray:
        """Output activations for ``X``; into the cache buffers when one is given."""
        n = X.shape[0]
        coefs, intercepts = self._get_cache(1).coefs, self._get_cache(1).intercepts
        hidden = get_activation(self._hidden_name).forward
        A = X
        last = len(coefs) - 1
        for i, (W, b) in enumerate(zip(coefs, intercepts, strict=True)):
            if cache is None:
                Z = A @ W  # (n, n_{i+1})
            else:
                Z = np.matmul(A, W, out=cache.acts[i][:n])
            Z += b
            A = hidden(Z) if i < last else self._output_forward(Z)
        return A

    def _output_forward(self, Z: np.ndarray) -> np.ndarray:
        name = self._output_name
        if name in OUTPUT_ONLY:
            return OUTPUT_ONLY[name](Z)
        return ACTIVATIONS[name].forward(Z)

    def _backward(self, X: np.ndarray, y: np.ndarray, cache: BatchCache) -> float:
        """Fill the flat gradient for batch (X, y) after ``_forward``; return the objective."""
        n = X.shape[0]
        coefs, c_grads, i_grads = cache.coefs, cache.coef_grads, cache.intercept_grads
        L = len(coefs)
        out, D = cache.acts[L - 1][:n], cache.deltas[L - 1][:n]  # (n, n_out)
        loss_name, out_name = self.loss, self._output_name
        if (loss_name, out_name) in CANONICAL_PAIRS:
            np.subtract(out, y, out=D)
            if loss_name == "squared_error":
                r = D.ravel()
                loss = 0.5 * float(np.dot(r, r)) / n
            else:
                loss = LOSSES[loss_name].value(y, out)
        else:
            loss = LOSSES[loss_name].value(y, out)
            LOSSES[loss_name].gradient(y, out, D)
            D *= ACTIVATIONS[out_name].derivative(out, cache.tmps[L - 1][:n])
        D *= 1.0 / n  # the loss is a mean over the batch
        hidden_derivative = get_activation(self._hidden_name).derivative
        for i in range(L - 1, -1, -1):
            A_in = X if i == 0 else cache.acts[i - 1][:n]  # (n, n_i)
            np.matmul(A_in.T, D, out=c_grads[i])
            np.matmul(cache.ones[:n], D, out=i_grads[i])  # column sums, faster than sum()
            if i > 0:
                D_prev = cache.deltas[i - 1][:n]
                if D.shape[1] == 1:  # an outer product: BLAS is slow at inner size 1
                    np.multiply(D, coefs[i].T, out=D_prev)
                else:
                    np.matmul(D, coefs[i].T, out=D_prev)
                D_prev *= hidden_derivative(A_in, cache.tmps[i - 1][:n])
                D = D_prev
        return loss + self._add_penalty(cache, n)

    def _add_penalty(self, cache: BatchCache, n: int) -> float:
        """Add the L2/L1 gradient to the coefficient gradients; return the penalty value."""
        penalty = 0.0
        if self.alpha == 0 and self.l1 == 0:
            return penalty
        alpha, l1 = float(self.alpha), float(self.l1)  # Python floats keep float32 loops
        step = BLOCK if cache.n_coef >= 4 * BLOCK else cache.n_coef
        for start in range(0, cache.n_coef, step):  # block-wise: the passes stay in cache
            block = slice(start, min(start + step, cache.n_coef))
            W, G, tmp = self._params[block], self._grads[block], cache.penalty_tmp[block]
            if alpha:
                penalty += 0.5 * alpha * float(np.dot(W, W)) / n
                np.multiply(W, alpha / n, out=tmp)
                G += tmp
            if l1:
                np.sign(W, out=tmp)
                penalty += l1 * float(np.dot(tmp, W)) / n
                tmp *= l1 / n
                G += tmp
        return penalty

    def _loss_and_gradient(self, X: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        """Objective (data loss + penalty) and a copy of its flat gradient on (X, y encoded)."""
        cache = self._get_cache(X.shape[0])
        with np.errstate(all="ignore"):
            self._forward(X, cache)
            loss = self._backward(X, y, cache)
        return loss, self._grads.copy()

    # -- training -------------------------------------------------------------------
    def _run_epoch(self, X: np.ndarray, y: np.ndarray, *, shuffle: bool) -> float:
        """One pass over (X, y) in minibatches, one optimizer step each; mean objective."""
        n = X.shape[0]
        rows = min(self._batch_rows(n), n)
        cache = self._get_cache(rows)
        order = self._rng.permutation(n) if shuffle and n > rows else None
        total = 0.0
        for step, start in enumerate(range(0, n, rows), start=1):
            stop = min(start + rows, n)
            m = stop - start
            if order is None:
                Xb, yb = X[start:stop], y[start:stop]
            else:
                idx = order[start:stop]
                Xb = np.take(X, idx, axis=0, out=cache.x[:m])
                yb = np.take(y, idx, axis=0, out=cache.y[:m])
            self._forward(Xb, cache)
            loss = self._backward(Xb, yb, cache)
            g = float(np.dot(self._grads, self._grads))
            if not (np.isfinite(loss) and np.isfinite(g)):
                what = "loss" if not np.isfinite(loss) else "gradient"
                raise DivergenceError(
                    f"training diverged: non-finite {what} at epoch {self.n_iter_ + 1}, "
                    f"step {step} (optimizer step {self._optimizer.t + 1}) with "
                    f"learning_rate={self._optimizer.learning_rate:g}; try a smaller "
                    "learning_rate_init (the model keeps its last finite weights)"
                )
            self._optimizer.update(self._params, self._grads)
            self.t_ += m
            total += loss * m
        return total / n

    def record_epoch(
        self,
        train_loss: float,
        validation_loss: float | None = None,
        validation_score: float | None = None,
    ) -> bool:
        """Book-keep one finished epoch; return True when training should stop.

        Appends to ``loss_curve_`` (and ``validation_loss_curve_`` /
        ``validation_scores_`` when given), tracks ``best_loss_`` and the best
        weights on the validation loss when given (else the training loss), applies
        the learning-rate schedule, and counts epochs without an improvement of at
        least ``tol``: after more than ``n_iter_no_change`` of them the 'adaptive'
        schedule divides the learning rate by 5, anything else stops.
        """
        check_is_fitted(self, "_params")
        self.n_iter_ += 1
        self.loss_curve_.append(float(train_loss))
        monitored = float(train_loss)
        if validation_loss is not None:
            monitored = float(validation_loss)
            self.validation_loss_curve_.append(monitored)
        if validation_score is not None:
            self.validation_scores_.append(float(validation_score))
        self._optimizer.epoch_end(self.t_)
        if monitored > self.best_loss_ - self.tol:
            self._no_improvement_count += 1
        else:
            self._no_improvement_count = 0
        if monitored < self.best_loss_:
            self.best_loss_ = monitored
            self.best_epoch_ = self.n_iter_
            self._best_params[...] = self._params
        if self._no_improvement_count > self.n_iter_no_change:
            if self._optimizer.on_plateau():
                return True
            self._no_improvement_count = 0
        return False

    def restore_best_weights(self) -> None:
        """Put back the weights of the epoch with the best monitored loss."""
        check_is_fitted(self, "_params")
        if self.best_epoch_ > 0:
            self._params[...] = self._best_params

    def _fit(self, X: Any, y: Any) -> BaseMLP:
        self._validate_params()
        warm = self.warm_start and hasattr(self, "_params")
        if warm and self._hidden != self._layer_sizes[1:-1]:
            raise ValueError(
                f"warm_start=True continues the fitted network {self._layer_sizes}, but "
                f"hidden_layer_sizes is now {self.hidden_layer_sizes!r}; set warm_start=False "
                "to train a new network"
            )
        X, Y = self._prepare(X, y, reset=not warm)
        if not warm:
            self._initialize(X.shape[1], Y.shape[1])
        Xv = Yv = None
        if self.early_stopping:
            n_val = int(round(self.validation_fraction * X.shape[0]))
            if n_val < 1 or n_val >= X.shape[0]:
                raise ValueError(
                    f"early_stopping with validation_fraction={self.validation_fraction} "
                    f"leaves {n_val} validation rows out of {X.shape[0]}; need at least 1 "
                    "of each"
                )
            order = self._rng.permutation(X.shape[0])
            Xv, Yv = X[order[:n_val]], Y[order[:n_val]]
            X, Y = X[order[n_val:]], Y[order[n_val:]]
        with blas_threads(self._threads()), np.errstate(all="ignore"):
            for _ in range(self.max_iter):
                train_loss = self._run_epoch(X, Y, shuffle=self.shuffle)
                val_loss = val_score = None
                if Xv is not None:
                    val_loss = self._data_loss(Xv, Yv)
                    val_score = self._score_encoded(Xv, Yv)
                stop = self.record_epoch(train_loss, val_loss, val_score)
                if self.verbose:
                    extra = "" if val_loss is None else f", validation loss = {val_loss:.8f}"
                    print(f"Iteration {self.n_iter_}, loss = {train_loss:.8f}{extra}")
                if stop:
                    break
            self.converged_ = stop
            if self.early_stopping:
                self.restore_best_weights()
        return self

    def _partial_fit(self, X: Any, y: Any) -> BaseMLP:
        first = not hasattr(self, "_params")
        if first:
            self._validate_params()
        X, Y = self._prepare(X, y, reset=first)
        if first:
            self._initialize(X.shape[1], Y.shape[1])
        with blas_threads(self._threads()), np.errstate(all="ignore"):
            self.batch_loss_ = self._run_epoch(X, Y, shuffle=self.shuffle)
        return self

    def _data_loss(self, X: np.ndarray, Y: np.ndarray) -> float:
        with np.errstate(all="ignore"):
            return LOSSES[self.loss].value(Y, self._forward(X))

    def data_loss(self, X: Any, y: Any) -> float:
        """Mean data loss (no penalty) on (X, y) in training units, e.g. a validation loss."""
        check_is_fitted(self, "_params")
        X, Y = self._prepare(X, y, reset=False)
        with blas_threads(self._threads()):
            return self._data_loss(X, Y)

    def _check_X(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "_params")
        # Predict in the wider of the input's and the network's float type: a float32
        # array keeps a float32 network on its fast path; anything else is computed in
        # float64, whose results do not depend on how the rows are batched (float32
        # matrix products round differently for 1 row and for 20).
        float32 = self._params.dtype == np.float32 and getattr(X, "dtype", None) == np.float32
        X = check_array(X, dtype=np.float32 if float32 else np.float64)
        check_n_features(X, self.n_features_in_, type(self).__name__)
        return X

    def _predict_raw(self, X: Any) -> np.ndarray:
        X = self._check_X(X)
        with blas_threads(self._threads()), np.errstate(all="ignore"):
            return self._forward(X)
