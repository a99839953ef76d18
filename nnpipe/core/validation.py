"""Input checks shared by every estimator: each error names what is at fault."""

from __future__ import annotations

import numbers
from collections.abc import Iterable
from typing import Any

import numpy as np

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


def check_array(
    X: Any,
    *,
    name: str = "X",
    dtype: np.dtype | type = np.float32,
    ndim: int = 2,
    copy: bool = False,
) -> np.ndarray:
    """Return ``X`` as a C-contiguous float array of ``ndim`` dims; reject empty or non-finite."""
    try:
        arr = np.asarray(X)
    except Exception as exc:  # ragged lists and similar
        raise ValueError(f"{name} could not be converted to an array: {exc}") from exc
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)
    ):
        raise ValueError(f"{name} must be numeric; got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise ValueError(
            f"{name} has complex dtype {arr.dtype}; only real numbers are accepted "
            "(pass X.real, np.abs(X) or the two parts as separate features)"
        )
    if ndim == 2 and arr.ndim == 1:
        raise ValueError(
            f"{name} must be 2-D (n_samples, n_features); got 1-D shape {arr.shape}. "
            "Reshape with X.reshape(-1, 1) for one feature or X.reshape(1, -1) for one sample."
        )
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D; got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty: 0 samples (shape {arr.shape})")
    if ndim == 2 and arr.shape[1] == 0:
        raise ValueError(f"{name} has 0 features (shape {arr.shape})")
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


def check_X_y(
    X: Any, y: Any, *, dtype: np.dtype | type = np.float32, y_numeric: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Check ``X`` (2-D) and ``y`` (1-D or 2-D) and that their sample counts agree."""
    X = check_array(X, dtype=dtype)
    y_arr = np.asarray(y)
    if y_arr.ndim not in (1, 2):
        raise ValueError(f"y must be 1-D or 2-D; got shape {y_arr.shape}")
    if y_numeric:
        y_arr = check_array(y_arr, name="y", dtype=dtype, ndim=y_arr.ndim)
    elif y_arr.shape[0] == 0:
        raise ValueError("y is empty: 0 samples")
    if y_arr.shape[0] != X.shape[0]:
        raise ValueError(
            f"X and y have different numbers of samples: X has {X.shape[0]}, y has {y_arr.shape[0]}"
        )
    return X, y_arr


def check_n_features(X: np.ndarray, n_features_in: int, what: str) -> None:
    """Raise ValueError when ``X`` has a different feature count from the fitted one."""
    if X.shape[1] != n_features_in:
        raise ValueError(
            f"X has {X.shape[1]} features, but {what} was fitted with {n_features_in} features"
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
        raise NotFittedError(
            f"this {type(estimator).__name__} is not fitted yet; call fit or partial_fit first"
        )


class NotFittedError(ValueError, AttributeError):
    """Raised when predict/transform is used before fit."""


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
