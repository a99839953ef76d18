"""Data-parallel training on Dask workers: parity with one process, placement, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nnpipe.core.mlp import MLPRegressor
from nnpipe.data import ParquetDataset
from nnpipe.data.partition_io import DataError
from nnpipe.training import TrainingState, train_distributed
from nnpipe.training.distributed import balance_partitions
from nnpipe.training.shares import Share, Source, batches
from tests.training.conftest import write_parts


@pytest.fixture
def uneven(tmp_path):
    """700 rows in partitions of 100, 250, 50, 300 rows: shares cannot be equal."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(700, 4))
    y = np.tanh(X @ rng.normal(size=4)) + 0.1 * rng.normal(size=700)
    root = tmp_path / "uneven"
    start = 0
    for i, n in enumerate([100, 250, 50, 300]):
        write_parts(root / f"p{i}", X[start : start + n], y[start : start + n], n)
        (root / f"p{i}" / "part-00000.parquet").rename(root / f"part-{i:05d}.parquet")
        (root / f"p{i}").rmdir()
        start += n
    return ParquetDataset(root, targets="y")


def sgd(batch_size: int, learning_rate: float = 0.05) -> MLPRegressor:
    return MLPRegressor(
        hidden_layer_sizes=(8,), solver="sgd", learning_rate_init=learning_rate, momentum=0.9,
        alpha=0.0, batch_size=batch_size, dtype="float64", random_state=0,
        target_scaling=None,
    )  # fmt: skip


def single_process_reference(
    dataset, n_workers: int, b: int, epochs: int, learning_rate: float = 0.05
) -> MLPRegressor:
    """One process with batch n_workers * b: step k takes every worker's k-th batch."""
    counts = dataset.partition_row_counts()
    shares = [
        Share(w, tuple(p), tuple(counts[i] for i in p))
        for w, p in enumerate(balance_partitions(counts, n_workers))
    ]
    source = Source(dataset, None, None, "float64", np.float64, run="reference")
    model = sgd(n_workers * b, learning_rate)
    for epoch in range(epochs):
        per_worker = [list(batches(source, s, epoch, 0, 10**6, b)) for s in shares]
        for k in range(max(len(bs) for bs in per_worker)):
            step = [bs[k] for bs in per_worker if k < len(bs)]
            model.partial_fit(
                np.concatenate([s[0] for s in step]), np.concatenate([s[1] for s in step])
            )
    return model


def relative_difference(a: MLPRegressor, b: MLPRegressor) -> float:
    pa, pb = a.to_arrays()[0]["params"], b.to_arrays()[0]["params"]
    return float(np.linalg.norm(pa - pb) / np.linalg.norm(pb))


def test_synchronous_rounds_equal_one_process_with_n_times_the_batch(two_workers, uneven):
    result = train_distributed(
        sgd(32), uneven, workers=2, client=two_workers, local_steps=1, warmup_epochs=0,
        epochs=3, batch_size=32, early_stopping=False, restore_best=False,
        scale_learning_rate=False,
    )  # fmt: skip
    reference = single_process_reference(uneven, 2, 32, epochs=3)
    assert result.workers == 2 and result.epochs_done == 3
    assert relative_difference(result.model, reference) < 1e-6
    np.testing.assert_allclose(result.model.coefs_[0], reference.coefs_[0], rtol=1e-6, atol=1e-12)


def test_by_default_the_learning_rate_scales_with_the_workers(two_workers, uneven):
    result = train_distributed(
        sgd(32, 0.02), uneven, workers=2, client=two_workers, local_steps=1, warmup_epochs=0,
        epochs=1, batch_size=32, early_stopping=False, restore_best=False,
    )  # fmt: skip
    assert result.model.learning_rate_init == pytest.approx(0.04)
    reference = single_process_reference(uneven, 2, 32, epochs=1, learning_rate=0.04)
    assert relative_difference(result.model, reference) < 1e-6


def test_local_steps_are_not_synchronous_sgd(two_workers, uneven):
    # The parity above is a property of H = 1: with H = 4 the averaged model differs.
    result = train_distributed(
        sgd(32), uneven, workers=2, client=two_workers, local_steps=4, warmup_epochs=0,
        epochs=1, batch_size=32, early_stopping=False, restore_best=False,
        scale_learning_rate=False,
    )  # fmt: skip
    reference = single_process_reference(uneven, 2, 32, epochs=1)
    assert relative_difference(result.model, reference) > 1e-4


def test_shares_are_balanced_by_rows_not_files():
    shares = balance_partitions([100, 250, 50, 300], 2)
    rows = [sum([100, 250, 50, 300][i] for i in s) for s in shares]
    assert sorted(rows) == [350, 350]
    assert balance_partitions([10, 0, 10, 10], 3) == [[0], [2], [3]]


def test_more_workers_than_partitions_is_refused():
    with pytest.raises(ValueError, match=r"workers=5 but dataset 'd' has 4 partitions"):
        balance_partitions([1, 2, 3, 4], 5, "d")


def test_checkpoints_each_epoch_and_resumes_where_it_stopped(two_workers, uneven, tmp_path):
    options = dict(
        workers=2, client=two_workers, local_steps=2, warmup_epochs=1, batch_size=32,
        early_stopping=False, restore_best=False,
    )  # fmt: skip
    whole = train_distributed(sgd(32), uneven, epochs=3, **options)
    checkpoints = tmp_path / "ck"
    first = train_distributed(sgd(32), uneven, epochs=2, checkpoint_dir=checkpoints, **options)
    assert sorted(p.name for p in checkpoints.glob("epoch-*.npz")) == [
        "epoch-0001.npz",
        "epoch-0002.npz",
    ]
    state = TrainingState()
    assert state.load(checkpoints, MLPRegressor) is not None and state.epochs_done == 2
    assert [m["workers"] for m in first.history] == [2, 2]
    resumed = train_distributed(sgd(32), uneven, epochs=3, checkpoint_dir=checkpoints, **options)
    assert resumed.resumed_from == 2 and resumed.epochs_done == 3
    assert relative_difference(resumed.model, whole.model) < 1e-12


def test_epoch_and_round_metrics_reach_the_callbacks(two_workers, uneven):
    epochs, rounds = [], []
    train_distributed(
        sgd(32), uneven, workers=2, client=two_workers, epochs=2, batch_size=32,
        local_steps=4, warmup_epochs=1, callback=epochs.append, round_callback=rounds.append,
    )  # fmt: skip
    assert [m["local_steps"] for m in epochs] == [1, 4]
    assert all(m["workers_alive"] == 2 and m["workers_lost"] == 0 for m in epochs)
    assert all(m["compute_seconds"] > 0 for m in epochs)
    # 350 rows a worker: 11 batches of 32, one round each, then rounds of 4 batches.
    assert len(rounds) == 11 + 3
    assert [r["round"] for r in rounds] == list(range(1, 15))
    assert all(np.isfinite(r["round_train_loss"]) and r["workers_alive"] == 2 for r in rounds)


def test_a_dataset_the_workers_cannot_see_names_path_and_worker(two_workers, uneven, tmp_path):
    # Opened (and checked) here, then moved away before the workers read it.
    Path(uneven.path).rename(tmp_path / "moved")
    where = r"Dask worker inproc://\S+ cannot read partition \d+ of dataset '.*uneven'"
    with pytest.raises(DataError, match=where):
        train_distributed(sgd(32), uneven, workers=2, client=two_workers, epochs=1)


def test_more_workers_than_the_cluster_has_waits_then_says_so(two_workers, uneven):
    with pytest.raises(ValueError, match=r"workers=3 but the Dask cluster at .* has 2 worker"):
        train_distributed(
            sgd(32), uneven, workers=3, client=two_workers, epochs=1, worker_timeout=0.5
        )


class CountingReads:
    """A dataset that counts the partition reads made through it."""

    def __init__(self, dataset):
        self.dataset, self.reads = dataset, []

    def __getattr__(self, name):
        return getattr(self.dataset, name)

    def read_partition(self, index, *args, **kw):
        self.reads.append(index)
        return self.dataset.read_partition(index, *args, **kw)


@pytest.mark.parametrize("group", [1, 2, 4])
def test_a_worker_reads_each_partition_once_an_epoch_and_trains_each_row_once(uneven, group):
    counting = CountingReads(uneven)
    counts = uneven.partition_row_counts()
    share = Share(0, (0, 1, 2, 3), tuple(counts))
    source = Source(counting, None, None, "float64", np.float64, run=f"once-{group}", group=group)
    X_all = np.concatenate([uneven.read_partition(i)[0] for i in range(4)])
    for epoch in range(2):
        counting.reads.clear()
        seen = [
            X for first in range(0, 22, 4) for X, _ in batches(source, share, epoch, first, 4, 32)
        ]
        assert sorted(counting.reads) == [0, 1, 2, 3]  # once each, round after round
        rows = np.concatenate(seen)
        assert len(rows) == 700 and [len(X) for X in seen[:-1]] == [32] * 21
        # Every row once: the epoch is a permutation of the share's rows.
        np.testing.assert_array_equal(
            np.sort(rows, axis=0, kind="stable")[:, 0], np.sort(X_all[:, 0])
        )
        assert not np.array_equal(rows, X_all)  # shuffled


def test_auto_local_steps_gives_rounds_of_about_half_a_second_and_four_an_epoch():
    from nnpipe.training.placement import auto_local_steps

    # A small network on a large share: many cheap steps a round.
    small = auto_local_steps([8, 64, 64, 1], 256, 50_000_000)
    assert 900 <= small <= 1300
    # A large one: each step is expensive, so fewer of them.
    large = auto_local_steps([8, 512, 512, 1], 256, 50_000_000)
    assert 25 <= large <= 45
    # A share of 94 batches is averaged at least 4 times an epoch.
    assert auto_local_steps([8, 64, 64, 1], 256, 24_000) == 24
    assert auto_local_steps([8, 64, 64, 1], 256, 10) == 1


@pytest.mark.parametrize("value", [0, -3, "fast", 2.5])
def test_local_steps_must_be_auto_or_a_positive_integer(two_workers, uneven, value):
    with pytest.raises(ValueError, match=r"local_steps=.* expected 'auto' or an integer > 0"):
        train_distributed(sgd(32), uneven, workers=2, client=two_workers, local_steps=value)


def test_auto_local_steps_is_what_the_run_used(two_workers, uneven):
    epochs = []
    result = train_distributed(
        sgd(32), uneven, workers=2, client=two_workers, epochs=1, batch_size=32,
        callback=epochs.append,
    )  # fmt: skip
    # 350 rows a worker: 11 batches, averaged at least 4 times: H = 3.
    assert result.local_steps == 3 and epochs[0]["local_steps"] == 3


def test_a_worker_holds_one_group_of_its_share_whatever_its_size(uneven):
    from nnpipe.training.shares import GROUPS

    counts = uneven.partition_row_counts()
    share = Share(0, (0, 1, 2, 3), tuple(counts))
    source = Source(uneven, None, None, "float64", np.float64, run="two-groups", group=1)
    GROUPS.clear()
    for epoch in range(2):
        for first in range(0, 22, 2):
            for _ in batches(source, share, epoch, first, 2, 32):
                assert len(GROUPS.items) == 1
    GROUPS.clear()


def test_a_groups_last_batch_lets_the_group_go_before_the_next_is_read(uneven):
    # The trainer's loop still holds the batch it last trained on while the next
    # batch is made: that batch must not keep its whole group alive while the next
    # group's partitions are read, or a worker holds two groups at its peak.
    import weakref

    from nnpipe.training.shares import GROUPS

    built: list[weakref.ref] = []
    alive_at_read: list[int] = []

    class Watching(CountingReads):
        def read_partition(self, index, *args, **kw):
            alive_at_read.append(sum(ref() is not None for ref in built))
            return super().read_partition(index, *args, **kw)

    counts = uneven.partition_row_counts()
    share = Share(0, (0, 1, 2, 3), tuple(counts))
    source = Source(Watching(uneven), None, None, "float64", np.float64, run="last", group=1)
    GROUPS.clear()
    held = None
    for X, y in batches(source, share, 0, 0, 10**6, 32):
        held = (X, y)  # as the trainer's loop variable holds it
        for group in GROUPS.items.values():
            if not any(ref() is group[0] for ref in built):
                built.append(weakref.ref(group[0]))
        del group
    assert held is not None and len(built) == 4
    assert alive_at_read == [0, 0, 0, 0]
    GROUPS.clear()
