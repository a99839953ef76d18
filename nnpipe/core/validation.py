"""Input checks shared by every estimator: each error names what is at fault."""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Iterable
from typing import Any

import numpy as np

from .sklearn_compat import DataConversionWarning, NotFittedError, sklearn_class

DTYPES = {"float32": np.float32, "float64": np.float64}


def resolve_dtype(dtype: Any) -> np.dtype:
    """Return the float dtype for a ``dtype=`` parameter (float32 or float64 only)."""
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        resolved = None
    if resolved not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype={dtype!r} is not supported; allowed: 'float32', 'float64'")
    return resolved


def check_option(name: str, value: Any, allowed: Iterable[Any]) -> Any:
    """Raise ValueError naming ``name`` and the allowed values unless ``value`` is one of them."""
    allowed = list(allowed)
    if value not in allowed:
        shown = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"{name}={value!r} is not supported; allowed: {shown}")
    return value


def check_positive(name: str, value: Any, *, integer: bool = False, allow_zero: bool = False):
    """Raise ValueError unless ``value`` is a (non-negative when allow_zero) positive number."""
    kinds = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    ok = isinstance(value, kinds) and not isinstance(value, bool)
    ok = ok and (value >= 0 if allow_zero else value > 0) and np.isfinite(value)
    if not ok:
        what = "integer" if integer else "number"
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name}={value!r} is invalid; expected a finite {what} {bound}")
    return value


def _is_sparse(X: Any) -> bool:
    """SciPy sparse matrices and arrays, recognised without importing SciPy."""
    return type(X).__module__.startswith("scipy.sparse")


def _as_numeric(X: Any, name: str) -> np.ndarray:
    """``X`` as a NumPy array of numbers (object arrays holding numbers are converted)."""
    if _is_sparse(X):
        raise TypeError(
            f"{name} is a sparse {type(X).__name__}; sparse input is not supported: pass a "
            f"dense array, e.g. {name}.toarray() if it fits in memory"
        )
    try:
        arr = np.asarray(X)
    except Exception as exc:  # ragged lists and similar
        raise ValueError(f"{name} could not be converted to an array: {exc}") from exc
    if arr.dtype == object:
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError) as exc:  # keep NumPy's type: a dict is a TypeError
            raise type(exc)(f"{name} has dtype object and holds a non-number: {exc}") from exc
    if np.iscomplexobj(arr):
        raise ValueError(f"Complex data not supported: {name} has dtype {arr.dtype}")
    if not (np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)):
        raise ValueError(f"{name} must be numeric; got dtype {arr.dtype}")
    return arr


def check_array(
    X: Any,
    *,
    name: str = "X",
    dtype: np.dtype | type = np.float32,
    ndim: int = 2,
    copy: bool = False,
) -> np.ndarray:
    """Return ``X`` as a C-contiguous float array of ``ndim`` dims; reject empty or non-finite.

    Sparse and complex input are refused; the wording of the shape errors is
    scikit-learn's, so its estimator checks recognise them.
    """
    arr = _as_numeric(X, name)
    if ndim == 2 and arr.ndim == 1:
        raise ValueError(
            f"{name} must be 2-D (n_samples, n_features); got 1-D shape {arr.shape}. "
            f"Reshape your data: {name}.reshape(-1, 1) for one feature or "
            f"{name}.reshape(1, -1) for one sample."
        )
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D; got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(
            f"{name} is empty: 0 sample(s) (shape={arr.shape}) while a minimum of 1 is required."
        )
    if ndim == 2 and arr.shape[1] == 0:
        raise ValueError(
            f"{name} has 0 feature(s) (shape={arr.shape}) while a minimum of 1 is required."
        )
    with np.errstate(over="ignore"):  # overflow is reported below, by name
        out = np.array(arr, dtype=dtype, order="C", copy=True if copy else None)
    finite = np.isfinite(out)
    if not finite.all():
        _check_overflow(arr, finite, name, out.dtype)
        bad = ~finite
        if out.ndim == 2:
            cols = np.flatnonzero(bad.any(axis=0))
            counts = bad.sum(axis=0)[cols]
            where = ", ".join(
                f"column {c}: {n}" for c, n in zip(cols[:10], counts[:10], strict=True)
            )
        else:
            where = f"{int(bad.sum())} values"
        n_nan = int(np.isnan(out).sum())
        n_inf = int(bad.sum()) - n_nan
        raise ValueError(
            f"{name} contains {n_nan} NaN and {n_inf} infinite values ({where}); "
            "clean or impute them first"
        )
    return out


def _check_overflow(arr: np.ndarray, finite: np.ndarray, name: str, dtype: np.dtype) -> None:
    """Raise when finite values of ``arr`` became infinite in ``dtype`` (e.g. 1e39 in float32)."""
    overflow = ~finite & np.isfinite(arr)
    if not overflow.any():
        return
    cols = np.flatnonzero(overflow.any(axis=0)) if arr.ndim == 2 else []
    where = "".join(f", column {c}" for c in cols[:10])
    big = float(np.abs(arr[overflow]).max())
    limit = float(np.finfo(dtype).max)
    raise ValueError(
        f"{name} has {int(overflow.sum())} values beyond the range of {dtype.name} "
        f"(|x| up to {big:.3g} > {limit:.3g}{where}); use dtype='float64', or scale the "
        "data down first"
    )


def check_y_given(y: Any, owner: str) -> Any:
    """Return ``y``; a supervised estimator's ``fit`` without targets is a ValueError."""
    if y is None:
        raise ValueError(f"{owner} requires y to be passed, but the target y is None")
    return y


def check_class_labels(y: Any, owner: str) -> np.ndarray:
    """Class labels ``y`` as a 1-D array; refuse missing, complex, continuous or 2-D targets.

    A column vector (n_samples, 1) is flattened with a DataConversionWarning, as
    scikit-learn does. Floats count as labels only when every value is whole.
    """
    y = np.asarray(check_y_given(y, owner))
    if y.ndim == 2 and y.shape[1] == 1:
        warnings.warn(
            "A column-vector y was passed when a 1d array was expected. Please change the "
            "shape of y to (n_samples,), for example using ravel().",
            sklearn_class(DataConversionWarning),
            stacklevel=2,
        )
        y = y.ravel()
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D class labels (n_samples,); got shape {y.shape}")
    if np.iscomplexobj(y):
        raise ValueError(f"Complex data not supported: y has dtype {y.dtype}")
    if y.dtype.kind == "f" and y.size:
        check_array(y, name="y", dtype=y.dtype, ndim=1)
        fractional = y[y != np.round(y)]
        if fractional.size:
            raise ValueError(
                f"Unknown label type: continuous. y holds non-integer values such as "
                f"{fractional[:3].tolist()}, so it looks like a regression target; "
                f"{owner} needs discrete class labels"
            )
    return y


def check_n_features(X: np.ndarray, n_features_in: int, what: str) -> None:
    """Raise ValueError when ``X`` has a different feature count from the fitted one."""
    if X.shape[1] != n_features_in:
        raise ValueError(
            f"X has {X.shape[1]} features, but {what} is expecting {n_features_in} features "
            "as input"
        )


def check_rng(random_state: Any) -> np.random.Generator:
    """Resolve ``random_state`` (None, int or Generator) to a ``np.random.Generator``."""
    if random_state is None or isinstance(random_state, (int, np.integer)):
        if random_state is not None and random_state < 0:
            raise ValueError(f"random_state={random_state!r} must be >= 0")
        return np.random.default_rng(random_state)
    if isinstance(random_state, np.random.Generator):
        return random_state
    raise ValueError(
        f"random_state={random_state!r} is not supported; allowed: None, an int >= 0, "
        "or a numpy.random.Generator"
    )


def check_is_fitted(estimator: Any, attribute: str) -> None:
    """Raise a readable error when ``estimator`` has not been fitted yet."""
    if not hasattr(estimator, attribute):
        raise sklearn_class(NotFittedError)(
            f"this {type(estimator).__name__} is not fitted yet; call fit or partial_fit first"
        )


def check_layer_sizes(name: str, value: Any) -> list[int]:
    """A positive int or a sequence of positive ints, as a list of ints."""
    sizes = (value,) if isinstance(value, numbers.Integral) else value
    try:
        sizes = tuple(sizes)
    except TypeError:
        sizes = None
    if sizes is None or not all(
        isinstance(h, numbers.Integral) and not isinstance(h, bool) and h > 0 for h in sizes
    ):
        raise ValueError(
            f"{name}={value!r} is invalid; expected a positive int or a sequence of positive ints"
        )
    return [int(h) for h in sizes]
