"""Final evaluation metrics agree with scikit-learn's."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as sk

from nnpipe.tracking.evaluation import classification_metrics, regression_metrics


def test_regression_metrics_match_scikit_learn():
    rng = np.random.default_rng(1)
    y = rng.normal(-5.0, 2.0, 200)
    pred = y + rng.normal(0, 0.5, 200)
    got = regression_metrics(y, pred.astype(np.float32))
    p = pred.astype(np.float32).astype(np.float64)
    assert got["r2"] == pytest.approx(sk.r2_score(y, p), rel=1e-12)
    assert got["rmse"] == pytest.approx(np.sqrt(sk.mean_squared_error(y, p)), rel=1e-12)
    assert got["mae"] == pytest.approx(sk.mean_absolute_error(y, p), rel=1e-12)


def test_regression_metrics_multi_output_average_r2_uniformly():
    rng = np.random.default_rng(2)
    y = rng.normal(size=(50, 3))
    pred = y + rng.normal(0, 0.3, size=(50, 3))
    assert regression_metrics(y, pred)["r2"] == pytest.approx(sk.r2_score(y, pred), rel=1e-12)


def test_regression_metrics_reject_shape_mismatch():
    with pytest.raises(ValueError, match="shape"):
        regression_metrics(np.zeros(5), np.zeros(4))


def test_classification_metrics_match_scikit_learn():
    rng = np.random.default_rng(3)
    classes = np.array(["a", "b", "c"])
    proba = rng.dirichlet(np.ones(3), size=120)
    y_true = classes[rng.integers(0, 3, 120)]
    y_pred = classes[proba.argmax(axis=1)]
    got = classification_metrics(y_true, y_pred, proba, classes)
    assert got["accuracy"] == pytest.approx(sk.accuracy_score(y_true, y_pred))
    assert got["log_loss"] == pytest.approx(sk.log_loss(y_true, proba, labels=classes), rel=1e-9)
    assert got["f1_macro"] == pytest.approx(sk.f1_score(y_true, y_pred, average="macro"))


@pytest.mark.parametrize(
    ("y_true", "y_pred"),
    [
        ([0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 0, 2]),
        ([True, False, True, True], [True, True, True, True]),  # one label never predicted
        (["a", "b", "a", "a"], ["a", "c", "a", "b"]),  # "c" predicted, never true
    ],
)
def test_macro_f1_matches_scikit_learn_also_for_labels_seen_on_one_side(y_true, y_pred):
    got = classification_metrics(y_true, y_pred)["f1_macro"]
    with np.errstate(all="ignore"):
        want = sk.f1_score(y_true, y_pred, average="macro", zero_division=0)
    assert got == pytest.approx(want, rel=1e-12)


def test_classification_metrics_need_classes_with_probabilities():
    with pytest.raises(ValueError, match="classes"):
        classification_metrics([0, 1], [0, 1], proba=[[0.9, 0.1], [0.2, 0.8]])
    with pytest.raises(ValueError, match=r"\[7\]"):
        classification_metrics([0, 7], [0, 1], proba=[[0.9, 0.1], [0.2, 0.8]], classes=[0, 1])


@pytest.mark.parametrize("targets", [1, 3])
def test_regression_metrics_in_chunks_equal_one_pass(targets):
    from nnpipe.tracking.evaluation import RegressionMetrics

    rng = np.random.default_rng(5)
    # A large mean and a small spread: the naive sum-of-squares formula loses digits here.
    y = 1e4 + rng.normal(size=(3_001, targets))
    pred = y + 0.3 * rng.normal(size=y.shape)
    totals = RegressionMetrics()
    for chunk in np.array_split(np.arange(len(y)), [1, 700, 701, 2_000]):
        totals.update(y[chunk], pred[chunk])
    got, whole = totals.result(), regression_metrics(y, pred)
    for key in ("r2", "rmse", "mae"):
        assert got[key] == pytest.approx(whole[key], rel=1e-9)
    assert got["r2"] == pytest.approx(sk.r2_score(y, pred), rel=1e-9)
    assert got["val_rows"] == 3_001 and got["target_max"] == y.max()
    assert got["prediction_min"] == pred.min() and got["negative_target_fraction"] == 0.0
    with pytest.raises(ValueError, match="0 samples"):
        RegressionMetrics().result()
