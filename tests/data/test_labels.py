"""Label columns: classes found in the scaler's pass, read as class indices, bad labels refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nnpipe.data import DataError, ParquetDataset, TrainValidationSplit, fit_scalers
from nnpipe.data.labels import MAX_CLASSES
from nnpipe.data.scaling import fit_scalers_and_classes

ANIMALS = np.array(["emu", "cat", "dog"])


def write_labelled(root, labels, n_files=4, seed=0, label_type=None):
    """``len(labels)`` rows over ``n_files`` files: features x0, x1 and column ``label``."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(len(labels), 2))
    for i, rows in enumerate(np.array_split(np.arange(len(labels)), n_files)):
        label = pa.array(list(np.asarray(labels, dtype=object)[rows]), type=label_type)
        table = pa.table({"x0": X[rows, 0], "x1": X[rows, 1], "label": label})
        pq.write_table(table, root / f"part-{i:05d}.parquet")
    return root, X


def labels_of(ds, split, subset):
    ys = [ds.read_partition(i, subset, split)[1][:, 0] for i in range(ds.n_partitions)]
    return ds.classes[np.concatenate(ys).astype(int)]


@pytest.mark.parametrize(
    ("values", "label_type", "classes"),
    [
        (ANIMALS, None, ["cat", "dog", "emu"]),
        (np.array([7, -1, 3]), pa.int32(), [-1, 3, 7]),
        (np.array([True, False, True]), None, [False, True]),
        (np.array([2.0, 0.0, 1.0]), pa.float32(), [0.0, 1.0, 2.0]),
        (ANIMALS, pa.dictionary(pa.int8(), pa.string()), ["cat", "dog", "emu"]),
    ],
)
def test_classes_are_found_sorted_and_reads_give_their_indices(
    tmp_path, values, label_type, classes
):
    labels = values[np.random.default_rng(1).integers(0, 3, 600)]
    path, X = write_labelled(tmp_path / "ds", labels, label_type=label_type)
    ds = ParquetDataset(path, targets="label", labels=True)
    split = TrainValidationSplit(0.25, seed=3)
    x_scaler, found = fit_scalers_and_classes(ds, "standard", split=split)
    assert found.tolist() == classes and ds.classes.tolist() == classes
    # Reads give indices into the classes, the same rows as the labels written.
    both = np.concatenate([labels_of(ds, split, "train"), labels_of(ds, split, "validation")])
    assert sorted(both.tolist()) == sorted(labels.tolist())
    # The feature scaler of the same pass equals the plain scaler fit on the training rows.
    plain = ParquetDataset(path, features=["x0", "x1"])
    reference, _ = fit_scalers(plain, "standard", None, subset="train", split=split)
    np.testing.assert_allclose(x_scaler.mean_, reference.mean_, rtol=1e-12)
    np.testing.assert_allclose(x_scaler.var_, reference.var_, rtol=1e-10)


def test_labels_come_back_in_row_order(tmp_path):
    labels = ANIMALS[np.arange(90) % 3]
    path, _ = write_labelled(tmp_path / "ds", labels, n_files=3)
    ds = ParquetDataset(path, targets="label", labels=True, classes=["emu", "dog", "cat"])
    assert ds.classes.tolist() == ["cat", "dog", "emu"]  # sorted on setting
    y = np.concatenate([ds.read_partition(i)[1][:, 0] for i in range(3)])
    assert ds.classes[y.astype(int)].tolist() == labels.tolist()


def test_pandas_category_labels_and_a_column_split(tmp_path):
    root = tmp_path / "ds"
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        frame = pd.DataFrame(
            {
                "x0": rng.normal(size=50),
                "label": pd.Categorical(ANIMALS[rng.integers(0, 3, 50)]),
                "fold": np.full(50, i),
            }
        )
        frame.to_parquet(root / f"part-{i}.parquet")
    ds = ParquetDataset(root, features=["x0"], targets="label", labels=True)
    split = TrainValidationSplit(column="fold", validation_values=[2])
    xs, classes = fit_scalers_and_classes(ds, "minmax", split=split)
    assert classes.tolist() == ["cat", "dog", "emu"] and xs.n_samples_seen_ == 100


def test_one_class_is_refused(tmp_path):
    path, _ = write_labelled(tmp_path / "ds", np.array(["yes"] * 40))
    ds = ParquetDataset(path, targets="label", labels=True)
    with pytest.raises(DataError, match=r"only one class \(\['yes'\]\).*at least 2"):
        fit_scalers_and_classes(ds)


def test_a_continuous_float_target_is_refused_as_looking_continuous(tmp_path):
    values = np.random.default_rng(0).normal(size=200)
    path, _ = write_labelled(tmp_path / "ds", values, label_type=pa.float64())
    ds = ParquetDataset(path, targets="label", labels=True)
    with pytest.raises(DataError, match=r"'label' holds non-integer numbers.*looks continuous"):
        fit_scalers_and_classes(ds)


def test_too_many_distinct_values_look_like_an_id(tmp_path):
    path, _ = write_labelled(tmp_path / "ds", np.arange(MAX_CLASSES + 5), label_type=pa.int64())
    ds = ParquetDataset(path, targets="label", labels=True)
    with pytest.raises(DataError, match=f"more than {MAX_CLASSES} distinct values"):
        fit_scalers_and_classes(ds)


def validation_row(split, key, n):
    """The index of a validation row of the file named ``key`` with ``n`` rows."""
    return int(np.flatnonzero(split.validation_mask(key, n))[0])


def test_a_validation_label_no_training_row_has_is_refused_before_training(tmp_path):
    split = TrainValidationSplit(0.2, seed=0)
    labels = ANIMALS[np.arange(400) % 3].astype(object)
    labels[100 + validation_row(split, "part-00001.parquet", 100)] = "yak"  # file 1, held out
    path, _ = write_labelled(tmp_path / "ds", labels)
    ds = ParquetDataset(path, targets="label", labels=True)
    with pytest.raises(DataError, match=r"validation rows .* labels \['yak'\] .* no training row"):
        fit_scalers_and_classes(ds, split=split)
    # Without a split every row is a training row: "yak" is a class like the others.
    assert fit_scalers_and_classes(ds)[1].tolist() == ["cat", "dog", "emu", "yak"]


def test_reads_refuse_labels_outside_the_classes_and_need_the_classes(tmp_path):
    path, _ = write_labelled(tmp_path / "ds", ANIMALS[np.arange(40) % 3])
    ds = ParquetDataset(path, targets="label", labels=True)
    with pytest.raises(ValueError, match="classes of label column 'label' are not known yet"):
        ds.read_partition(0)
    ds.set_classes(["cat", "dog"])
    with pytest.raises(DataError, match=r"part-00000.parquet' holds labels \['emu'\]"):
        ds.read_partition(0)


def test_null_labels_follow_the_nan_policy(tmp_path):
    labels = ANIMALS[np.arange(120) % 3].astype(object)
    labels[[5, 100]] = None
    path, X = write_labelled(tmp_path / "ds", labels, n_files=2)
    with pytest.raises(DataError, match=r"column 'label': 1"):
        fit_scalers_and_classes(ParquetDataset(path, targets="label", labels=True))
    ds = ParquetDataset(path, targets="label", labels=True, nan_policy="drop")
    xs, classes = fit_scalers_and_classes(ds)
    assert ds.n_dropped == 2 and xs.n_samples_seen_ == 118
    keep = np.ones(120, bool)
    keep[[5, 100]] = False
    np.testing.assert_allclose(xs.mean_, X[keep].mean(axis=0), rtol=1e-12)
    assert sum(len(ds.read_partition(i)[0]) for i in range(2)) == 118


def test_label_datasets_are_checked_when_opened(tmp_path):
    path, _ = write_labelled(tmp_path / "ds", ANIMALS[np.arange(40) % 3])
    with pytest.raises(ValueError, match="exactly one target column"):
        ParquetDataset(path, targets=["label", "x1"], labels=True)
    with pytest.raises(DataError, match="'nope' not found"):
        ParquetDataset(path, targets="nope", labels=True)
    with pytest.raises(ValueError, match="labels=False"):
        ParquetDataset(path, features=["x0"], targets="x1", classes=[0, 1])
    # Without labels=True a string target is refused as before.
    with pytest.raises(DataError, match="must be numeric"):
        ParquetDataset(path, targets="label")
    nested = tmp_path / "nested"
    nested.mkdir()
    pq.write_table(pa.table({"x0": [1.0, 2.0], "label": [[1], [2]]}), nested / "p.parquet")
    with pytest.raises(DataError, match="class labels must be integers, strings or booleans"):
        ParquetDataset(nested, targets="label", labels=True)


def test_the_pass_runs_on_a_distributed_client(tmp_path, local_client):
    labels = ANIMALS[np.random.default_rng(2).integers(0, 3, 500)]
    path, _ = write_labelled(tmp_path / "ds", labels)
    split = TrainValidationSplit(0.2, seed=1)
    ds = ParquetDataset(path, targets="label", labels=True)
    here = fit_scalers_and_classes(ds, split=split)
    there = fit_scalers_and_classes(ds, split=split, client=local_client)
    assert here[1].tolist() == there[1].tolist() == ["cat", "dog", "emu"]
    np.testing.assert_array_equal(here[0].mean_, there[0].mean_)
