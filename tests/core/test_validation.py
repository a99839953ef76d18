"""Input errors name what is wrong, in the words scikit-learn's checks look for."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse

from nnpipe.core.mlp import MLPClassifier, MLPRegressor
from nnpipe.core.perceptron import Perceptron
from nnpipe.core.validation import check_array, check_class_labels

ESTIMATORS = [MLPRegressor, MLPClassifier, Perceptron]


def Xy(n=12):
    X = np.arange(3.0 * n).reshape(n, 3)
    return X, np.arange(n) % 2


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_sparse_input_is_refused_as_not_supported(cls):
    X, y = Xy()
    with pytest.raises(TypeError, match=r"X is a sparse csr_array; sparse input is not supp"):
        cls().fit(scipy.sparse.csr_array(X), y)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_complex_input_is_refused(cls):
    X, y = Xy()
    with pytest.raises(ValueError, match="Complex data not supported: X has dtype complex128"):
        cls().fit(X + 1j, y)


def test_object_arrays_of_numbers_are_converted_and_other_objects_named():
    X, _ = Xy()
    np.testing.assert_array_equal(check_array(X.astype(object), dtype=np.float64), X)
    bad = X.astype(object)
    bad[0, 0] = {"foo": "bar"}
    with pytest.raises(TypeError, match="X has dtype object and holds a non-number: .*dict"):
        check_array(bad)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_shape_errors_use_sklearn_wording(cls):
    X, y = Xy()
    with pytest.raises(ValueError, match=r"0 feature\(s\) \(shape=\(12, 0\)\) while a minimum"):
        cls().fit(X[:, :0], y)
    with pytest.raises(ValueError, match=r"empty: 0 sample\(s\) \(shape=\(0, 3\)\)"):
        cls().fit(X[:0], y[:0])
    model = cls(max_iter=100).fit(X, X[:, 0] > 15)  # separable: the perceptron converges
    with pytest.raises(ValueError, match="got 1-D shape \\(3,\\). Reshape your data"):
        model.predict(X[0])
    with pytest.raises(ValueError, match="X has 2 features, but \\w+ is expecting 3 features"):
        model.predict(X[:, :2])


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_missing_target_is_named(cls):
    with pytest.raises(ValueError, match=f"{cls.__name__} requires y to be passed, but the tar"):
        cls().fit(Xy()[0], None)


@pytest.mark.parametrize("cls", [MLPClassifier, Perceptron])
def test_classifiers_refuse_continuous_targets_and_a_single_class(cls):
    X, _ = Xy()
    with pytest.raises(ValueError, match=r"Unknown label type: continuous.*\[0\.5, 1\.5"):
        cls().fit(X, np.arange(12) + 0.5)
    with pytest.raises(ValueError, match=r"at least 2 classes.*got 1 class\(es\): \[3\]"):
        cls().fit(X[:1], [3])


def test_whole_float_labels_are_classes():
    y = check_class_labels(np.array([0.0, 1.0, 2.0]), "MLPClassifier")
    np.testing.assert_array_equal(y, [0, 1, 2])
    with pytest.raises(ValueError, match="y contains 1 NaN"):
        check_class_labels(np.array([0.0, np.nan]), "MLPClassifier")
    with pytest.raises(ValueError, match=r"1-D class labels \(n_samples,\); got shape \(2, 2\)"):
        check_class_labels(np.zeros((2, 2)), "MLPClassifier")
