"""ParquetDataset: columns, alignment, Dask arrays, fingerprints and every bad-input error."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nnpipe.data import DataError, ParquetDataset, TrainValidationSplit, list_parquet_files

from .conftest import write_parts


def test_default_features_are_numeric_columns_except_targets_and_hive_keys(tmp_path, xy):
    X, y = xy
    for fold in (0, 1):
        sub = tmp_path / "ds" / f"fold={fold}"
        write_parts(sub, X[fold::2], y[fold::2], 250, {"name": np.array(["a"] * 1000)[fold::2]})
    ds = ParquetDataset(tmp_path / "ds", targets="y")
    assert ds.feature_names == ["x0", "x1", "x2"]
    assert ds.partition_columns == ["fold"]
    assert ds.n_partitions == 4 and ds.n_rows == 1000


def test_partitions_are_parquet_files_outside_hidden_and_underscore_entries(parquet_xy):
    path, _, _ = parquet_xy
    (path / "_SUCCESS").write_bytes(b"")
    (path / ".part-00001.parquet.1a2b.tmp").write_bytes(b"half written")
    for skipped in (".a=1", "_temporary"):
        (path / skipped).mkdir()
        (path / skipped / "part-00000.parquet").write_bytes(
            (path / "part-00000.parquet").read_bytes()
        )
    (path / "_fold=3").mkdir()  # a hive directory, whatever its first letter
    (path / "_fold=3" / "extra.pq").write_bytes((path / "part-00009.parquet").read_bytes())
    files = list_parquet_files(path)
    names = [f[len(str(path)) + 1 :] for f in files]
    assert names == ["_fold=3/extra.pq"] + [f"part-{i:05d}.parquet" for i in range(10)]
    assert ParquetDataset(path, targets="y").n_partitions == 11


def test_dask_arrays_are_aligned_row_for_row_with_known_chunks(parquet_xy):
    path, X, y = parquet_xy
    ds = ParquetDataset(path, targets="y")
    dX, dy = ds.to_dask()
    assert dX.chunks[0] == (100,) * 10 and dy.chunks[0] == dX.chunks[0]
    assert not any(np.isnan(c) for c in dX.chunks[0])
    np.testing.assert_array_equal(dX.compute(), X)
    np.testing.assert_array_equal(dy.compute()[:, 0], y)


def test_dask_arrays_after_filter_have_counted_chunks(parquet_xy):
    path, X, y = parquet_xy
    ds = ParquetDataset(path, targets="y", filters=[("x2", ">=", 950)])
    dX, dy = ds.to_dask()
    assert sum(dX.chunks[0]) == 50 == ds.n_rows
    np.testing.assert_array_equal(dX.compute(), X[950:])


def test_fingerprint_changes_with_the_files(parquet_xy):
    path, X, y = parquet_xy
    before = ParquetDataset(path, targets="y").fingerprint
    assert ParquetDataset(path, targets="y").fingerprint == before
    write_parts(path, X[:150], y[:150], 150)  # rewrites part-00000 with more rows
    after = ParquetDataset(path, targets="y")
    assert after.fingerprint != before
    assert after.describe()["fingerprint"] == after.fingerprint


def test_fsspec_url_is_read(xy):
    import fsspec

    X, y = xy
    fs = fsspec.filesystem("memory")
    for i in range(2):
        with fs.open(f"/nnpipe-test/part-{i}.parquet", "wb") as fh:
            pq.write_table(pa.table({"a": X[i::2, 0], "y": y[i::2]}), fh)
    ds = ParquetDataset("memory://nnpipe-test", targets="y")
    assert ds.n_rows == 1000 and ds.feature_names == ["a"]
    fs.rm("/nnpipe-test", recursive=True)


def test_missing_column_lists_the_columns_present(parquet_xy):
    path, _, _ = parquet_xy
    with pytest.raises(DataError, match=r"target column 'z' not found.*present: x0, x1, x2, y"):
        ParquetDataset(path, targets="z")


def test_non_numeric_column_is_refused(tmp_path, xy):
    X, y = xy
    write_parts(tmp_path / "ds", X, y, 500, {"name": np.array(["a"] * 1000)})
    with pytest.raises(DataError, match=r"feature column 'name' in .*part-00000.* type string"):
        ParquetDataset(tmp_path / "ds", features=["x0", "name"], targets="y")


def test_files_with_different_schemas_are_both_named(tmp_path, xy):
    X, y = xy
    write_parts(tmp_path / "ds", X, y, 500)
    pq.write_table(pa.table({"x0": X[:5, 0], "y": y[:5]}), tmp_path / "ds" / "part-00002.parquet")
    with pytest.raises(DataError, match=r"part-00000\.parquet.*part-00002\.parquet.*only in the f"):
        ParquetDataset(tmp_path / "ds", targets="y")


def test_nan_raises_with_file_column_and_count(tmp_path, xy):
    X, y = xy
    X = X.copy()
    X[[105, 110], 1] = np.nan
    X[120, 1] = np.inf
    path = write_parts(tmp_path / "ds", X, y, 100)
    ds = ParquetDataset(path, targets="y")
    with pytest.raises(DataError, match=r"part-00001\.parquet.*column 'x1': 3.*nan_policy: drop"):
        ds.to_dask()[0].compute()


def test_nan_drop_counts_what_it_dropped(tmp_path, xy):
    X, y = xy
    y = y.copy()
    y[[3, 500, 501]] = np.nan
    ds = ParquetDataset(write_parts(tmp_path / "ds", X, y, 100), targets="y", nan_policy="drop")
    assert ds.n_rows == 997 and ds.n_dropped == 3
    assert np.isfinite(ds.to_dask()[1].compute()).all()


def test_empty_dataset_errors(tmp_path, parquet_xy):
    (tmp_path / "none").mkdir()
    with pytest.raises(DataError, match="is empty: no Parquet files"):
        ParquetDataset(tmp_path / "none")
    pq.write_table(pa.table({"x": pa.array([], pa.float64())}), tmp_path / "zero.parquet")
    with pytest.raises(DataError, match="is empty: its files hold 0 rows"):
        ParquetDataset(tmp_path / "zero.parquet")
    path, _, _ = parquet_xy
    ds = ParquetDataset(path, targets="y", filters=[("x0", ">", 100.0)])
    with pytest.raises(DataError, match=r"is empty: 0 rows in subset 'all' after filters"):
        _ = ds.n_rows


def test_corrupt_file_is_named(parquet_xy):
    path, _, _ = parquet_xy
    (path / "part-00003.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match=r"cannot read Parquet file .*part-00003\.parquet"):
        ParquetDataset(path, targets="y")


def test_bad_parameters_name_the_allowed_values(parquet_xy):
    path, _, _ = parquet_xy
    with pytest.raises(ValueError, match=r"nan_policy='skip' is not supported; allowed: 'raise'"):
        ParquetDataset(path, nan_policy="skip")
    with pytest.raises(DataError, match=r"filters=.*cannot be applied.*present: x0"):
        ParquetDataset(path, targets="y", filters=[("nope", ">", 1)])
    with pytest.raises(DataError, match="does not exist"):
        ParquetDataset(path / "missing")
    with pytest.raises(ValueError, match="both features and targets"):
        ParquetDataset(path, features=["x0", "y"], targets="y")


def test_columns_of_several_row_groups_nulls_and_integers_are_read_like_pyarrow(tmp_path):
    rng = np.random.default_rng(3)
    a = rng.normal(size=1000).astype(np.float32)
    table = pa.table(
        {
            "a": a,
            "b": pa.array(np.arange(1000), pa.int64()),
            "c": pa.array(rng.normal(size=1000)).dictionary_encode(),
            "y": rng.normal(size=1000).astype(np.float32),
        }
    )
    pq.write_table(table, tmp_path / "part-00000.parquet", row_group_size=300)
    ds = ParquetDataset(tmp_path, targets="y")
    for dtype in (np.float32, np.float64):
        X, y = ds.read_partition(0, dtype=dtype)
        assert X.dtype == dtype and X.shape == (1000, 3)
        expected = np.column_stack([table.column(n).to_numpy() for n in ("a", "b", "c")])
        np.testing.assert_array_equal(X, expected.astype(dtype))
        np.testing.assert_array_equal(y[:, 0], table.column("y").to_numpy().astype(dtype))
    with_null = table.set_column(0, "a", pa.array([None, *a[1:]], pa.float32()))
    pq.write_table(with_null, tmp_path / "part-00000.parquet", row_group_size=300)
    ds = ParquetDataset(tmp_path, targets="y", nan_policy="drop")
    X, _ = ds.read_partition(0, dtype=np.float32)
    np.testing.assert_array_equal(X[:, 0], a[1:])


def test_finite_values_whose_sum_overflows_are_not_taken_for_infinite(tmp_path):
    big = np.full(100, 3e38, np.float32)  # the float32 sum overflows, every value is finite
    pq.write_table(pa.table({"x": big, "y": big}), tmp_path / "part-00000.parquet")
    ds = ParquetDataset(tmp_path, targets="y")
    X, y = ds.read_partition(0, dtype=np.float32)
    np.testing.assert_array_equal(X[:, 0], big)
    big[7] = np.inf
    pq.write_table(pa.table({"x": big, "y": big}), tmp_path / "part-00000.parquet")
    ds = ParquetDataset(tmp_path, targets="y")
    with pytest.raises(DataError, match=r"column 'x': 1, column 'y': 1"):
        ds.read_partition(0, dtype=np.float32)


def test_partition_reads_leave_arrow_threads_to_bulk_reads(parquet_xy):
    ds = ParquetDataset(parquet_xy[0], targets="y")
    calls = []

    class Recording:
        def __init__(self, fragment):
            self.fragment = fragment

        def to_table(self, **kwargs):
            calls.append(kwargs["use_threads"])
            return self.fragment.to_table(**kwargs)

    ds._fragments = [Recording(f) for f in ds._fragments]
    X, _ = ds.read_partition(0)
    ds.read_partition_sides(1, TrainValidationSplit(0.2))
    assert calls == [False, False]  # these run beside training: one thread each
    ds._read_table(2)
    assert calls[-1] is True
    np.testing.assert_array_equal(X, parquet_xy[1][:100])
