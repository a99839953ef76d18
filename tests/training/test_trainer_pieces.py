"""The Trainer's reusable pieces: one epoch over any batches, state saved and loaded."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from nnpipe.core.mlp import MLPRegressor
from nnpipe.data import iter_minibatches
from nnpipe.training import Trainer, TrainingState, train_out_of_core

from .conftest import assert_same_weights, small_model


def epoch_batches(ds, split, xs, epoch, subset="train"):
    """One epoch's batches as a plain list, as train_out_of_core(random_state=2) cuts them."""
    kw = dict(epoch=epoch, subset=subset, split=split, random_state=2, x_scaler=xs)
    return list(iter_minibatches(ds, 50, **kw))


def test_one_epoch_over_a_plain_list_equals_train_out_of_core(setup):
    ds, _, _, split, xs, ys = setup
    streamed = train_out_of_core(
        small_model(),
        ds,
        epochs=1,
        split=split,
        x_scaler=xs,
        y_scaler=ys,
        random_state=2,
        restore_best=False,
    )
    trainer = Trainer(small_model().set_target_scaler(ys), random_state=2)
    batches = epoch_batches(ds, split, xs, 0)
    loss_sum, n_samples = trainer.train_epoch(batches)
    assert n_samples == sum(len(X) for X, _ in batches) and 0 < n_samples < ds.n_rows
    assert_same_weights(trainer.model, streamed.model)
    assert loss_sum / n_samples == streamed.history[0]["train_loss"]
    val = epoch_batches(ds, split, xs, 0, subset="validation")
    assert trainer.validation_loss(val) == pytest.approx(streamed.history[0]["val_loss"], 1e-6)


def test_train_epoch_stops_after_the_given_steps(setup):
    ds, _, _, split, xs, ys = setup
    batches = epoch_batches(ds, split, xs, 0)
    trainer = Trainer(small_model().set_target_scaler(ys))
    loss_sum, n_samples = trainer.train_epoch(iter(batches), steps=3)
    by_hand = small_model().set_target_scaler(ys)
    for X, y in batches[:3]:
        by_hand.partial_fit(X, y)
    assert n_samples == 150 and loss_sum > 0
    assert_same_weights(trainer.model, by_hand)
    assert trainer.validation_loss([]) is None  # no rows, no loss


def run_epoch(trainer, batches, val):
    started = time.perf_counter()
    loss_sum, n = trainer.train_epoch(batches)
    return trainer.end_epoch(loss_sum / n, trainer.validation_loss(val), 1.0, started)


def test_state_saves_and_loads_and_training_continues_bitwise(setup, tmp_path):
    ds, _, _, split, xs, ys = setup
    val = epoch_batches(ds, split, xs, 0, subset="validation")
    seen = []
    kw = dict(random_state=2, dataset_fingerprint=ds.fingerprint, checkpoint_dir=tmp_path)
    first = Trainer(small_model().set_target_scaler(ys), callback=seen.append, **kw)
    metrics = run_epoch(first, epoch_batches(ds, split, xs, 0), val)
    assert seen == [metrics] and metrics["epoch"] == 1
    assert first.result().checkpoint == str(tmp_path / "epoch-0001.npz")

    again = Trainer(small_model(), **kw)
    assert again.resume() and again.resumed_from == 1
    assert again.state == first.state
    assert_same_weights(again.model, first.model)
    for trainer in (first, again):
        run_epoch(trainer, epoch_batches(ds, split, xs, 1), val)
    assert_same_weights(again.model, first.model)

    def losses(trainer):
        return [(m["train_loss"], m["val_loss"]) for m in trainer.result().history]

    assert losses(again) == losses(first)
    assert again.result().epochs_done == 2 and again.result().resumed_from == 1


def test_state_file_keeps_its_keys(tmp_path):
    model = small_model().fit(np.ones((20, 2)), np.arange(20.0))
    state = TrainingState(random_state=3, dataset_fingerprint="ab" * 20, epochs_done=7)
    assert state.save(tmp_path, model) == tmp_path / "epoch-0007.npz"
    saved = json.loads((tmp_path / "training_state.json").read_text())
    assert list(saved) == [
        "epochs_done",
        "checkpoint",
        "stopped",
        "random_state",
        "dataset_fingerprint",
        "history",
        "best_checkpoint",
    ]
    assert saved["checkpoint"] == "epoch-0007.npz" and saved["random_state"] == 3
    loaded = TrainingState(random_state=3)
    assert_same_weights(loaded.load(tmp_path, MLPRegressor), model)
    assert loaded.epochs_done == 7 and loaded.checkpoint == "epoch-0007.npz"


def test_resume_without_state_starts_fresh_and_a_broken_state_is_named(tmp_path):
    trainer = Trainer(small_model(), checkpoint_dir=tmp_path)
    assert not trainer.resume() and trainer.resumed_from == 0
    assert not Trainer(small_model()).resume()  # no checkpoint_dir at all
    (tmp_path / "training_state.json").write_text('{"epochs_done": 2}')
    with pytest.raises(ValueError, match=r"training_state.json' is unreadable: 'checkpoint'"):
        trainer.resume()


def test_trainer_refuses_a_model_without_the_protocol_or_a_bad_callback():
    with pytest.raises(ValueError, match=r"dict cannot be trained out of core: it has no"):
        Trainer({})
    with pytest.raises(ValueError, match=r"callback=3 is not callable"):
        Trainer(small_model(), callback=3)


def test_validation_rows_too_big_to_keep_are_streamed_each_epoch(setup):
    ds, _, _, split, xs, ys = setup
    kw = dict(epochs=3, split=split, x_scaler=xs, y_scaler=ys, random_state=2)
    cached = train_out_of_core(small_model(), ds, **kw)
    streamed = train_out_of_core(small_model(), ds, validation_cache_bytes=1000, **kw)
    assert_same_weights(cached.model, streamed.model)
    np.testing.assert_allclose(
        [m["val_loss"] for m in cached.history], [m["val_loss"] for m in streamed.history], 1e-5
    )


@pytest.mark.parametrize("n_classes", [2, 3])
def test_classifier_counts_its_right_rows_from_the_steps_own_forward_pass(n_classes):
    import copy

    from nnpipe.core.mlp import MLPClassifier

    rng = np.random.default_rng(n_classes)
    X = rng.normal(size=(60, 3))
    y = rng.integers(0, n_classes, 60)
    clf = MLPClassifier(hidden_layer_sizes=(5,), batch_size=60, random_state=0)
    clf.partial_fit(X, y, classes=np.arange(n_classes))
    before = copy.deepcopy(clf)
    clf.partial_fit(X, y)
    # What the weights before the step predict: the forward pass the step was taken on.
    assert clf.batch_correct_ == np.count_nonzero(before.predict(X) == y)
    # A call of several steps has no one forward pass to count from.
    clf.partial_fit(np.vstack([X, X]), np.concatenate([y, y]))
    assert clf.batch_correct_ is None
    # The Trainer then counts with predict, after the step.
    trainer = Trainer(clf, classes=np.arange(n_classes))
    counts, X2, y2 = [0, 0], np.vstack([X, X]), np.concatenate([y, y])
    trainer.train_epoch([(X2, y2)], counts=counts)
    assert counts == [np.count_nonzero(clf.predict(X2) == y2), 120]


@pytest.mark.parametrize("n_classes", [2, 3])
def test_classifier_validation_loss_and_right_rows_come_from_one_forward_pass(n_classes):
    from nnpipe.core.mlp import MLPClassifier

    rng = np.random.default_rng(10 + n_classes)
    X = rng.normal(size=(80, 3)).astype(np.float32)
    y = rng.integers(0, n_classes, 80)
    clf = MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0).fit(X, y)
    loss, right = clf.loss_and_correct(X, y)
    assert loss == clf.data_loss(X, y)
    assert right == np.count_nonzero(clf.predict(X) == y)
    counts = [0, 0]
    mean = Trainer(clf, classes=np.arange(n_classes)).validation_loss(
        [(X[:50], y[:50]), (X[50:], y[50:])], counts=counts
    )
    assert counts == [right, 80]
    assert mean == pytest.approx(
        (clf.data_loss(X[:50], y[:50]) * 50 + clf.data_loss(X[50:], y[50:]) * 30) / 80
    )


def test_retention_keeps_the_last_k_and_the_best_epoch(tmp_path):
    model = small_model().fit(np.ones((20, 2)), np.arange(20.0))
    state = TrainingState(keep_last=2)
    for loss in [0.9, 0.2, 0.5, 0.6, 0.7]:  # epoch 2 is the best
        state.epochs_done += 1
        state.history.append({"train_loss": loss, "val_loss": loss + 0.01})
        state.save(tmp_path, model)
    names = sorted(p.name for p in tmp_path.glob("epoch-*.npz"))
    assert names == ["epoch-0002.npz", "epoch-0004.npz", "epoch-0005.npz"]
    saved = json.loads((tmp_path / "training_state.json").read_text())
    assert saved["best_checkpoint"] == "epoch-0002.npz"
    assert saved["checkpoint"] == "epoch-0005.npz"
    assert TrainingState().load(tmp_path, MLPRegressor) is not None


def test_without_keep_last_every_epoch_is_kept(tmp_path):
    model = small_model().fit(np.ones((20, 2)), np.arange(20.0))
    state = TrainingState()
    for loss in [0.3, 0.2, 0.1]:
        state.epochs_done += 1
        state.history.append({"train_loss": loss, "val_loss": None})
        state.save(tmp_path, model)
    assert len(list(tmp_path.glob("epoch-*.npz"))) == 3
