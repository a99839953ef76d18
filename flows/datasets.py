"""Synthetic datasets for ``nnpipe make-data`` and the ``prepare_data`` flow."""

from __future__ import annotations

import os
from typing import Any

from nnpipe.data.synthetic import (
    write_classification_dataset,
    write_hopfield_dataset,
    write_regression_dataset,
)

KINDS = ("regression", "classification", "hopfield")


def write_dataset(
    kind: str,
    path: str | os.PathLike,
    *,
    n_rows: int = 20_000,
    n_features: int = 8,
    rows_per_partition: int = 2_000,
    noise: float = 0.1,
    n_neurons: int = 100,
    n_patterns: int = 6,
    flip_fraction: float = 0.1,
    seed: int = 0,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write a ``kind`` dataset (rows = probes for hopfield); return a JSON-able summary."""
    if kind not in KINDS:
        raise ValueError(f"dataset kind {kind!r} is not supported; allowed: {', '.join(KINDS)}")
    try:
        if kind == "regression":
            written = write_regression_dataset(
                path,
                n_rows,
                n_features=n_features,
                rows_per_partition=rows_per_partition,
                noise=noise,
                random_state=seed,
                overwrite=overwrite,
            )
        elif kind == "classification":
            written = write_classification_dataset(
                path,
                n_rows,
                n_features=n_features,
                rows_per_partition=rows_per_partition,
                random_state=seed,
                overwrite=overwrite,
            )
        else:
            written = write_hopfield_dataset(
                path,
                n_patterns=n_patterns,
                n_units=n_neurons,
                n_probes=n_rows,
                flip_fraction=flip_fraction,
                rows_per_partition=rows_per_partition,
                random_state=seed,
                overwrite=overwrite,
            )
    except FileExistsError as exc:
        # Refusing to overwrite is bad input, reported like the other input errors.
        raise ValueError(str(exc)) from exc
    return {
        "path": str(written.path),
        "kind": kind,
        "n_rows": written.n_rows,
        "n_partitions": written.n_partitions,
        **{k: v for k, v in written.columns.items()},
    }
