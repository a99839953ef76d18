"""Class labels in a Parquet column: allowed types, the labels a file holds, their encoding.

A classification target is one column of integers, strings or booleans (or floats
that hold whole numbers only). Training reads it as each label's index among the
dataset's sorted ``classes``, so blocks, the NaN policy and the minibatch streams
carry it like any numeric target; :func:`nnpipe.data.scaling.fit_scalers_and_classes`
finds the classes in the pass that fits the feature scaler.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .partition_io import DataError

# More distinct values than this in a label column: an id or a measurement, not classes.
MAX_CLASSES = 1000


def value_type(t: pa.DataType) -> pa.DataType:
    """The type of the values (a dictionary column's value type)."""
    return t.value_type if pa.types.is_dictionary(t) else t


def is_label_type(t: pa.DataType) -> bool:
    """Whether a column of type ``t`` can hold class labels."""
    t = value_type(t)
    return (
        pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_boolean(t)
        or pa.types.is_string(t)
        or pa.types.is_large_string(t)
    )


def _values(column: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_dictionary(column.type):
        return column.cast(column.type.value_type)
    return column


def present(column: pa.ChunkedArray) -> np.ndarray:
    """Rows (n,) holding a label: not null, and for floats not NaN or infinite."""
    column = _values(column)
    valid = pc.is_valid(column)
    if pa.types.is_floating(column.type):
        valid = pc.and_(valid, pc.fill_null(pc.is_finite(column), False))
    return valid.to_numpy(zero_copy_only=False).astype(bool)


def distinct_labels(column: pa.ChunkedArray, name: str, where: str) -> list[Any]:
    """The distinct labels of ``column`` (nulls and NaN left out), at most MAX_CLASSES + 1.

    Refuses floats that are not whole numbers: such a column looks continuous.
    """
    column = _values(column)
    found = [v for v in pc.unique(column).to_pylist() if v is not None]
    if pa.types.is_floating(column.type):
        found = [v for v in found if np.isfinite(v)]
        fractional = [v for v in found if v != int(v)]
        if fractional:
            raise DataError(
                f"target column {name!r} holds non-integer numbers (e.g. {fractional[0]!r} in "
                f"{where!r}): it looks continuous, not like class labels; classification "
                "needs integer, string or boolean labels (train a regressor for this target)"
            )
    return found[: MAX_CLASSES + 1]


def merge_classes(found: Iterable[Iterable[Any]], name: str) -> np.ndarray:
    """The sorted union of per-file label lists, as a NumPy array (str, bool, int or float)."""
    labels: set[Any] = set()
    for part in found:
        labels.update(part)
    if len(labels) > MAX_CLASSES:
        raise DataError(
            f"target column {name!r} has more than {MAX_CLASSES} distinct values: it looks "
            "continuous or like an id, not like class labels"
        )
    return np.asarray(sorted(labels))


def check_classes(classes: Any, name: str) -> np.ndarray:
    """``classes`` as a sorted array of distinct labels (at least two)."""
    values = np.asarray(classes)
    if values.ndim != 1 or values.dtype == object:
        raise ValueError(
            f"classes of {name!r} must be a 1-D list of int, str or bool labels; got {classes!r}"
        )
    unique = np.unique(values)
    if unique.size != values.size:
        raise ValueError(f"classes of {name!r} list a label more than once: {values.tolist()}")
    if unique.size < 2:
        raise DataError(
            f"target column {name!r} has only one class ({unique.tolist()}) in the training "
            "rows; a classifier needs at least 2"
        )
    return unique


def encode_labels(
    column: pa.ChunkedArray, classes: np.ndarray, out: np.ndarray, name: str, where: str
) -> None:
    """Write each row's index in ``classes`` into ``out`` (n,), NaN where no label is given.

    Labels not among ``classes`` raise a DataError naming them.
    """
    column = _values(column)
    value_set = pa.array(classes.tolist()).cast(column.type)
    codes = pc.index_in(column, value_set=value_set)  # int32, null: missing or unknown
    encoded = codes.to_numpy(zero_copy_only=False).astype(np.float64)  # nulls as NaN
    unknown = np.isnan(encoded) & present(column)
    if unknown.any():
        values = column.filter(pa.array(unknown)).unique().to_pylist()
        shown = sorted(values)[:10]
        raise DataError(
            f"{where!r} holds labels {shown} in column {name!r} that no training row has "
            f"(classes found in the training rows: {classes.tolist()}); every class must "
            "appear in the training rows"
        )
    out[:] = encoded


class LabelColumn:
    """What :class:`~nnpipe.data.dataset.ParquetDataset` does with a label column.

    Expects ``labels``, ``classes``, ``target_names``, ``schema``, ``partitions``
    and ``_check_columns`` from the dataset.
    """

    labels: bool
    classes: np.ndarray | None
    target_names: list[str]
    schema: pa.Schema
    partitions: list[Any]
    _check_columns: Callable[[list[str], str], None]

    def _init_labels(self, labels: bool, classes: Sequence[Any] | None) -> None:
        self.labels = bool(labels)
        self.classes = None
        if not self.labels:
            if classes is not None:
                raise ValueError("classes is given but labels=False (numeric targets)")
            self._check_columns(self.target_names, "target")
            return
        self._check_label_column()
        if classes is not None:
            self.set_classes(classes)

    def _check_label_column(self) -> None:
        if len(self.target_names) != 1:
            raise ValueError(
                f"labels=True needs exactly one target column (the labels); got {self.target_names}"
            )
        name = self.target_names[0]
        if name not in self.schema.names:
            self._check_columns([name], "target")  # raises: not found
        t = self.schema.field(name).type
        if not is_label_type(t):
            raise DataError(
                f"label column {name!r} in {self.partitions[0].path!r} has type {t}; class "
                "labels must be integers, strings or booleans"
            )

    def set_classes(self, classes: Sequence[Any]) -> None:
        """The class labels reads encode the label column with (sorted; at least two)."""
        if not self.labels:
            raise ValueError("set_classes needs a dataset opened with labels=True")
        self.classes = check_classes(classes, self.target_names[0])

    def _class_list(self) -> list[Any] | None:
        return None if self.classes is None else self.classes.tolist()

    def _labels_into(self, column: pa.ChunkedArray, out: np.ndarray, path: str, raw: bool):
        """The label column into ``out``: class indices; with ``raw`` the row numbers.

        Either way NaN where a row has no label, so the NaN policy applies to it.
        """
        name = self.target_names[0]
        if raw:
            out[:] = np.where(present(column), np.arange(len(out)), np.nan)
        elif self.classes is None:
            raise ValueError(
                f"the classes of label column {name!r} are not known yet: find them with "
                "fit_scalers_and_classes or give them with set_classes"
            )
        else:
            encode_labels(column, self.classes, out, name, path)
