"""In-memory arrays cut into partitions: the streaming path's in-memory twin.

Same partition interface as :class:`ParquetDataset`, so ``iter_minibatches`` and
``nnpipe.training.train_out_of_core`` produce the same batches from memory as
from Parquet when the partition boundaries and names agree (what the
equivalence tests and the benchmark compare).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnpipe.core.validation import check_positive

from .dataset import DataError
from .split import TrainValidationSplit, check_subset


class ArrayDataset:
    """``X`` (n, n_features) and ``y`` (n,) or (n, n_targets) in partitions of fixed size.

    Partition ``i`` is named ``part-{i:05d}.parquet`` (what the writers produce),
    which is the key a row-hash split uses.
    """

    def __init__(self, X: Any, y: Any = None, *, rows_per_partition: int = 100_000) -> None:
        check_positive("rows_per_partition", rows_per_partition, integer=True)
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[0] == 0:
            raise DataError(f"X must be a non-empty 2-D array; got shape {X.shape}")
        y = np.zeros((X.shape[0], 0)) if y is None else np.asarray(y, dtype=np.float64)
        y = y.reshape(-1, 1) if y.ndim == 1 else y
        if y.shape[0] != X.shape[0]:
            raise DataError(f"X has {X.shape[0]} rows but y has {y.shape[0]}")
        self._block = np.hstack([X, y])  # (n, n_features + n_targets)
        self.n_features, self.n_targets = X.shape[1], y.shape[1]
        self.feature_names = [f"x{j}" for j in range(self.n_features)]
        self.target_names = (
            ["y"] if self.n_targets == 1 else [f"y{k}" for k in range(self.n_targets)]
        )
        n = X.shape[0]
        self._bounds = [
            (s, min(s + rows_per_partition, n)) for s in range(0, n, rows_per_partition)
        ]
        self.path = "<memory>"

    @property
    def n_partitions(self) -> int:
        return len(self._bounds)

    @property
    def n_rows(self) -> int:
        return self._block.shape[0]

    def partition_key(self, index: int) -> str:
        return f"part-{index:05d}.parquet"

    def _mask(self, index: int, split: TrainValidationSplit, n: int) -> np.ndarray:
        if split.column is not None:
            raise DataError(f"split column {split.column!r}: an ArrayDataset has no named columns")
        return split.validation_mask(self.partition_key(index), n)

    def read_partition(
        self,
        index: int,
        subset: str = "all",
        split: TrainValidationSplit | None = None,
        dtype: Any = np.float64,
    ) -> tuple[np.ndarray, np.ndarray]:
        check_subset(subset, split)
        s, e = self._bounds[index]
        block = self._block[s:e].astype(dtype)  # a copy, as from a file: callers may modify it
        if subset != "all":
            mask = self._mask(index, split, e - s)
            block = block[mask if subset == "validation" else ~mask]
        return block[:, : self.n_features], block[:, self.n_features :]

    def read_partition_sides(
        self,
        index: int,
        split: TrainValidationSplit,
        dtype: Any = np.float64,
    ):
        s, e = self._bounds[index]
        block = self._block[s:e].astype(dtype, copy=False)  # the sides are new arrays anyway
        mask = self._mask(index, split, e - s)
        train, val = block[~mask], block[mask]
        nf = self.n_features
        return (train[:, :nf], train[:, nf:]), (val[:, :nf], val[:, nf:])

    def partition_row_counts(
        self, subset: str = "all", split: TrainValidationSplit | None = None, client: Any = None
    ) -> list[int]:
        return [len(self.read_partition(i, subset, split)[0]) for i in range(self.n_partitions)]
