"""scikit-learn's exception and warning classes when it is loaded, NumPy-only fallbacks when not."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import sklearn.exceptions

from nnpipe.core.mlp import MLPClassifier, MLPRegressor
from nnpipe.core.perceptron import ConvergenceWarning, Perceptron
from nnpipe.core.sklearn_compat import DataConversionWarning, NotFittedError

ROOT = Path(__file__).resolve().parents[2]


def test_predict_before_fit_raises_both_sklearn_and_nnpipe_not_fitted_error():
    for model in (MLPRegressor(), MLPClassifier(), Perceptron()):
        with pytest.raises(sklearn.exceptions.NotFittedError, match="not fitted") as caught:
            model.predict(np.zeros((2, 3)))
        assert isinstance(caught.value, NotFittedError)
        assert isinstance(caught.value, ValueError) and isinstance(caught.value, AttributeError)


def test_not_fitted_error_survives_pickling():
    with pytest.raises(NotFittedError) as caught:
        MLPRegressor().predict(np.zeros((2, 3)))
    copy = pickle.loads(pickle.dumps(caught.value))
    assert type(copy) is type(caught.value)
    assert copy.args == caught.value.args


def test_column_vector_labels_warn_with_sklearn_data_conversion_warning():
    X = np.arange(20.0).reshape(10, 2)
    y = (np.arange(10) >= 5).astype(int).reshape(-1, 1)
    for model in (MLPClassifier(hidden_layer_sizes=(3,), max_iter=2), Perceptron()):
        with pytest.warns(sklearn.exceptions.DataConversionWarning, match="column-vector y") as w:
            model.fit(X, y)
        assert issubclass(w[0].category, DataConversionWarning)
        assert model.predict(X).shape == (10,)


def test_regressor_takes_a_column_vector_as_one_output_without_warning():
    X = np.arange(20.0).reshape(10, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pred = MLPRegressor(hidden_layer_sizes=(3,), max_iter=2).fit(X, X[:, :1]).predict(X)
    assert pred.shape == (10, 1) and pred.dtype == np.float64


def test_perceptron_convergence_warning_is_sklearn_one_too():
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    with pytest.warns(sklearn.exceptions.ConvergenceWarning) as w:
        Perceptron(max_iter=3, random_state=0).fit(X, [0, 1, 1, 0])
    assert issubclass(w[0].category, ConvergenceWarning)


# Runs in a fresh interpreter where any import of scikit-learn fails.
BLOCKED = textwrap.dedent(
    """
    import sys

    class RefuseSklearn:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "sklearn":
                raise ImportError(f"{name} is blocked")
            return None

    sys.meta_path.insert(0, RefuseSklearn())
    try:
        import sklearn
    except ImportError:
        pass
    else:
        raise SystemExit("the blocker let scikit-learn in")

    import warnings
    import numpy as np
    from nnpipe import MLPClassifier, MLPRegressor, Perceptron
    from nnpipe.core.sklearn_compat import DataConversionWarning, NotFittedError

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = X @ [1.0, -2.0, 0.5]
    reg = MLPRegressor(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(X, y)
    assert reg.predict(X).shape == (60,)
    labels = (y > 0).astype(int)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5).fit(X, labels[:, None])
    assert [x.category for x in w] == [DataConversionWarning], w
    assert set(clf.predict(X)) <= {0, 1}
    assert Perceptron(random_state=0).fit(X, labels).score(X, labels) > 0.9
    try:
        MLPRegressor().predict(X)
    except NotFittedError as exc:
        assert type(exc) is NotFittedError, type(exc).__mro__
    assert "sklearn" not in sys.modules
    print("fitted and predicted without scikit-learn")
    """
)


def test_core_imports_fits_and_predicts_with_sklearn_blocked():
    out = subprocess.run(
        [sys.executable, "-c", BLOCKED], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "fitted and predicted without scikit-learn" in out.stdout
