"""MLPRegressor: negative targets, streaming contract, persistence, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from nnpipe.core.mlp import MLPRegressor, load_model
from nnpipe.core.scalers import StandardScaler
from nnpipe.core.serialization import ModelFileError


def negative_data(n=600, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-3, -1, size=(n, 3))  # inputs all negative
    y = X @ np.array([1.5, -0.5, 2.0]) - 5.0 + 0.3 * np.sin(3 * X[:, 0])  # targets all negative
    return X, y


def small_model(**kw):
    params = dict(
        hidden_layer_sizes=(16,),
        activation="tanh",
        random_state=0,
        max_iter=60,
        learning_rate_init=0.01,
    )
    params.update(kw)
    return MLPRegressor(**params)


def test_default_regressor_predicts_negative_targets():
    X, y = negative_data()
    assert y.max() < 0
    model = small_model().fit(X, y)
    pred = model.predict(X)
    assert pred.shape == y.shape
    assert pred.max() < 0
    assert model.score(X, y) > 0.95


def test_logistic_output_that_cannot_reach_targets_is_refused():
    X, y = negative_data()
    with pytest.raises(ValueError, match=r"logistic.*\[0, 1\].*span \[-") as err:
        small_model(output_activation="logistic").fit(X, y)
    assert "identity" in str(err.value)


def test_logistic_output_with_minmax_targets_is_accepted():
    X, y = negative_data()
    model = small_model(output_activation="logistic", target_scaling="minmax").fit(X, y)
    assert model.predict(X).max() < 0


def test_multi_output_targets_keep_their_shape():
    X, y = negative_data()
    Y = np.column_stack([y, -2 * y])
    model = small_model(max_iter=5).fit(X, Y)
    assert model.predict(X[:7]).shape == (7, 2)


def test_partial_fit_on_one_batch_is_one_optimizer_step():
    X, y = negative_data(64)
    model = small_model(batch_size=64)
    model.partial_fit(X, y)
    assert model._optimizer.t == 1
    model.partial_fit(X[:10], y[:10])
    assert model._optimizer.t == 2
    assert model.n_iter_ == 0  # epochs are recorded by record_epoch, not partial_fit
    assert np.isfinite(model.batch_loss_)


def test_set_target_scaler_is_used_by_streaming_partial_fit():
    X, y = negative_data()
    scaler = StandardScaler().fit(y.reshape(-1, 1))
    model = small_model(batch_size=50).set_target_scaler(scaler)
    model.partial_fit(X[:50], y[:50])  # a batch whose own mean differs from the total
    assert model.target_scaler_ is scaler
    np.testing.assert_allclose(model.target_scaler_.mean_, [y.mean()])


def test_record_epoch_tracks_best_and_stops_after_n_iter_no_change():
    X, y = negative_data(100)
    model = small_model(n_iter_no_change=2, tol=0.0).partial_fit(X, y)
    assert model.record_epoch(1.0, validation_loss=0.5) is False
    assert model.best_loss_ == 0.5
    best = model._params.copy()
    model.partial_fit(X, y)
    assert model.record_epoch(0.9, validation_loss=0.6) is False
    assert model.record_epoch(0.9, validation_loss=0.6) is False
    assert model.record_epoch(0.9, validation_loss=0.6) is True
    assert model.loss_curve_ == [1.0, 0.9, 0.9, 0.9]
    assert model.validation_loss_curve_ == [0.5, 0.6, 0.6, 0.6]
    model.restore_best_weights()
    np.testing.assert_array_equal(model._params, best)


def test_loss_is_mean_data_loss_in_scaled_units():
    X, y = negative_data()
    model = small_model(max_iter=5, alpha=1.0).fit(X, y)
    ys = model.target_scaler_.transform(y.reshape(-1, 1))
    pred_scaled = model.target_scaler_.transform(model.predict(X).reshape(-1, 1))
    expected = 0.5 * np.mean((pred_scaled - ys) ** 2)
    assert model.data_loss(X, y) == pytest.approx(expected, rel=1e-4)


def test_same_seed_same_data_gives_bitwise_identical_weights():
    X, y = negative_data()
    a = small_model(max_iter=5).fit(X, y)
    b = small_model(max_iter=5).fit(X, y)
    np.testing.assert_array_equal(a._params, b._params)
    c = small_model(max_iter=5, random_state=1).fit(X, y)
    assert not np.array_equal(a._params, c._params)


def test_save_load_predicts_the_same(tmp_path):
    X, y = negative_data()
    model = small_model(max_iter=5).fit(X, y)
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = MLPRegressor.load(path)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert loaded.get_params() == model.get_params()
    assert loaded.loss_curve_ == model.loss_curve_
    assert isinstance(load_model(path), MLPRegressor)


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_train_save_load_resume_equals_uninterrupted_training(tmp_path, solver):
    X, y = negative_data()
    kw = dict(solver=solver, n_iter_no_change=100, batch_size=64, learning_rate_init=0.01)
    full = small_model(max_iter=10, **kw).fit(X, y)
    half = small_model(max_iter=5, **kw).fit(X, y)
    half.save(tmp_path / "half.npz")
    resumed = MLPRegressor.load(tmp_path / "half.npz").set_params(warm_start=True).fit(X, y)
    np.testing.assert_array_equal(resumed._params, full._params)
    assert resumed.n_iter_ == 10
    assert resumed.loss_curve_ == full.loss_curve_


def test_loading_a_file_of_another_kind_is_refused(tmp_path):
    X, y = negative_data(50)
    StandardScaler().fit(X).save(tmp_path / "scaler.npz")
    with pytest.raises(ModelFileError, match="StandardScaler"):
        MLPRegressor.load(tmp_path / "scaler.npz")


def test_partial_fit_after_fit_continues_with_the_optimizer_state():
    X, y = negative_data()
    model = small_model(max_iter=3, batch_size=100).fit(X, y)
    steps, moment = model._optimizer.t, model._optimizer.m.copy()
    assert steps == 3 * 6
    model.partial_fit(X[:100], y[:100])
    assert model._optimizer.t == steps + 1
    assert not np.array_equal(model._optimizer.m, moment)


def test_float64_dtype_is_kept_end_to_end():
    X, y = negative_data(100)
    model = small_model(max_iter=2, dtype="float64").fit(X, y)
    assert model.coefs_[0].dtype == np.float64
    assert model.predict(X).dtype == np.float64
    assert small_model(max_iter=2).fit(X, y).coefs_[0].dtype == np.float32


def test_sgd_adaptive_schedule_divides_learning_rate_on_plateau():
    X, y = negative_data(200)
    model = small_model(solver="sgd", learning_rate="adaptive", n_iter_no_change=1)
    model.set_params(tol=1e9, max_iter=4, learning_rate_init=0.05)  # nothing counts as better
    model.fit(X, y)
    assert model.learning_rate_ < 0.05
    assert model.learning_rate_ == 0.05 / 5


def test_early_stopping_on_regressor_uses_validation_loss():
    X, y = negative_data()
    model = small_model(early_stopping=True, max_iter=30).fit(X, y)
    assert model.best_loss_ == min(model.validation_loss_curve_)
    assert len(model.validation_scores_) == model.n_iter_
    assert max(model.validation_scores_) > 0.8


def test_tampered_model_file_is_refused_with_the_array_named(tmp_path):
    from nnpipe.core.serialization import load_npz, save_npz

    X, y = negative_data(50)
    small_model(max_iter=1).fit(X, y).save(tmp_path / "m.npz")
    arrays, meta = load_npz(tmp_path / "m.npz")
    arrays["params"] = arrays["params"][:-1]
    meta.pop("format_version")
    save_npz(tmp_path / "bad.npz", arrays, meta)
    with pytest.raises(ModelFileError, match="'params' has shape"):
        MLPRegressor.load(tmp_path / "bad.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ModelFileError, match="not a readable"):
        load_model(tmp_path / "junk.npz")
