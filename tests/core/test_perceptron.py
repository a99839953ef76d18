"""Perceptron: separable data learned perfectly, XOR reported as not converged."""

from __future__ import annotations

import numpy as np
import pytest

from nnpipe.core.mlp import load_model
from nnpipe.core.perceptron import ConvergenceWarning, Perceptron


def separable(n=200, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, size=(n, 2))
    margin = X[:, 0] + 2 * X[:, 1] - 0.3
    keep = np.abs(margin) > 0.05
    return X[keep], (margin[keep] > 0).astype(int)


def test_linearly_separable_data_reaches_100_percent():
    X, y = separable()
    p = Perceptron(random_state=0).fit(X, y)
    assert p.converged_ and p.errors_[-1] == 0
    assert p.score(X, y) == 1.0
    slope, offset = p.boundary_line()
    # Every point lies on the side of the line its class says.
    above = X[:, 1] > slope * X[:, 0] + offset
    assert np.array_equal(above, y == 1) or np.array_equal(above, y == 0)
    assert np.all((p.decision_function(X) > 0) == (y == 1))


def test_xor_is_reported_as_not_converged():
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    y = np.array([0, 1, 1, 0])
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        p = Perceptron(max_iter=50, random_state=0).fit(X, y)
    assert not p.converged_
    assert p.n_iter_ == 50 and min(p.errors_) > 0
    assert p.score(X, y) < 1.0


def test_multiclass_one_vs_rest_and_save_load(tmp_path):
    rng = np.random.default_rng(1)
    centres = np.array([[-5.0, 0.0], [5.0, 0.0], [0.0, 8.0]])
    y = np.arange(150) % 3
    X = centres[y] + rng.normal(scale=0.5, size=(150, 2))
    p = Perceptron(random_state=0).fit(X, y)
    assert p.coef_.shape == (3, 2)
    assert p.score(X, y) == 1.0
    p.save(tmp_path / "p.npz")
    loaded = load_model(tmp_path / "p.npz")
    np.testing.assert_array_equal(loaded.decision_function(X), p.decision_function(X))


def test_perceptron_rule_first_update_by_hand():
    X = np.array([[2.0, 1.0]])
    y = np.array([1])
    Xb = np.vstack([X, [[-1.0, -1.0]]])
    with pytest.warns(ConvergenceWarning):  # one pass with a mistake: not yet converged
        p = Perceptron(eta0=0.5, max_iter=1, shuffle=False).fit(Xb, np.array([1, 0]))
    # Row 0 is misclassified at w=0 (score 0): w = 0.5 * x0, b = 0.5; row 1 then scores
    # 0.5*(-2-1)+0.5 = -1 (correct side, no update).
    np.testing.assert_allclose(p.coef_, [[1.0, 0.5]])
    np.testing.assert_allclose(p.intercept_, [0.5])
    assert y.shape == (1,)


def test_bad_parameters_and_inputs_are_named():
    X, y = separable()
    with pytest.raises(ValueError, match="eta0"):
        Perceptron(eta0=-1).fit(X, y)
    p = Perceptron(random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="3 features"):
        p.predict(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="boundary_line"):
        Perceptron(random_state=0).fit(np.hstack([X, X]), y).boundary_line()


def row_by_row(X, T, order_rng, passes, eta, fit_intercept):
    """The perceptron rule one row at a time: the reference the block search must match."""
    W, b, errors = np.zeros((X.shape[1], T.shape[1])), np.zeros(T.shape[1]), []
    for _ in range(passes):
        mistakes = 0
        for i in order_rng.permutation(len(X)):
            wrong = T[i] * (X[i] @ W + b) <= 0
            W += np.outer(X[i], eta * T[i] * wrong)
            b += eta * T[i] * wrong if fit_intercept else 0.0
            mistakes += int(wrong.sum())
        errors.append(mistakes)
    return W.T, b, errors


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_block_search_makes_the_same_updates_as_row_by_row(fit_intercept, n_classes):
    rng = np.random.default_rng(3)
    y = np.arange(300) % n_classes
    X = rng.normal(size=(300, 4)) + y[:, None]  # overlapping classes: many mistakes a pass
    p = Perceptron(eta0=0.5, max_iter=20, fit_intercept=fit_intercept, random_state=7)
    with pytest.warns(ConvergenceWarning):
        p.fit(X, y)
    T = np.where(y[:, None] == (np.arange(n_classes) if n_classes > 2 else [1]), 1.0, -1.0)
    coef, intercept, errors = row_by_row(X, T, np.random.default_rng(7), 20, 0.5, fit_intercept)
    assert p.errors_ == errors and min(errors) > 10
    np.testing.assert_allclose(p.coef_, coef, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(p.intercept_, intercept, rtol=1e-12, atol=1e-12)


def test_score_of_a_column_vector_y_is_the_accuracy():
    X, y = separable()
    p = Perceptron(max_iter=1, shuffle=False, random_state=0)
    with pytest.warns(ConvergenceWarning):
        p.fit(X, y)
    accuracy = np.mean(p.predict(X) == y)
    assert 0.5 < accuracy < 1.0
    assert p.score(X, y[:, None]) == p.score(X, y) == accuracy
