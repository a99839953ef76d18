"""Deterministic train/validation split of a partitioned dataset.

A row's side depends only on the row itself, never on shuffling, epoch or which
other partitions are read: either a column value (e.g. a hive partition column
``fold=4``) or a hash of the row's position (partition file + row index within it).
So validation rows can never leak into a training batch.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SUBSETS = ("all", "train", "validation")

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """Vectorised SplitMix64 finaliser: a well-mixed 64-bit hash of each uint64."""
    x = x.astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):
        x += np.uint64(0x9E3779B97F4A7C15)
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return x & _MASK64


@dataclass(frozen=True)
class TrainValidationSplit:
    """Which rows are validation rows.

    Parameters
    ----------
    validation_fraction : float in [0, 1), default 0.1
        Share of rows sent to validation by the row-position hash (ignored when
        ``column`` is given).
    column : str or None
        Split by this column instead: rows whose value is in ``validation_values``
        are validation rows. A hive partition column prunes whole files.
    validation_values : sequence
        Values of ``column`` that mark validation rows.
    seed : int, default 0
        Seed of the row-position hash (a different seed gives a different split).
    """

    validation_fraction: float = 0.1
    column: str | None = None
    validation_values: Sequence[Any] = field(default_factory=tuple)
    seed: int = 0

    def __post_init__(self) -> None:
        frac = self.validation_fraction
        if isinstance(frac, bool) or not isinstance(frac, (int, float)) or not 0 <= frac < 1:
            raise ValueError(
                f"validation_fraction={frac!r} is invalid; expected a number in [0, 1)"
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed={self.seed!r} is invalid; expected an int >= 0")
        if self.column is not None:
            values = tuple(self.validation_values)
            if not values:
                raise ValueError(
                    f"split by column {self.column!r} needs validation_values (the values "
                    "that mark validation rows)"
                )
            object.__setattr__(self, "validation_values", values)

    def validation_mask(
        self, partition_key: str, n_rows: int, column_values: np.ndarray | None = None
    ) -> np.ndarray:
        """Boolean (n_rows,) mask of validation rows in one partition."""
        if self.column is not None:
            if column_values is None:
                raise ValueError(f"split column {self.column!r} was not read")
            return np.isin(column_values, np.asarray(self.validation_values))
        if self.validation_fraction == 0:
            return np.zeros(n_rows, dtype=bool)
        file_key = np.uint64(zlib.crc32(partition_key.encode("utf-8")))
        seed_key = _splitmix64(np.asarray([self.seed], dtype=np.uint64))[0]
        rows = np.arange(n_rows, dtype=np.uint64)
        with np.errstate(over="ignore"):
            keys = (file_key << np.uint64(32)) ^ rows ^ seed_key
        u = (_splitmix64(keys) >> np.uint64(11)).astype(np.float64) * 2.0**-53  # in [0, 1)
        return u < self.validation_fraction


def check_subset(subset: str, split: TrainValidationSplit | None) -> None:
    """Reject an unknown subset, or a train/validation subset without a split."""
    if subset not in SUBSETS:
        shown = ", ".join(repr(s) for s in SUBSETS)
        raise ValueError(f"subset={subset!r} is not supported; allowed: {shown}")
    if subset != "all" and split is None:
        raise ValueError(f"subset={subset!r} needs a split (TrainValidationSplit); got None")
    if split is not None and not isinstance(split, TrainValidationSplit):
        raise ValueError(f"split={split!r} is not supported; expected a TrainValidationSplit")
