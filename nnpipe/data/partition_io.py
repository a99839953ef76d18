"""Parquet files of a partitioned dataset: which files count, their footers, whole-file I/O.

One Parquet file is one partition. :class:`~nnpipe.data.ParquetDataset` lists and
checks its files here; the synthetic datasets and the Hopfield recall job read
and write whole files as NumPy arrays here. 2-D arrays are stored as fixed-size
list columns (a Hopfield pattern of ``n_units`` int8 values per row). Local files
are written through :func:`nnpipe.core.serialization.atomic_write` (temp file,
fsync, rename), so a partition file is either complete or absent: a job that
dies half-way leaves nothing a rerun would mistake for done work.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from nnpipe.core.serialization import atomic_write

from .storage import is_url, remote_errors, resolve_filesystem, shown, why_missing, write_bytes

PARQUET_SUFFIXES = (".parquet", ".parq", ".pq")


class DataError(ValueError):
    """A dataset problem; the message names the file, column or count at fault."""


@dataclass(frozen=True)
class Partition:
    """One Parquet file of a dataset."""

    index: int
    path: str
    n_rows: int  # rows in the file, before filters and NaN handling
    size_bytes: int


def list_parquet_files(path: str | os.PathLike, storage_options: dict | None = None) -> list[str]:
    """The partition files under ``path``, sorted: see :func:`find_parquet_files`."""
    fs, _, root = resolve_filesystem(path, storage_options)
    found = [p for p, _ in find_parquet_files(fs, root)]
    return [fs.unstrip_protocol(p) for p in found] if is_url(path) else found


def _is_skipped(part: str) -> bool:
    # Hidden entries (".x.parquet.1a2b.tmp" temporaries of the atomic writer) never
    # count; "_" ones (_SUCCESS, _metadata, _temporary/) do not either, unless they
    # are hive directories ("_fold=3").
    return part.startswith(".") or (part.startswith("_") and "=" not in part)


def find_parquet_files(fs: Any, root: str) -> list[tuple[str, int]]:
    """(path, size) of each Parquet file (.parquet/.parq/.pq) under ``root``, sorted by path."""
    with remote_errors(shown(fs, root), fs):
        if not fs.exists(root):
            raise DataError(
                f"dataset path {shown(fs, root)!r} does not exist{why_missing(fs, root)}"
            )
        if fs.isfile(root):
            return [(root, int(fs.size(root)))]
        found = fs.find(root, detail=True)
    out = []
    for p, info in found.items():
        rel = p[len(root) :].lstrip("/") if p.startswith(root) else p
        if any(_is_skipped(part) for part in rel.split("/")):
            continue
        if p.endswith(PARQUET_SUFFIXES) and info.get("type", "file") == "file":
            out.append((p, int(info.get("size") or 0)))
    return sorted(out)


def read_footers(files: list[tuple[str, int]], filesystem: Any) -> tuple[list[Partition], Any]:
    """One :class:`Partition` per (path, size) from its footer, and the schema all share.

    A file that is not Parquet, or whose schema differs from the first file's, is
    refused naming the file (both files, and the difference, for a schema).
    """
    parts, first_schema, first_path = [], None, None
    for i, (path, size) in enumerate(files):
        try:
            meta = pq.read_metadata(path, filesystem=filesystem)
            schema = meta.schema.to_arrow_schema().remove_metadata()
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"cannot read Parquet file {path!r}: {exc}") from exc
        if first_schema is None:
            first_schema, first_path = schema, path
        elif not schema.equals(first_schema):
            raise DataError(
                f"Parquet files have different schemas: {first_path!r} and {path!r} "
                f"({_schema_difference(first_schema, schema)})"
            )
        parts.append(Partition(i, path, int(meta.num_rows), size))
    return parts, first_schema


def _schema_difference(a: pa.Schema, b: pa.Schema) -> str:
    fa = {f.name: f.type for f in a}
    fb = {f.name: f.type for f in b}
    parts = []
    if only_a := [n for n in fa if n not in fb]:
        parts.append(f"columns only in the first: {only_a}")
    if only_b := [n for n in fb if n not in fa]:
        parts.append(f"columns only in the second: {only_b}")
    for n in fa:
        if n in fb and fa[n] != fb[n]:
            parts.append(f"column {n!r} is {fa[n]} vs {fb[n]}")
    return "; ".join(parts) or "column order differs"


def read_columns(
    path: str, columns: Sequence[str], optional: Sequence[str] = (), storage_options=None
) -> pa.Table:
    """``columns`` (and those of ``optional`` present) of one Parquet file, as a table.

    An unreadable file or a missing column raises :class:`DataError` naming the file
    (and the columns present).
    """
    fsspec_fs, fs, p = resolve_filesystem(path, storage_options)
    try:
        with remote_errors(path, fsspec_fs):
            names = pq.read_schema(p, filesystem=fs).names
        missing = [c for c in columns if c not in names]
        if missing:
            raise DataError(
                f"file {path!r} has no column {missing[0]!r}; columns present: {', '.join(names)}"
            )
        wanted = [*columns, *(c for c in optional if c in names and c not in columns)]
        return pq.read_table(p, columns=wanted, filesystem=fs)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"cannot read Parquet file {path!r}: {exc}") from exc


def column_to_numpy(table: pa.Table, name: str, path: str) -> np.ndarray:
    """Column ``name`` of ``path`` as an array: 1-D, or (n_rows, width) for a list column.

    Nulls are refused (there is no NaN in an integer or a pattern); so are list rows
    of different lengths.
    """
    col = table.column(name).combine_chunks()
    if col.null_count:
        raise DataError(f"file {path!r} column {name!r} has {col.null_count} null rows")
    if not (pa.types.is_fixed_size_list(col.type) or pa.types.is_list(col.type)):
        return col.to_numpy(zero_copy_only=False)
    if pa.types.is_fixed_size_list(col.type):
        width = col.type.list_size
    else:
        lengths = col.value_lengths().to_numpy(zero_copy_only=False)
        width = int(lengths[0]) if len(lengths) else 0
        if (lengths != width).any():
            raise DataError(
                f"file {path!r} column {name!r} has rows of different lengths "
                f"{np.unique(lengths).tolist()}"
            )
    values = col.flatten()  # respects the slice of each row
    if values.null_count:
        raise DataError(
            f"file {path!r} column {name!r} has {values.null_count} null values in its rows"
        )
    return values.to_numpy(zero_copy_only=False).reshape(len(col), width)


def bipolar_column(table: pa.Table, name: str, path: str) -> np.ndarray:
    """A list column of -1/+1 values as (n_rows, width) int8; the first other value is named."""
    values = column_to_numpy(table, name, path)
    if values.ndim != 2:
        raise DataError(
            f"file {path!r} column {name!r} must be a list column, got {table.column(name).type}"
        )
    # abs() != 1 is 40x faster than np.isin(values, (-1, 1)) and also catches NaN.
    bad = np.abs(values) != 1
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        raise DataError(
            f"file {path!r} column {name!r} must be bipolar (-1/+1); row {row}, "
            f"position {col} holds {values[row, col].item()!r}"
        )
    return values.astype(np.int8, copy=False)


def read_patterns(
    dataset_path: str | os.PathLike, storage_options: dict | None = None
) -> np.ndarray:
    """Stored patterns (n_patterns, n_units) int8 of a Hopfield dataset, by pattern_id."""
    root = f"{os.fspath(dataset_path)}/patterns"
    ids, patterns = [], []
    for path in list_parquet_files(root, storage_options):
        table = read_columns(path, ("pattern_id", "pattern"), storage_options=storage_options)
        ids.append(column_to_numpy(table, "pattern_id", path))
        patterns.append(bipolar_column(table, "pattern", path))
    if not ids:
        raise DataError(f"dataset {root!r} is empty: no Parquet files found")
    order = np.argsort(np.concatenate(ids), kind="stable")
    return np.concatenate(patterns)[order]


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


def write_parquet(
    table: pa.Table, path: str, storage_options: dict | None = None, **write_options: Any
) -> str:
    """Write ``table`` to ``path`` (local path or fsspec URL) whole or not at all; return path.

    ``write_options`` go to :func:`pyarrow.parquet.write_table`. Local files use the
    one atomic writer (temp file + fsync + rename). An object store has no rename
    (fsspec's ``mv`` is a copy then a delete) but publishes an object only once its
    upload completes: the file is built in memory and sent as one object. (A file
    opened for writing on the store would be committed, half-written, by its
    ``close`` when the writer raised.)
    """
    if not is_url(path):
        atomic_write(path, lambda fh: pq.write_table(table, fh, **write_options))
        return path
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, **write_options)
    write_bytes(path, sink.getvalue().to_pybytes(), storage_options)
    return path
