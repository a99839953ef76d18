"""MLPClassifier: binary and multiclass fitting, probabilities, streaming, persistence."""

from __future__ import annotations

import numpy as np
import pytest

from nnpipe.core.mlp import MLPClassifier, load_model


def blobs(n_classes=3, n=300, seed=0):
    rng = np.random.default_rng(seed)
    angles = 2 * np.pi * np.arange(n_classes) / n_classes
    centres = 4.0 * np.column_stack([np.cos(angles), np.sin(angles)])  # well apart
    labels = np.arange(n) % n_classes
    return centres[labels] + rng.normal(scale=0.7, size=(n, 2)), labels


def model(**kw):
    params = dict(hidden_layer_sizes=(16,), random_state=0, max_iter=60, learning_rate_init=0.02)
    params.update(kw)
    return MLPClassifier(**params)


@pytest.mark.parametrize("n_classes", [2, 4])
def test_separable_blobs_are_learned(n_classes):
    X, y = blobs(n_classes)
    clf = model().fit(X, y)
    assert clf.score(X, y) > 0.95
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), n_classes)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(clf.classes_[proba.argmax(axis=1)], clf.predict(X))


def test_string_labels_round_trip_through_save_and_load(tmp_path):
    X, y = blobs(3)
    names = np.array(["cat", "dog", "eel"])[y]
    clf = model(max_iter=20).fit(X, names)
    assert set(clf.predict(X)) <= {"cat", "dog", "eel"}
    clf.save(tmp_path / "clf.npz")
    loaded = load_model(tmp_path / "clf.npz")
    assert isinstance(loaded, MLPClassifier)
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))


def test_partial_fit_needs_classes_first_then_streams():
    X, y = blobs(3)
    clf = model(batch_size=32)
    with pytest.raises(ValueError, match="classes must be given"):
        clf.partial_fit(X[:32], y[:32])
    clf.partial_fit(X[:32], y[:32], classes=[0, 1, 2])
    for _ in range(30):
        for start in range(0, len(X), 32):
            clf.partial_fit(X[start : start + 32], y[start : start + 32])
    assert clf.score(X, y) > 0.9
    with pytest.raises(ValueError, match=r"labels not among classes.*\[7\]"):
        clf.partial_fit(X[:3], np.array([0, 7, 1]))


def test_early_stopping_records_validation_and_restores_best_weights():
    X, y = blobs(2, n=400)
    clf = model(early_stopping=True, n_iter_no_change=3, max_iter=200).fit(X, y)
    assert len(clf.validation_scores_) == len(clf.validation_loss_curve_) == clf.n_iter_
    assert clf.best_loss_ == min(clf.validation_loss_curve_)
    assert clf.n_iter_ < 200
    np.testing.assert_array_equal(clf._params, clf._best_params)


def test_loss_is_log_loss_of_predicted_probabilities():
    X, y = blobs(3)
    clf = model(max_iter=5).fit(X, y)
    p = clf.predict_proba(X)[np.arange(len(y)), y]
    assert clf.data_loss(X, y) == pytest.approx(-np.log(p).mean(), rel=1e-4)


def test_one_class_is_refused():
    X, _ = blobs(2)
    with pytest.raises(ValueError, match="at least 2 classes"):
        model().fit(X, np.zeros(len(X)))
