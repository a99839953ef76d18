"""scikit-learn compatibility without nnpipe.core ever being the one to load scikit-learn.

nnpipe.core runs with NumPy alone, yet scikit-learn's tools (``check_estimator``,
``GridSearchCV``, warning filters) recognise errors and warnings by scikit-learn's
own classes. So core raises and warns with :func:`sklearn_class` of a plain
fallback class here: the fallback itself while scikit-learn is not loaded, and a
subclass of both the fallback and scikit-learn's class of the same name once it is.

Why "loaded" rather than "installed": importing scikit-learn takes over a second
(it pulls in SciPy), against a few hundredths for nnpipe.core. And only code that
has imported scikit-learn can name scikit-learn's classes in an ``except`` clause,
a ``pytest.raises`` or a warning filter, so nothing is lost by waiting for it.
``except NotFittedError`` with the class from here catches the error either way.
"""

from __future__ import annotations

import copyreg
import functools
import sys
from typing import Any


class NotFittedError(ValueError, AttributeError):
    """Raised when predict/transform is used before fit."""


class DataConversionWarning(UserWarning):
    """The input was converted to the form the estimator needs (e.g. a column-vector y)."""


class ConvergenceWarning(UserWarning):
    """Training stopped at max_iter without reaching its stopping criterion."""


FALLBACKS = {
    cls.__name__: cls for cls in (NotFittedError, DataConversionWarning, ConvergenceWarning)
}


def sklearn_class(fallback: type) -> type:
    """``fallback``, or once scikit-learn is loaded a subclass of it and scikit-learn's class."""
    if sys.modules.get("sklearn") is None:  # not loaded (or blocked with None)
        return fallback
    return _combined(fallback.__name__)


@functools.cache
def _combined(name: str) -> type:
    from sklearn import exceptions  # the one scikit-learn import in nnpipe.core

    fallback = FALLBACKS[name]
    cls = type(name, (getattr(exceptions, name), fallback), {"__module__": __name__})
    cls.__doc__ = fallback.__doc__
    copyreg.pickle(cls, _reduce)  # so an error raised in a Dask worker can travel back
    return cls


def _reduce(error: BaseException) -> tuple:
    return _rebuild, (type(error).__name__, error.args)


def _rebuild(name: str, args: tuple) -> BaseException:
    return sklearn_class(FALLBACKS[name])(*args)


def sklearn_tags(estimator_type: str, *, multi_output: bool = False) -> Any:
    """scikit-learn's tags for a supervised ``'regressor'`` or ``'classifier'``.

    Built from the scikit-learn module already loaded by whoever asks (only
    scikit-learn calls ``__sklearn_tags__``), so nnpipe.core never imports it.
    ``multi_output``: ``y`` may also be 2-D (n_samples, n_outputs).
    """
    tags = sys.modules["sklearn.utils._tags"]
    return tags.Tags(
        estimator_type=estimator_type,
        target_tags=tags.TargetTags(required=True, multi_output=multi_output),
        transformer_tags=None,
        regressor_tags=tags.RegressorTags() if estimator_type == "regressor" else None,
        classifier_tags=tags.ClassifierTags() if estimator_type == "classifier" else None,
    )
