"""A partitioned Parquet directory (local path or fsspec URL) as features and targets.

One Parquet file is one partition. Every read takes the feature and target
columns of the *same* file in one go and splits them afterwards, so X and y are
aligned row for row by construction (converting the two column sets separately
can chunk them differently: docs/ARCHITECTURE.md, dask#12411).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from functools import cached_property
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from . import labels as _labels
from .partition_io import DataError, find_parquet_files, read_footers, resolve_filesystem
from .split import TrainValidationSplit, check_subset

NAN_POLICIES = ("raise", "drop")


def _is_numeric(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        t = t.value_type
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)


def _names(value: str | Sequence[str] | None, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    names = list(value)
    if not all(isinstance(n, str) for n in names):
        raise ValueError(f"{what} must be column names (str); got {value!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"{what} lists a column more than once: {names}")
    return names


class ParquetDataset(_labels.LabelColumn):
    """Feature and target columns of a (hive-)partitioned Parquet dataset.

    Parameters
    ----------
    path : str or PathLike
        Directory (or single file) of Parquet files; any fsspec URL works
        (``memory://``, ``s3://`` with ``storage_options``...).
    features : list of str, optional
        Feature columns. Default: every numeric column that is neither a target
        nor a hive partition column.
    targets : str or list of str, optional
        Target columns (none for unsupervised data: ``y`` then has 0 columns).
    filters : pyarrow Expression or DNF list like ``[("x", ">", 0)]``, optional
        Row filter applied to every read (hive partition filters prune files).
    nan_policy : {'raise', 'drop'}, default 'raise'
        NaN/inf/null in a feature or target: raise naming file, column and count,
        or drop those rows (``n_dropped`` counts them).
    storage_options : dict, optional
        Passed to fsspec for remote URLs.
    labels : bool, default False
        The one target column holds class labels (:mod:`nnpipe.data.labels`): ``y``
        is each label's index in ``classes``, found by ``fit_scalers_and_classes``.
    classes : sequence, optional
        The class labels (sorted), with ``labels=True``; or :meth:`set_classes`.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        features: Sequence[str] | None = None,
        targets: str | Sequence[str] | None = None,
        filters: Any = None,
        nan_policy: str = "raise",
        storage_options: dict | None = None,
        labels: bool = False,
        classes: Sequence[Any] | None = None,
    ) -> None:
        if nan_policy not in NAN_POLICIES:
            shown = ", ".join(repr(p) for p in NAN_POLICIES)
            raise ValueError(f"nan_policy={nan_policy!r} is not supported; allowed: {shown}")
        self.path = os.fspath(path)
        self.nan_policy = nan_policy
        # Rows skipped for NaN/inf; known after a pass over the data (n_rows, fit_scalers).
        self.n_dropped: int | None = 0 if nan_policy == "raise" else None
        self.storage_options = storage_options
        fs, self._filesystem, self._root = resolve_filesystem(path, storage_options)
        files = find_parquet_files(fs, self._root)
        if not files:
            raise DataError(f"dataset {self.path!r} is empty: no Parquet files found")
        self.partitions, self._file_schema = read_footers(files, self._filesystem)
        base = self._root if fs.isdir(self._root) else None
        self._dataset = ds.dataset(
            [p.path for p in self.partitions],
            filesystem=self._filesystem,
            format="parquet",
            partitioning="hive",
            partition_base_dir=base,
            schema=None,
        )
        by_path = {f.path: f for f in self._dataset.get_fragments()}
        self._fragments = [by_path[p.path] for p in self.partitions]
        self.schema: pa.Schema = self._dataset.schema
        self.partition_columns = [n for n in self.schema.names if n not in self._file_schema.names]
        self.target_names = _names(targets, "targets")
        self._init_labels(labels, classes)  # else: checks the targets are numeric
        if features is None:
            skip = set(self.target_names) | set(self.partition_columns)
            self.feature_names = [
                f.name for f in self.schema if f.name not in skip and _is_numeric(f.type)
            ]
            if not self.feature_names:
                raise DataError(
                    f"dataset {self.path!r} has no numeric feature columns besides the targets; "
                    f"columns present: {', '.join(self.schema.names)}"
                )
        else:
            self.feature_names = _names(features, "features")
            if not self.feature_names:
                raise ValueError("features is an empty list; give at least one column")
            self._check_columns(self.feature_names, "feature")
        if both := set(self.feature_names) & set(self.target_names):
            raise ValueError(f"columns {sorted(both)} are both features and targets")
        self.filters = filters
        self._filter = self._build_filter(filters)
        if sum(p.n_rows for p in self.partitions) == 0:
            raise DataError(f"dataset {self.path!r} is empty: its files hold 0 rows")

    # -- construction checks ---------------------------------------------------------
    def _check_columns(self, names: list[str], role: str) -> None:
        for name in names:
            if name not in self.schema.names:
                raise DataError(
                    f"{role} column {name!r} not found in dataset {self.path!r}; "
                    f"columns present: {', '.join(self.schema.names)}"
                )
            t = self.schema.field(name).type
            if not _is_numeric(t):
                raise DataError(
                    f"{role} column {name!r} in {self.partitions[0].path!r} has type {t}; "
                    "features and targets must be numeric (integer, floating point or boolean)"
                )

    def _build_filter(self, filters: Any) -> pc.Expression | None:
        if filters is None:
            return None
        try:
            expr = (
                filters if isinstance(filters, pc.Expression) else pq.filters_to_expression(filters)
            )
            self._dataset.scanner(columns=[], filter=expr)  # binds names and types now
        except (pa.ArrowException, TypeError, ValueError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise DataError(
                f"filters={filters!r} cannot be applied to dataset {self.path!r}: {reason}; "
                f"columns present: {', '.join(self.schema.names)}"
            ) from exc
        return expr

    # -- description ---------------------------------------------------------------
    @property
    def n_partitions(self) -> int:
        return len(self.partitions)

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    @property
    def n_targets(self) -> int:
        return len(self.target_names)

    @property
    def size_bytes(self) -> int:
        return sum(p.size_bytes for p in self.partitions)

    def partition_key(self, index: int) -> str:
        """Stable name of partition ``index`` (its path under the dataset root)."""
        path = self.partitions[index].path
        return path[len(self._root) :].lstrip("/") or os.path.basename(path)

    @cached_property
    def fingerprint(self) -> str:
        """SHA-256 over file names, sizes and the schema: changes when the data does."""
        h = hashlib.sha256()
        files = [[self.partition_key(p.index), p.size_bytes, p.n_rows] for p in self.partitions]
        h.update(json.dumps(files).encode())
        h.update(self.schema.remove_metadata().to_string().encode())
        return h.hexdigest()

    def describe(self) -> dict[str, Any]:
        """JSON-able summary for tracking (path, files, rows, bytes, columns, fingerprint)."""
        return {
            "path": self.path,
            "n_files": self.n_partitions,
            "n_rows_in_files": sum(p.n_rows for p in self.partitions),
            "size_bytes": self.size_bytes,
            "features": list(self.feature_names),
            "targets": list(self.target_names),
            "filters": None if self.filters is None else str(self._filter),
            "nan_policy": self.nan_policy,
            "fingerprint": self.fingerprint,
            **({"labels": True, "classes": self._class_list()} if self.labels else {}),
        }

    def __repr__(self) -> str:
        return (
            f"ParquetDataset({self.path!r}, files={self.n_partitions}, "
            f"features={self.n_features}, targets={self.target_names})"
        )

    # -- reading -------------------------------------------------------------------
    def _combined_filter(self, subset: str, split: TrainValidationSplit | None):
        expr = self._filter
        if split is not None and split.column is not None and subset != "all":
            # A column split is pushed into the read, so hive partitions are pruned.
            is_val = pc.field(split.column).isin(list(split.validation_values))
            side = is_val if subset == "validation" else ~is_val
            expr = side if expr is None else expr & side
        return expr

    def _read_table(
        self,
        index: int,
        subset: str = "all",
        split: TrainValidationSplit | None = None,
        use_threads: bool = True,
    ) -> tuple[pa.Table, np.ndarray | None]:
        """Feature + target columns of partition ``index`` and its validation mask.

        A column split is pushed into the read, so for 'train'/'validation' with one
        the mask is None; with a hash split the mask is always given (subset 'both'
        also reads the split column to build it). ``use_threads``: decode the
        columns on Arrow's thread pool, several at once.
        """
        if subset != "both":
            check_subset(subset, split)
        if split is not None and split.column is not None and split.column not in self.schema.names:
            raise DataError(
                f"split column {split.column!r} not found in dataset {self.path!r}; "
                f"columns present: {', '.join(self.schema.names)}"
            )
        part = self.partitions[index]
        read_cols = self.feature_names + self.target_names
        need_split_col = split is not None and split.column is not None and subset == "both"
        if need_split_col and split.column not in read_cols:
            read_cols = [*read_cols, split.column]
        expr = self._combined_filter("all" if subset == "both" else subset, split)
        try:
            table = self._fragments[index].to_table(
                columns=read_cols, filter=expr, schema=self.schema, use_threads=use_threads
            )
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"cannot read Parquet file {part.path!r}: {exc}") from exc
        n = table.num_rows
        mask = None
        if split is not None and subset != "all" and split.column is None:
            mask = split.validation_mask(self.partition_key(index), n)
        elif need_split_col:
            mask = split.validation_mask(
                self.partition_key(index), n, table.column(split.column).to_numpy()
            )
        return table, mask

    def _read_block(
        self,
        index: int,
        subset: str = "all",
        split: TrainValidationSplit | None = None,
        dtype: Any = np.float64,
        use_threads: bool = True,
        raw_labels: bool = False,
    ) -> tuple[np.ndarray, np.ndarray | None, int]:
        """(block (n, n_features + n_targets), validation mask or None, n_dropped).

        Labels come as class indices; with ``raw_labels`` (classes not known yet) the
        kept rows' labels come as a fourth item (the block holds their row numbers).
        """
        dtype = np.dtype(dtype)
        table, mask = self._read_table(index, subset, split, use_threads)
        part = self.partitions[index]
        columns = self.feature_names + self.target_names
        n = table.num_rows
        # Column-major: each column is written (and later reduced) contiguously.
        block = np.empty((len(columns), n), dtype).T  # (n, n_columns)
        for j, name in enumerate(columns):
            if self.labels and j == len(self.feature_names):
                self._labels_into(table.column(name), block[:, j], part.path, raw_labels)
            else:
                _column_into(table.column(name), block[:, j])
        n_dropped = 0
        # One reduction says whether anything is NaN/inf; the per-value check runs only then.
        with np.errstate(over="ignore", invalid="ignore"):
            maybe_bad = not np.isfinite(block.sum())
        if maybe_bad and not np.isfinite(block).all():
            finite = np.isfinite(block)
            bad_rows = ~finite.all(axis=1)
            if self.nan_policy == "raise":
                counts = (~finite).sum(axis=0)
                shown = ", ".join(
                    f"column {columns[j]!r}: {int(c)}" for j, c in enumerate(counts) if c
                )
                raise DataError(
                    f"file {part.path!r} has NaN/infinite/null values ({shown}); "
                    "nan_policy is 'raise'; to skip those rows set nan_policy: drop in the "
                    "config (nnpipe train --nan-policy drop)"
                )
            n_dropped = int(bad_rows.sum())
            block = block[~bad_rows]
            if mask is not None:
                mask = mask[~bad_rows]
        if mask is not None and subset in ("train", "validation"):
            keep = mask if subset == "validation" else ~mask
            block, mask = block[keep], None
        if raw_labels:
            rows = block[:, -1].astype(np.int64)  # the kept rows' numbers in the file
            return block, mask, n_dropped, table.column(self.target_names[0]).take(rows)
        return block, mask, n_dropped

    def read_partition(
        self,
        index: int,
        subset: str = "all",
        split: TrainValidationSplit | None = None,
        dtype: Any = np.float64,
    ) -> tuple[np.ndarray, np.ndarray]:
        """X (n, n_features) and y (n, n_targets) of partition ``index`` (float64 default).

        The arrays are new memory, the caller's to modify. The file is decoded one
        column at a time: these reads run beside training (the stream's reader),
        where Arrow's thread pool would take the training thread's core.
        """
        block, _, _ = self._read_block(index, subset, split, dtype, use_threads=False)
        nf = self.n_features
        return block[:, :nf], block[:, nf:]

    def read_partition_sides(
        self,
        index: int,
        split: TrainValidationSplit,
        dtype: Any = np.float64,
    ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
        """((X_train, y_train), (X_val, y_val)) of partition ``index`` from one read.

        New arrays, decoded one column at a time, as :meth:`read_partition`.
        """
        block, mask, _ = self._read_block(index, "both", split, dtype, use_threads=False)
        nf = self.n_features
        train, val = block[~mask], block[mask]
        return (train[:, :nf], train[:, nf:]), (val[:, :nf], val[:, nf:])

    # -- counts and Dask arrays ----------------------------------------------------------
    def _count_one(self, index: int, subset: str, split: TrainValidationSplit | None):
        block, _, n_dropped = self._read_block(index, subset, split)
        return block.shape[0], n_dropped

    def partition_row_counts(
        self, subset: str = "all", split: TrainValidationSplit | None = None, client: Any = None
    ) -> list[int]:
        """Rows per partition after filters, NaN policy and split (one Dask pass if needed)."""
        check_subset(subset, split)
        key = (subset, split)
        cache = self.__dict__.setdefault("_counts", {})
        if key in cache:
            return cache[key]
        plain = self._filter is None and self.nan_policy == "raise"
        if plain and subset == "all":
            counts = [p.n_rows for p in self.partitions]
        elif plain and split is not None and split.column is None:
            counts = []
            for p in self.partitions:
                m = split.validation_mask(self.partition_key(p.index), p.n_rows)
                counts.append(int(m.sum()) if subset == "validation" else int((~m).sum()))
        else:
            from .compute import compute_partitions

            results = compute_partitions(
                self._count_one, range(self.n_partitions), client, subset, split
            )
            counts = [r[0] for r in results]
            if subset == "all":
                self.n_dropped = sum(r[1] for r in results)
        if sum(counts) == 0:
            raise DataError(
                f"dataset {self.path!r} is empty: 0 rows in subset {subset!r} "
                f"after filters={self.filters!r} and nan_policy={self.nan_policy!r}"
            )
        cache[key] = counts
        return counts

    @property
    def n_rows(self) -> int:
        """Rows after filters and NaN policy (reads the data once if those apply)."""
        return sum(self.partition_row_counts())

    def to_dask(
        self, subset: str = "all", split: TrainValidationSplit | None = None, client: Any = None
    ):
        """Dask arrays (X, y), float64, with known chunks, aligned row for row."""
        import dask
        import dask.array as da

        counts = self.partition_row_counts(subset, split, client)
        width = self.n_features + self.n_targets
        blocks = []
        for i, n in enumerate(counts):
            load = dask.delayed(_block_only, pure=True)(self, i, subset, split)
            blocks.append(da.from_delayed(load, shape=(n, width), dtype=np.float64))
        B = da.concatenate(blocks, axis=0)  # (n_rows, n_features + n_targets)
        return B[:, : self.n_features], B[:, self.n_features :]

    def __dask_tokenize__(self):
        return (
            "nnpipe.ParquetDataset",
            self.fingerprint,
            self.feature_names,
            self.target_names,
            str(self._filter),
            self.nan_policy,
            self._class_list(),
        )


def _column_into(column: pa.ChunkedArray, out: np.ndarray) -> None:
    """Write a numeric Arrow column into ``out`` (n,), nulls as NaN, rounded to its dtype."""
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if column.type != pa.float32() or out.dtype != np.float32:
        column = column.cast(pa.float64())  # exact for every numeric type but int64 > 2**53
    start = 0
    for chunk in column.chunks:
        # Chunk by chunk: a float column without nulls is read in place (no Arrow-side
        # concatenation or copy), so each value is copied once, into ``out``.
        stop = start + len(chunk)
        out[start:stop] = chunk.to_numpy(zero_copy_only=False)
        start = stop


def _block_only(dataset: ParquetDataset, index: int, subset: str, split) -> np.ndarray:
    return dataset._read_block(index, subset, split)[0]
