"""train_out_of_core and the Trainer with the real MLPRegressor: equivalence, resume, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nnpipe.core.mlp import MLPClassifier, MLPRegressor
from nnpipe.data import (
    ArrayDataset,
    ParquetDataset,
    fit_scalers,
    iter_minibatches,
)
from nnpipe.training import train_out_of_core

from .conftest import assert_same_weights, small_model, write_parts


def test_streamed_training_equals_in_memory_training(setup):
    ds, X, y, split, xs, ys = setup
    kw = dict(epochs=3, split=split, x_scaler=xs, y_scaler=ys, random_state=2, restore_best=False)
    streamed = train_out_of_core(small_model(), ds, **kw).model
    in_memory = train_out_of_core(small_model(), ArrayDataset(X, y, rows_per_partition=100), **kw)
    assert_same_weights(streamed, in_memory.model)
    assert streamed.loss_curve_ == in_memory.model.loss_curve_
    # The same batches fed by hand into partial_fit give the same weights too.
    manual = small_model().set_target_scaler(ys)
    for epoch in range(3):
        for Xb, yb in iter_minibatches(
            ds, 50, epoch=epoch, subset="train", split=split, random_state=2, x_scaler=xs
        ):
            manual.partial_fit(Xb, yb)
    assert_same_weights(streamed, manual)


def test_callback_gets_epoch_metrics_and_validation_loss_drops(setup):
    ds, _, _, split, xs, ys = setup
    seen = []
    result = train_out_of_core(
        small_model(learning_rate_init=0.01),
        ds,
        epochs=4,
        split=split,
        x_scaler=xs,
        y_scaler=ys,
        callback=seen.append,
    )
    assert [m["epoch"] for m in seen] == [1, 2, 3, 4]
    assert set(seen[0]) == {
        "epoch",
        "train_loss",
        "val_loss",
        "learning_rate",
        "samples_per_s",
        "epoch_seconds",
    }
    assert seen[-1]["val_loss"] < seen[0]["val_loss"]
    assert seen[0]["learning_rate"] == 0.01 and seen[0]["samples_per_s"] > 0
    assert result.model.validation_loss_curve_ == [m["val_loss"] for m in seen]


def test_streamed_validation_loss_equals_cached(setup):
    ds, _, _, split, xs, ys = setup
    kw = dict(epochs=2, split=split, x_scaler=xs, y_scaler=ys)
    cached = train_out_of_core(small_model(), ds, **kw)
    streamed = train_out_of_core(small_model(), ds, validation_cache_bytes=0, **kw)
    a = [m["val_loss"] for m in cached.history]
    b = [m["val_loss"] for m in streamed.history]
    np.testing.assert_allclose(a, b, rtol=1e-5)


def test_resume_from_checkpoint_ends_with_the_same_weights(setup, tmp_path):
    ds, _, _, split, xs, ys = setup
    kw = dict(split=split, x_scaler=xs, y_scaler=ys, random_state=1)
    straight = train_out_of_core(small_model(), ds, epochs=4, **kw)
    first = train_out_of_core(small_model(), ds, epochs=2, checkpoint_dir=tmp_path, **kw)
    assert first.checkpoint.endswith("epoch-0002.npz")
    resumed = train_out_of_core(small_model(), ds, epochs=4, checkpoint_dir=tmp_path, **kw)
    assert resumed.resumed_from == 2 and resumed.epochs_done == 4
    assert_same_weights(straight.model, resumed.model)
    assert [m["epoch"] for m in resumed.history] == [1, 2, 3, 4]
    assert sorted(p.name for p in tmp_path.glob("epoch-*.npz")) == [
        f"epoch-{i:04d}.npz" for i in range(1, 5)
    ]
    state = json.loads((tmp_path / "training_state.json").read_text())
    assert state["epochs_done"] == 4 and state["dataset_fingerprint"] == ds.fingerprint


def test_resume_refuses_another_seed_or_dataset(setup, tmp_path, xy):
    ds, _, _, split, xs, ys = setup
    train_out_of_core(small_model(), ds, epochs=1, split=split, checkpoint_dir=tmp_path)
    with pytest.raises(ValueError, match=r"random_state=0, not 9; use the same seed"):
        train_out_of_core(
            small_model(), ds, epochs=2, split=split, checkpoint_dir=tmp_path, random_state=9
        )
    X, y = xy
    other = ParquetDataset(write_parts(tmp_path / "other", X, y, 500), targets="y")
    with pytest.raises(ValueError, match="trained on another dataset"):
        train_out_of_core(small_model(), other, epochs=2, split=split, checkpoint_dir=tmp_path)


def test_early_stopping_stops_and_restores_best_weights(setup, tmp_path):
    ds, _, _, split, xs, ys = setup
    model = small_model(n_iter_no_change=1, tol=10.0)  # no epoch can improve by 10
    result = train_out_of_core(
        model, ds, epochs=20, split=split, x_scaler=xs, y_scaler=ys, checkpoint_dir=tmp_path
    )
    assert result.stopped_early and result.epochs_done == 3
    again = train_out_of_core(
        small_model(), ds, epochs=20, split=split, checkpoint_dir=tmp_path, x_scaler=xs, y_scaler=ys
    )
    assert again.epochs_done == 3 and again.resumed_from == 3  # nothing more to do
    best = MLPRegressor.load(tmp_path / "epoch-0003.npz")
    best.restore_best_weights()
    assert_same_weights(result.model, best)


def test_classifier_trains_with_integer_labels(tmp_path, xy):
    X, _ = xy
    labels = (X[:, 0] > 0).astype(np.int64)
    ds = ParquetDataset(write_parts(tmp_path / "c", X, labels, 250), targets="y")
    xs, _ = fit_scalers(ds, "standard", None)
    clf = MLPClassifier(
        hidden_layer_sizes=(8,), batch_size=50, random_state=0, learning_rate_init=0.01
    )
    result = train_out_of_core(clf, ds, epochs=3, x_scaler=xs, classes=[0, 1])
    assert result.model.score(xs.transform(X), labels) > 0.9


def test_classifier_epochs_report_accuracy_and_validation_log_loss(tmp_path, xy):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from nnpipe.data import TrainValidationSplit
    from nnpipe.data.scaling import fit_scalers_and_classes

    X, _ = xy
    labels = np.where(X[:, 0] + X[:, 1] > 0, "up", "down")
    root = tmp_path / "c"
    root.mkdir()
    for i in range(4):
        rows = slice(250 * i, 250 * (i + 1))
        table = pa.table({"a": X[rows, 0], "b": X[rows, 1], "label": labels[rows]})
        pq.write_table(table, root / f"part-{i}.parquet")
    ds = ParquetDataset(root, targets="label", labels=True)
    split = TrainValidationSplit(0.2, seed=1)
    xs, classes = fit_scalers_and_classes(ds, split=split)
    clf = MLPClassifier(
        hidden_layer_sizes=(8,), batch_size=50, random_state=0, learning_rate_init=0.01
    )
    seen = []
    result = train_out_of_core(
        clf,
        ds,
        epochs=3,
        split=split,
        x_scaler=xs,
        classes=np.arange(2),
        callback=seen.append,
        restore_best=False,
    )
    assert {"train_accuracy", "val_accuracy"} <= set(seen[0])
    assert seen[-1]["val_accuracy"] > 0.9 and seen[-1]["train_accuracy"] > 0.9
    # The logged validation metrics are those of the final weights on the validation rows.
    model = result.model
    val = [ds.read_partition(i, "validation", split) for i in range(4)]
    Xv = xs.transform(np.concatenate([v[0] for v in val]))
    yv = np.concatenate([v[1][:, 0] for v in val]).astype(np.int64)
    assert seen[-1]["val_accuracy"] == pytest.approx(np.mean(model.predict(Xv) == yv))
    picked = model.predict_proba(Xv)[np.arange(len(yv)), yv]
    assert seen[-1]["val_loss"] == pytest.approx(-np.mean(np.log(picked)), rel=1e-4)
    assert model.validation_scores_ == [m["val_accuracy"] for m in seen]
    assert classes.tolist() == ["down", "up"]


def test_model_without_the_protocol_is_refused(setup):
    ds = setup[0]
    with pytest.raises(
        ValueError,
        match=r"object cannot be trained out of core: it has no "
        r"partial_fit, data_loss",
    ):
        train_out_of_core(object(), ds)
    with pytest.raises(ValueError, match=r"epochs=0 is invalid"):
        train_out_of_core(small_model(), ds, epochs=0)


def test_training_on_a_distributed_client_matches_local(setup, local_client):
    ds, _, _, split, xs, ys = setup
    kw = dict(epochs=2, split=split, x_scaler=xs, y_scaler=ys)
    local = train_out_of_core(small_model(), ds, **kw)
    remote = train_out_of_core(small_model(), ds, client=local_client, **kw)
    assert_same_weights(local.model, remote.model)
