"""scikit-learn's own estimator checks, every one of them, one test per check.

scikit-learn is a dev dependency, so it is imported directly: a missing install
fails here rather than skipping the checks. No check is expected to fail.
"""

from __future__ import annotations

from sklearn.utils.estimator_checks import parametrize_with_checks

from nnpipe.core.mlp import MLPClassifier, MLPRegressor
from nnpipe.core.perceptron import Perceptron


@parametrize_with_checks([MLPRegressor(), MLPClassifier(), Perceptron()])
def test_estimator_passes_sklearn_check(estimator, check):
    check(estimator)
