"""Synthetic datasets and partition I/O: content, determinism, layout, atomic writes."""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nnpipe.data import (
    DataError,
    ParquetDataset,
    list_parquet_files,
    write_classification_dataset,
    write_hopfield_dataset,
    write_regression_dataset,
)
from nnpipe.data.partition_io import (
    arrays_to_table,
    bipolar_column,
    column_to_numpy,
    read_columns,
    read_patterns,
    write_parquet,
)
from nnpipe.data.recall_job import list_probe_files

PROBE_COLUMNS = ("probe_id", "probe", "pattern_id", "n_flipped")


def read_probe_file(path: str) -> dict[str, np.ndarray]:
    """One probe file: probe_id, probe (n, n_units) int8, pattern_id (truth), n_flipped."""
    table = read_columns(path, PROBE_COLUMNS)
    arrays = {name: column_to_numpy(table, name, path) for name in PROBE_COLUMNS}
    return {**arrays, "probe": bipolar_column(table, "probe", path)}


def test_regression_has_mostly_negative_targets_in_partitions(tmp_path):
    info = write_regression_dataset(tmp_path / "r", 2500, n_features=4, rows_per_partition=1000)
    assert info.n_partitions == 3 and len(list_parquet_files(tmp_path / "r")) == 3
    ds = ParquetDataset(tmp_path / "r", targets="y")
    assert ds.feature_names == ["x0", "x1", "x2", "x3"] and ds.n_rows == 2500
    y = ds.to_dask()[1].compute()
    assert (y < 0).mean() > 0.6 and (y > 0).any()
    assert ds.schema.field("x0").type == pa.float32()


def test_writers_are_deterministic_and_partition_size_does_not_change_the_model(tmp_path):
    a = write_regression_dataset(tmp_path / "a", 300, rows_per_partition=100, random_state=3)
    b = write_regression_dataset(tmp_path / "b", 300, rows_per_partition=100, random_state=3)
    for fa, fb in zip(a.files, b.files, strict=True):
        assert pq.read_table(fa).equals(pq.read_table(fb))


def test_writer_refuses_to_overwrite_unless_asked(tmp_path):
    write_regression_dataset(tmp_path / "r", 10)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_regression_dataset(tmp_path / "r", 10)
    write_regression_dataset(tmp_path / "r", 20, overwrite=True)
    assert ParquetDataset(tmp_path / "r", targets="y").n_rows == 20
    with pytest.raises(ValueError, match=r"n_rows=0 is invalid"):
        write_regression_dataset(tmp_path / "z", 0)


def test_classification_labels_cover_the_classes(tmp_path):
    write_classification_dataset(tmp_path / "c", 600, n_classes=4, rows_per_partition=250)
    ds = ParquetDataset(tmp_path / "c", targets="label")
    labels = ds.to_dask()[1].compute()[:, 0]
    assert set(np.unique(labels)) == {0, 1, 2, 3}
    assert ds.schema.field("label").type == pa.int64()


def test_hopfield_probes_are_patterns_with_exactly_n_flipped_units(tmp_path):
    info = write_hopfield_dataset(
        tmp_path / "h",
        n_patterns=3,
        n_units=40,
        n_probes=250,
        flip_fraction=0.1,
        rows_per_partition=100,
    )
    assert info.n_partitions == 3
    schema = pq.read_schema(info.files[1])
    assert schema.field("probe").type == pa.list_(pa.int8(), 40)
    patterns = read_patterns(tmp_path / "h")
    assert patterns.shape == (3, 40) and set(np.unique(patterns)) == {-1, 1}
    files = list_probe_files(tmp_path / "h" / "probes")
    parts = [read_probe_file(f) for f in files]
    ids = np.concatenate([p["probe_id"] for p in parts])
    np.testing.assert_array_equal(ids, np.arange(250))
    for p in parts:
        assert p["probe"].dtype == np.int8
        diff = (p["probe"] != patterns[p["pattern_id"]]).sum(axis=1)
        np.testing.assert_array_equal(diff, p["n_flipped"])
        assert np.all(p["n_flipped"] == 4)


def test_partition_write_is_atomic_and_2d_arrays_read_back(tmp_path):
    # Skipping finished partitions on a rerun: test_recall_job.py.
    info = write_hopfield_dataset(tmp_path / "h", n_units=10, n_probes=30, rows_per_partition=10)
    out = tmp_path / "out"
    states = np.ones((10, 10), dtype=np.int8)
    table = arrays_to_table({"probe_id": np.arange(10), "state": states})
    write_parquet(table, str(out / "part-00001.parquet"))
    assert [p.name for p in out.iterdir()] == ["part-00001.parquet"]  # no temp file left
    path = str(out / "part-00001.parquet")
    back = {"state": column_to_numpy(read_columns(path, ["state"]), "state", path)}
    np.testing.assert_array_equal(back["state"], states)
    assert info.columns["truth"] == "pattern_id"


def test_dataset_files_get_the_mode_of_a_plainly_created_file(tmp_path):
    # Written atomically through a temp file, yet readable as any new file would be.
    info = write_regression_dataset(tmp_path / "r", 10)
    (tmp_path / "plain").write_bytes(b"")
    assert os.stat(info.files[0]).st_mode == os.stat(tmp_path / "plain").st_mode


def test_partition_io_errors_name_file_and_column(tmp_path):
    with pytest.raises(ValueError, match="different lengths"):
        arrays_to_table({"a": np.arange(3), "b": np.arange(4)})
    write_parquet(arrays_to_table({"a": np.arange(3)}), str(tmp_path / "x.parquet"))
    with pytest.raises(
        DataError, match=r"x\.parquet' has no column 'probe_id'; columns present: a"
    ):
        read_probe_file(str(tmp_path / "x.parquet"))
    (tmp_path / "bad.parquet").write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"cannot read Parquet file .*bad\.parquet"):
        read_columns(str(tmp_path / "bad.parquet"), ["a"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no Parquet files"):
        ParquetDataset(tmp_path / "empty")


def test_each_writer_records_the_parameters_that_made_the_data(tmp_path):
    from nnpipe.data.synthetic import read_dataset_record

    reg = write_regression_dataset(tmp_path / "r", 30, n_features=2, rows_per_partition=10)
    hop = write_hopfield_dataset(tmp_path / "h", n_units=8, n_probes=5, flip_fraction=0.25)
    cls = write_classification_dataset(tmp_path / "c", 12, n_classes=4, random_state=3)
    assert read_dataset_record(tmp_path / "r") == {
        "kind": "regression",
        "parameters": reg.parameters,
    }
    assert reg.parameters["n_rows"] == 30 and reg.parameters["rows_per_partition"] == 10
    assert read_dataset_record(tmp_path / "h")["parameters"]["flip_fraction"] == 0.25
    assert read_dataset_record(tmp_path / "c")["parameters"]["random_state"] == 3
    assert hop.parameters["n_units"] == 8 and cls.parameters["n_classes"] == 4
    # The record is not a partition, and data without one says so with None.
    assert len(list_parquet_files(tmp_path / "r")) == 3
    assert read_dataset_record(tmp_path) is None
