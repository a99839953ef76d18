"""Whole-partition NumPy I/O: one Parquet file <-> a dict of arrays.

2-D arrays are stored as fixed-size list columns (a Hopfield pattern of
``n_units`` int8 values per row). Writes go to a hidden temp file that is renamed
into place, so a partition file is either complete or absent: a job that dies
half-way leaves nothing a rerun would mistake for done work.
"""

from __future__ import annotations

import os
import posixpath
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .dataset import DataError, list_parquet_files, resolve_filesystem

PROBE_COLUMNS = ("probe_id", "probe", "pattern_id", "n_flipped")


def list_partitions(path: str | os.PathLike, storage_options: dict | None = None) -> list[str]:
    """Sorted Parquet partition files of a dataset directory (or fsspec URL)."""
    files = list_parquet_files(path, storage_options)
    if not files:
        raise DataError(f"dataset {os.fspath(path)!r} is empty: no Parquet files found")
    return files


def _column_to_numpy(col: pa.ChunkedArray, name: str, path: str) -> np.ndarray:
    col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    if pa.types.is_fixed_size_list(col.type):
        width = col.type.list_size
        if col.null_count:
            raise DataError(f"file {path!r} column {name!r} has {col.null_count} null rows")
        return col.flatten().to_numpy(zero_copy_only=False).reshape(-1, width)
    if col.null_count:
        raise DataError(f"file {path!r} column {name!r} has {col.null_count} null values")
    return col.to_numpy(zero_copy_only=False)


def read_arrays(
    path: str, columns: Sequence[str] | None = None, storage_options: dict | None = None
) -> dict[str, np.ndarray]:
    """Read one partition file as ``{column: ndarray}`` (fixed-size lists -> 2-D)."""
    _, fs, p = resolve_filesystem(path, storage_options)
    try:
        schema = pq.read_schema(p, filesystem=fs)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"cannot read Parquet file {path!r}: {exc}") from exc
    if columns is not None:
        missing = [c for c in columns if c not in schema.names]
        if missing:
            raise DataError(
                f"file {path!r} has no column {missing[0]!r}; "
                f"columns present: {', '.join(schema.names)}"
            )
    try:
        table = pq.read_table(p, columns=list(columns) if columns else None, filesystem=fs)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"cannot read Parquet file {path!r}: {exc}") from exc
    return {name: _column_to_numpy(table.column(name), name, path) for name in table.column_names}


def _to_arrow(name: str, value: Any) -> pa.Array:
    arr = np.ascontiguousarray(value)
    if arr.ndim == 1:
        return pa.array(arr)
    if arr.ndim == 2:
        return pa.FixedSizeListArray.from_arrays(pa.array(arr.reshape(-1)), arr.shape[1])
    raise ValueError(f"column {name!r} must be 1-D or 2-D; got shape {arr.shape}")


def arrays_to_table(columns: Mapping[str, Any]) -> pa.Table:
    """Build a table from equal-length 1-D/2-D arrays (2-D -> fixed-size list column)."""
    if not columns:
        raise ValueError("no columns to write")
    lengths = {name: len(np.asarray(v)) for name, v in columns.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"columns have different lengths: {lengths}")
    return pa.table({name: _to_arrow(name, v) for name, v in columns.items()})


def write_table_atomic(
    table: pa.Table,
    path: str,
    storage_options: dict | None = None,
    compression: str = "snappy",
    row_group_size: int | None = None,
    use_dictionary: bool = True,
) -> str:
    """Write ``table`` to ``path`` via a hidden temp file + rename; return ``path``."""
    fs, _, p = resolve_filesystem(path, storage_options)
    parent = posixpath.dirname(p)
    fs.makedirs(parent, exist_ok=True)
    tmp = posixpath.join(parent, f".{posixpath.basename(p)}.{uuid.uuid4().hex}.tmp")
    try:
        with fs.open(tmp, "wb") as fh:
            pq.write_table(
                table,
                fh,
                compression=compression,
                row_group_size=row_group_size,
                use_dictionary=use_dictionary,
            )
        fs.mv(tmp, p)
    except BaseException:
        if fs.exists(tmp):
            fs.rm(tmp)
        raise
    return path


def write_arrays(path: str, columns: Mapping[str, Any], storage_options: dict | None = None) -> str:
    """Write one partition of arrays atomically (a rerun can skip files that exist)."""
    return write_table_atomic(arrays_to_table(columns), os.fspath(path), storage_options)


def read_patterns(dataset_path: str | os.PathLike) -> np.ndarray:
    """Stored patterns (n_patterns, n_units) int8 of a Hopfield dataset, by pattern_id."""
    parts = [
        read_arrays(p, ("pattern_id", "pattern"))
        for p in list_partitions(posixpath.join(os.fspath(dataset_path), "patterns"))
    ]
    ids = np.concatenate([p["pattern_id"] for p in parts])
    patterns = np.concatenate([p["pattern"] for p in parts]).astype(np.int8, copy=False)
    return patterns[np.argsort(ids, kind="stable")]


def list_probe_partitions(dataset_path: str | os.PathLike) -> list[str]:
    """Probe partition files of a Hopfield dataset (``<path>/probes``)."""
    return list_partitions(posixpath.join(os.fspath(dataset_path), "probes"))


def read_probe_partition(path: str) -> dict[str, np.ndarray]:
    """One probe file: probe_id, probe (n, n_units) int8, pattern_id (truth), n_flipped."""
    return read_arrays(path, PROBE_COLUMNS)


def result_path(output_dir: str | os.PathLike, partition_path: str) -> str:
    """Where the result of one input partition goes: same file name under ``output_dir``."""
    return posixpath.join(os.fspath(output_dir), posixpath.basename(partition_path))


def pending_partitions(
    partition_paths: Sequence[str],
    output_dir: str | os.PathLike,
    storage_options: dict | None = None,
) -> list[str]:
    """Input partitions whose result file does not exist yet (rerun skips done ones)."""
    fs, _, _ = resolve_filesystem(os.fspath(output_dir), storage_options)
    return [
        p
        for p in partition_paths
        if not fs.exists(resolve_filesystem(result_path(output_dir, p), storage_options)[2])
    ]
