"""iter_minibatches: each row once per epoch, seeded shuffles, split hygiene, scaling, errors."""

from __future__ import annotations

import re
import threading

import numpy as np
import pytest

from nnpipe.core.scalers import MinMaxScaler, StandardScaler
from nnpipe.data import ArrayDataset, ParquetDataset, TrainValidationSplit, iter_minibatches
from nnpipe.data.dataset import DataError
from nnpipe.data.stream import MinibatchStream

from .conftest import write_parts


def row_ids(batches):
    return np.concatenate([X[:, 2] for X, _ in batches]).astype(int)


@pytest.fixture
def ds(parquet_xy):
    return ParquetDataset(parquet_xy[0], targets="y")


def test_every_row_is_seen_exactly_once_per_epoch(ds):
    for epoch in (0, 1):
        batches = list(iter_minibatches(ds, 64, epoch=epoch, buffer_partitions=3))
        assert sorted(row_ids(batches)) == list(range(1000))
        assert [len(X) for X, _ in batches] == [64] * 15 + [40]  # only the last is short


def test_batches_are_float32_and_y_is_1d_for_one_target(ds):
    X, y = next(iter(iter_minibatches(ds, 32)))
    assert X.dtype == np.float32 and y.dtype == np.float32
    assert X.shape == (32, 3) and y.shape == (32,)


def test_same_seed_same_batches_other_epoch_other_order(ds):
    a = row_ids(iter_minibatches(ds, 50, epoch=2, random_state=5))
    b = row_ids(iter_minibatches(ds, 50, epoch=2, random_state=5))
    c = row_ids(iter_minibatches(ds, 50, epoch=3, random_state=5))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_shuffle_buffer_mixes_rows_of_several_partitions(ds):
    X, _ = next(iter(iter_minibatches(ds, 100, buffer_partitions=4)))
    partitions = np.unique(X[:, 2].astype(int) // 100)
    assert len(partitions) == 4  # one batch draws from all four buffered files


def test_without_shuffle_rows_come_in_file_order(ds):
    ids = row_ids(iter_minibatches(ds, 64, shuffle=False))
    np.testing.assert_array_equal(ids, np.arange(1000))


def test_prefetch_does_not_change_the_batches(ds):
    a = list(iter_minibatches(ds, 64, prefetch=True, random_state=1))
    b = list(iter_minibatches(ds, 64, prefetch=False, random_state=1))
    for (Xa, ya), (Xb, yb) in zip(a, b, strict=True):
        np.testing.assert_array_equal(Xa, Xb)
        np.testing.assert_array_equal(ya, yb)


@pytest.mark.parametrize("kind", [StandardScaler, MinMaxScaler])
def test_scalers_are_applied_bit_for_bit(ds, parquet_xy, kind):
    _, X, y = parquet_xy
    xs = kind().fit(X)
    ys = kind().fit(y)
    Xb, yb = next(iter(iter_minibatches(ds, 1000, shuffle=False, x_scaler=xs, y_scaler=ys)))
    np.testing.assert_array_equal(Xb, xs.transform(X))
    np.testing.assert_array_equal(yb, ys.transform(y))
    assert Xb.flags.c_contiguous


def test_validation_rows_never_appear_in_training_batches(ds):
    split = TrainValidationSplit(0.25, seed=3)
    train = set(row_ids(iter_minibatches(ds, 64, subset="train", split=split)))
    val = set(row_ids(iter_minibatches(ds, 64, subset="validation", split=split)))
    assert not train & val
    assert train | val == set(range(1000))
    assert 180 < len(val) < 320
    for epoch in (1, 2):  # same split whatever the epoch's shuffle
        again = set(row_ids(iter_minibatches(ds, 64, epoch=epoch, subset="train", split=split)))
        assert again == train


def test_column_split_by_hive_partition(tmp_path, xy):
    X, y = xy
    X = X.copy()
    X[:, 2] = np.arange(1000)
    for fold in range(4):
        write_parts(tmp_path / "ds" / f"fold={fold}", X[fold::4], y[fold::4], 100)
    ds = ParquetDataset(tmp_path / "ds", targets="y")
    split = TrainValidationSplit(column="fold", validation_values=[3])
    val = row_ids(iter_minibatches(ds, 64, subset="validation", split=split))
    train = row_ids(iter_minibatches(ds, 64, subset="train", split=split))
    assert set(val) == set(range(3, 1000, 4))
    assert not set(train) & set(val) and len(train) == 750


def test_in_memory_dataset_gives_the_same_batches(ds, parquet_xy):
    _, X, y = parquet_xy
    mem = ArrayDataset(X, y, rows_per_partition=100)
    split = TrainValidationSplit(0.2)
    for subset in ("train", "validation"):
        a = list(iter_minibatches(ds, 64, subset=subset, split=split, epoch=1))
        b = list(iter_minibatches(mem, 64, subset=subset, split=split, epoch=1))
        assert len(a) == len(b)
        for (Xa, ya), (Xb, yb) in zip(a, b, strict=True):
            np.testing.assert_array_equal(Xa, Xb)
            np.testing.assert_array_equal(ya, yb)


def test_bad_stream_arguments_are_named(ds, parquet_xy):
    with pytest.raises(ValueError, match=r"batch_size=0 is invalid"):
        iter_minibatches(ds, 0)
    with pytest.raises(ValueError, match=r"subset='test' is not supported; allowed: 'all'"):
        iter_minibatches(ds, 8, subset="test", split=TrainValidationSplit())
    with pytest.raises(ValueError, match=r"subset='train' needs a split"):
        iter_minibatches(ds, 8, subset="train")
    with pytest.raises(ValueError, match="x_scaler is not fitted"):
        iter_minibatches(ds, 8, x_scaler=StandardScaler())
    with pytest.raises(ValueError, match="x_scaler was fitted on 2 columns but the dataset has 3"):
        iter_minibatches(ds, 8, x_scaler=StandardScaler().fit(np.ones((4, 2))))
    with pytest.raises(ValueError, match=r"validation_fraction=1.5 is invalid"):
        TrainValidationSplit(1.5)
    with pytest.raises(ValueError, match="needs validation_values"):
        TrainValidationSplit(column="fold")


def test_stream_reads_partitions_on_a_distributed_client(ds, local_client):
    a = list(iter_minibatches(ds, 64, random_state=4, client=local_client))
    b = list(iter_minibatches(ds, 64, random_state=4))
    assert sorted(row_ids(a)) == list(range(1000))
    for (Xa, _), (Xb, _) in zip(a, b, strict=True):
        np.testing.assert_array_equal(Xa, Xb)


def test_next_epoch_read_ahead_gives_the_same_batches(ds):
    stream = MinibatchStream(ds, 64, random_state=3)
    first = list(stream.epoch(0, prefetch_next=True))
    assert stream._ahead is not None and stream._ahead[:2] == (1, False)
    second = list(stream.epoch(1))
    fresh = list(MinibatchStream(ds, 64, random_state=3).epoch(1))
    np.testing.assert_array_equal(row_ids(second), row_ids(fresh))
    assert sorted(row_ids(first)) == list(range(1000))
    list(stream.epoch(1, prefetch_next=True))
    other = list(stream.epoch(4))  # not the epoch read ahead: that read is dropped
    np.testing.assert_array_equal(
        row_ids(other), row_ids(MinibatchStream(ds, 64, random_state=3).epoch(4))
    )
    list(stream.epoch(2, prefetch_next=True))
    stream.close()
    assert stream._ahead is None
    assert not [t for t in threading.enumerate() if t.name.startswith("nnpipe-")]


def test_stopping_early_ends_the_reader_thread(ds):
    batches = iter_minibatches(ds, 16, buffer_partitions=2)
    next(batches)
    batches.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("nnpipe-")]


def test_a_read_error_in_the_background_reaches_the_caller(parquet_xy):
    ds = ParquetDataset(parquet_xy[0], targets="y")
    bad = ds.partitions[int(MinibatchStream(ds, 64).partition_order(0)[5])].path  # 3rd group
    with open(bad, "wb") as fh:
        fh.write(b"not parquet")
    with pytest.raises(DataError, match=re.escape(bad)):
        list(iter_minibatches(ds, 64, buffer_partitions=2))
    assert not [t for t in threading.enumerate() if t.name.startswith("nnpipe-")]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_scaling_in_the_loader_leaves_the_dataset_as_it_was(parquet_xy, dtype):
    _, X, y = parquet_xy
    mem = ArrayDataset(X, y, rows_per_partition=100)
    xs, ys = StandardScaler(dtype=dtype).fit(X), MinMaxScaler(dtype=dtype).fit(y)
    for _ in range(2):  # a second pass sees the same rows, not rows scaled twice
        batches = list(
            iter_minibatches(mem, 1000, shuffle=False, x_scaler=xs, y_scaler=ys, dtype=dtype)
        )
        Xb, yb = batches[0]
        np.testing.assert_array_equal(Xb, xs.transform(X))
        np.testing.assert_array_equal(yb, ys.transform(y))
        assert Xb.flags.c_contiguous and Xb.dtype == dtype
    np.testing.assert_array_equal(mem.read_partition(3)[0], X[300:400])


def test_validation_rows_are_scaled_and_c_ordered(ds, parquet_xy):
    _, X, _ = parquet_xy
    xs = StandardScaler().fit(X)
    seen = {}
    stream = MinibatchStream(ds, 64, subset="train", split=TrainValidationSplit(0.3), x_scaler=xs)
    train = list(stream.epoch(0, lambda i, Xv, yv: seen.setdefault(i, (Xv.copy(), Xv, yv))))
    assert sorted(seen) == list(range(10))
    for copy, Xv, yv in seen.values():
        assert Xv.flags.c_contiguous and yv.flags.c_contiguous
        np.testing.assert_array_equal(copy, Xv)  # not overwritten by later reads
    rows = np.concatenate([Xv for _, Xv, _ in seen.values()] + [Xb for Xb, _ in train])
    np.testing.assert_array_equal(np.sort(rows[:, 2]), np.sort(xs.transform(X)[:, 2]))


def test_epochs_read_at_the_same_time_give_their_own_batches(ds):
    stream = MinibatchStream(ds, 32, random_state=6, buffer_partitions=2, prefetch=False)
    list(stream.epoch(0))
    a, b = stream.epoch(1), stream.epoch(2)
    next(a), next(b)
    list(a)
    rest_b = list(b)
    fresh = list(MinibatchStream(ds, 32, random_state=6, buffer_partitions=2).epoch(2))
    np.testing.assert_array_equal(row_ids(rest_b), row_ids(fresh[1:]))
    stream.close()


class _PlainReads:
    """A dataset with the partition interface but no read_partition_sides."""

    def __init__(self, dataset):
        self.dataset = dataset
        self.n_partitions = dataset.n_partitions
        self.n_features, self.n_targets = dataset.n_features, dataset.n_targets

    def read_partition(self, index, subset="all", split=None, dtype=np.float64):
        return self.dataset.read_partition(index, subset, split, dtype)


def test_a_dataset_with_only_read_partition_streams_the_same_batches(ds, parquet_xy):
    _, X, _ = parquet_xy
    xs = StandardScaler().fit(X)
    direct = list(iter_minibatches(ds, 32, random_state=8, x_scaler=xs))
    plain = list(iter_minibatches(_PlainReads(ds), 32, random_state=8, x_scaler=xs))
    assert len(plain) == len(direct)
    for (Xa, ya), (Xb, yb) in zip(direct, plain, strict=True):
        np.testing.assert_array_equal(Xa, Xb)
        np.testing.assert_array_equal(ya, yb)


def test_batches_kept_over_epochs_stay_as_they_were(ds):
    stream = MinibatchStream(ds, 16, random_state=9, buffer_partitions=2)
    kept = [list(stream.epoch(e)) for e in range(3)]
    for e, batches in enumerate(kept):
        fresh = list(MinibatchStream(ds, 16, random_state=9, buffer_partitions=2).epoch(e))
        for (Xa, ya), (Xb, yb) in zip(batches, fresh, strict=True):
            np.testing.assert_array_equal(Xa, Xb)
            np.testing.assert_array_equal(ya, yb)
