"""Synthetic datasets for ``nnpipe make-data`` and the ``prepare_data`` flow.

Each dataset records the parameters that made it (``_dataset.json``);
:func:`check_dataset` compares that record with what a config asks for, so a flow
never trains on data made with other parameters than its config says.
"""

from __future__ import annotations

import os
from typing import Any

from nnpipe.data.synthetic import (
    read_dataset_record,
    write_classification_dataset,
    write_hopfield_dataset,
    write_regression_dataset,
)

KINDS = ("regression", "classification", "hopfield")

# write_dataset's argument -> the name the writer records it under, per kind.
RECORDED_AS = {
    "regression": {"n_rows": "n_rows", "n_features": "n_features", "noise": "noise"},
    "classification": {"n_rows": "n_rows", "n_features": "n_features"},
    "hopfield": {
        "n_rows": "n_probes",
        "n_neurons": "n_units",
        "n_patterns": "n_patterns",
        "flip_fraction": "flip_fraction",
    },
}
COMMON = {"rows_per_partition": "rows_per_partition", "seed": "random_state"}


class DatasetMismatch(ValueError):
    """Existing data was made with other parameters than the config asks for."""


def check_dataset(
    kind: str,
    path: str | os.PathLike,
    hint: str,
    storage_options: dict | None = None,
    **wanted: Any,
) -> None:
    """Raise :class:`DatasetMismatch` unless ``path`` was written as ``kind`` with ``wanted``.

    ``wanted`` uses :func:`write_dataset`'s argument names; ``hint`` says how to
    rewrite the data (the flag or config key), and ends the one-line message.
    """
    names = {**RECORDED_AS[kind], **COMMON}
    record = read_dataset_record(path, storage_options)
    if record is None:
        raise DatasetMismatch(
            f"{kind} dataset {os.fspath(path)!r} has no record of the parameters that made it "
            f"(_dataset.json), so it may not be what the config asks for; {hint}"
        )
    made = record.get("parameters", {})
    differ = [k for k, v in wanted.items() if made.get(names[k]) != v]
    if record.get("kind") != kind:
        raise DatasetMismatch(
            f"dataset {os.fspath(path)!r} holds {record.get('kind')!r} data, "
            f"the config asks for {kind!r}; {hint}"
        )
    if differ:
        had = ", ".join(f"{k}={made.get(names[k])!r}" for k in differ)
        asked = ", ".join(f"{k}={wanted[k]!r}" for k in differ)
        raise DatasetMismatch(
            f"{kind} dataset {os.fspath(path)!r} was made with {had} but the config asks "
            f"for {asked}; {hint}"
        )


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
    storage_options: dict | None = None,
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
                storage_options=storage_options,
            )
        elif kind == "classification":
            written = write_classification_dataset(
                path,
                n_rows,
                n_features=n_features,
                rows_per_partition=rows_per_partition,
                random_state=seed,
                overwrite=overwrite,
                storage_options=storage_options,
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
                storage_options=storage_options,
            )
    except FileExistsError as exc:
        # Refusing to overwrite is bad input, reported like the other input errors.
        raise ValueError(
            f"{os.fspath(path)!r} already exists and is not empty; pass --overwrite "
            "(overwrite=True) to replace it"
        ) from exc
    return {
        "path": str(written.path),
        "kind": kind,
        "n_rows": written.n_rows,
        "n_partitions": written.n_partitions,
        **{k: v for k, v in written.columns.items()},
    }
