"""Scalers fitted out of core: one Dask pass for every statistic, merged per partition.

Each partition yields (n, mean, residual, M2, min, max) per column, where the
mean is the float64 rounded one and the residual the mean of the values minus it,
so together they hold the mean to more digits than one float64. The partials merge
with Chan et al.'s pairwise update on means shifted by a reference (the first
partition's mean): data far from zero (|mean| up to 1e8 standard deviations) keep
the precision of a one-pass float64 variance, as in the in-memory scalers. The
totals become ordinary ``nnpipe.core`` scalers via ``from_moments`` /
``from_range``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from nnpipe.core.scalers import SCALERS, MinMaxScaler, StandardScaler

from .compute import compute_partitions
from .dataset import DataError, ParquetDataset
from .split import TrainValidationSplit, check_subset


def _column_moments(a: np.ndarray) -> tuple[float, float, float]:
    """(rounded mean, mean of ``a`` minus it, sum of squared deviations) in float64."""
    mean = a.mean(dtype=np.float64)
    d = a - np.array([mean])  # float64 (a (1,) float64 array promotes float32)
    residual = d.sum() / d.shape[0]
    return mean, residual, float(d @ d) - d.shape[0] * residual * residual


def _moments(block: np.ndarray) -> tuple:
    n = block.shape[0]
    width = block.shape[1]
    if n == 0:
        nan = np.full(width, np.nan)
        return 0, np.zeros(width), np.zeros(width), np.zeros(width), nan, nan
    # Column by column keeps the temporaries one column long (cache-friendly, less RSS).
    mean, residual, m2 = np.empty(width), np.empty(width), np.empty(width)
    lo, hi = np.empty(width), np.empty(width)
    for j in range(width):
        col = block[:, j]  # contiguous: blocks are column-major
        mean[j], residual[j], m2[j] = _column_moments(col)
        lo[j], hi[j] = col.min(), col.max()
    return n, mean, residual, m2, lo, hi


def _partition_moments(index: int, dataset: ParquetDataset, subset: str, split) -> tuple:
    """(n, mean, residual, M2, min, max, n_dropped) of one partition's feature + target columns."""
    table, mask = dataset._read_table(index, subset, split)
    keep = None if mask is None else (mask if subset == "validation" else ~mask)
    columns = dataset.feature_names + dataset.target_names
    width = len(columns)
    mean, residual, m2 = np.empty(width), np.empty(width), np.empty(width)
    lo, hi = np.empty(width), np.empty(width)
    n = table.num_rows if keep is None else int(keep.sum())
    # Fast path straight on the Arrow buffers (no float64 block): about 3x cheaper
    # than building the block. Nulls or non-finite values (seen in min/max) fall
    # back to the block path, which raises or drops rows as nan_policy says.
    for j, name in enumerate(columns):
        col = table.column(name)
        if col.null_count or n == 0 or pa.types.is_dictionary(col.type):
            break
        a = col.to_numpy()
        if a.dtype.kind not in "fiu":
            a = a.astype(np.float64)
        if keep is not None:
            a = a[keep]
        lo[j], hi[j] = a.min(), a.max()
        if not (np.isfinite(lo[j]) and np.isfinite(hi[j])):
            break
        mean[j], residual[j], m2[j] = _column_moments(a)
    else:
        return n, mean, residual, m2, lo, hi, 0
    block, _, n_dropped = dataset._read_block(index, subset, split)
    return (*_moments(block), n_dropped)


def _merge(parts: list[tuple]) -> tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(n, mean, M2, min, max) of all ``parts``, merged with Chan's update relative to
    the first partition's mean (each partition's mean relative to it is exact)."""
    n, shift, mean, m2, lo, hi = 0, None, None, None, None, None
    for n_b, mean_b, residual_b, m2_b, lo_b, hi_b, _ in parts:
        if n_b == 0:
            continue
        if n == 0:
            n, shift, mean, m2, lo, hi = n_b, mean_b, residual_b, m2_b, lo_b, hi_b
            continue
        total = n + n_b
        delta = (mean_b - shift) + residual_b - mean  # mean_b - shift: exact when they are close
        mean = mean + delta * (n_b / total)
        m2 = m2 + m2_b + delta**2 * (n * n_b / total)
        lo, hi = np.minimum(lo, lo_b), np.maximum(hi, hi_b)
        n = total
    return n, (None if n == 0 else shift + mean), m2, lo, hi


def _build(kind: Any, what: str, n: int, mean, m2, lo, hi):
    if kind is None:
        return None
    if kind not in SCALERS:
        shown = ", ".join(repr(k) for k in [*SCALERS, None])
        raise ValueError(f"{what}={kind!r} is not supported; allowed: {shown}")
    if SCALERS[kind] is StandardScaler:
        return StandardScaler.from_moments(n, mean, m2 / n)
    return MinMaxScaler.from_range(n, lo, hi)


def fit_scalers(
    dataset: ParquetDataset,
    x_scaler: str | None = "standard",
    y_scaler: str | None = "standard",
    *,
    subset: str = "all",
    split: TrainValidationSplit | None = None,
    client: Any = None,
) -> tuple[StandardScaler | MinMaxScaler | None, StandardScaler | MinMaxScaler | None]:
    """Fit feature and target scalers ('standard', 'minmax' or None) in one Dask pass.

    Use ``subset='train'`` with the training split so validation rows do not leak
    into the statistics. ``client``: a ``distributed.Client`` (partitions are read
    on its workers); default the local Dask scheduler.
    """
    for what, kind in (("x_scaler", x_scaler), ("y_scaler", y_scaler)):
        if kind is not None and kind not in SCALERS:
            shown = ", ".join(repr(k) for k in [*SCALERS, None])
            raise ValueError(f"{what}={kind!r} is not supported; allowed: {shown}")
    if y_scaler is not None and dataset.n_targets == 0:
        raise ValueError(f"y_scaler={y_scaler!r} but dataset {dataset.path!r} has no targets")
    check_subset(subset, split)
    parts = compute_partitions(
        _partition_moments, range(dataset.n_partitions), client, dataset, subset, split
    )
    n, mean, m2, lo, hi = _merge(parts)
    if n == 0:
        raise DataError(
            f"dataset {dataset.path!r} is empty: 0 rows in subset {subset!r} to fit scalers on"
        )
    if subset == "all":
        dataset.n_dropped = sum(p[-1] for p in parts)
    nf = dataset.n_features
    xs = _build(x_scaler, "x_scaler", n, mean[:nf], m2[:nf], lo[:nf], hi[:nf])
    ys = _build(y_scaler, "y_scaler", n, mean[nf:], m2[nf:], lo[nf:], hi[nf:])
    return xs, ys


def _partition_labels(index: int, dataset: ParquetDataset, split) -> tuple:
    """(n, mean, residual, M2, min, max, n_dropped) of the training rows' features, and the distinct
    labels of the training and of the validation rows, from one read of partition ``index``."""
    from .labels import distinct_labels

    subset = "all" if split is None else "both"
    block, mask, n_dropped, labels = dataset._read_block(index, subset, split, raw_labels=True)
    train = np.ones(len(block), bool) if mask is None else ~mask
    nf = dataset.n_features
    moments = _moments(np.asfortranarray(block[train, :nf]))
    name, where = dataset.target_names[0], dataset.partitions[index].path
    seen = distinct_labels(labels.filter(pa.array(train)), name, where)
    held_out = distinct_labels(labels.filter(pa.array(~train)), name, where)
    return (*moments, n_dropped), seen, held_out


def fit_scalers_and_classes(
    dataset: ParquetDataset,
    x_scaler: str | None = "standard",
    *,
    split: TrainValidationSplit | None = None,
    client: Any = None,
) -> tuple[StandardScaler | MinMaxScaler | None, np.ndarray]:
    """Fit the feature scaler on the training rows and find the classes, in one Dask pass.

    ``dataset`` is opened with ``labels=True``. The classes (sorted) are the labels
    of the training rows of ``split`` (all rows without one); they are set on the
    dataset, so its reads give class indices from then on. Refused with a
    DataError: a label column with fewer than two classes, a float column that
    holds non-integer numbers, and validation rows with a label no training row has.
    """
    from .labels import merge_classes

    if not dataset.labels:
        raise ValueError(f"dataset {dataset.path!r} was not opened with labels=True")
    if x_scaler is not None and x_scaler not in SCALERS:
        shown = ", ".join(repr(k) for k in [*SCALERS, None])
        raise ValueError(f"x_scaler={x_scaler!r} is not supported; allowed: {shown}")
    results = compute_partitions(
        _partition_labels, range(dataset.n_partitions), client, dataset, split
    )
    n, mean, m2, lo, hi = _merge([r[0] for r in results])
    if n == 0:
        raise DataError(f"dataset {dataset.path!r} is empty: 0 training rows to fit scalers on")
    name = dataset.target_names[0]
    classes = merge_classes((r[1] for r in results), name)
    unseen = merge_classes((r[2] for r in results), name)
    unseen = unseen[~np.isin(unseen, classes)] if len(classes) else unseen
    if len(unseen):
        raise DataError(
            f"the validation rows of dataset {dataset.path!r} hold labels {unseen[:10].tolist()} "
            f"in column {name!r} that no training row has (training classes: "
            f"{classes.tolist()}); every class must appear in the training rows"
        )
    dataset.set_classes(classes)
    if split is None:
        dataset.n_dropped = sum(r[0][-1] for r in results)
    return _build(x_scaler, "x_scaler", n, mean, m2, lo, hi), dataset.classes
