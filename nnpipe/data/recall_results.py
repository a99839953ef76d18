"""What a recall job's result files say: read back whole, or summarised a file at a time."""

from __future__ import annotations

import collections
import contextlib
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .partition_io import DataError, list_parquet_files
from .storage import is_url, remote_errors, resolve_filesystem

if TYPE_CHECKING:
    from .recall_job import PartitionStats, RecallPartition


@dataclass(frozen=True)
class RecallSummary:
    """Dataset-wide metrics of a recall job (over every partition, done now or before)."""

    n_probes: int
    n_partitions: int
    n_partitions_run: int
    n_partitions_skipped: int
    exact_recall_rate: float
    mean_overlap: float
    converged_fraction: float
    spurious_fraction: float
    probes_per_second: float
    seconds: float
    output_dir: str
    # Final states by kind ("stored", "reversed", "mixture", ...): probes per kind.
    kinds: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for JSON reports and tracking)."""
        return asdict(self)


def _read_table(
    path: str, columns: list[str] | None, storage_options: dict | None, **options: Any
) -> pa.Table:
    if not is_url(path):
        return pq.read_table(path, columns=columns, **options)
    fs, pa_fs, p = resolve_filesystem(path, storage_options)
    with remote_errors(path, fs):
        return pq.read_table(p, columns=columns, filesystem=pa_fs, **options)


def read_results(
    output_dir: str | os.PathLike,
    columns: list[str] | None = None,
    storage_options: dict | None = None,
) -> pa.Table:
    """Every result file of a job as one table (result files only, in name order)."""
    files = []
    if is_url(output_dir) or Path(output_dir).is_dir():
        with contextlib.suppress(DataError):
            files = list_parquet_files(output_dir, storage_options)
    if not files:
        raise ValueError(f"no recall results in {str(output_dir)!r}")
    return pa.concat_tables([_read_table(p, columns, storage_options) for p in files])


def summarise(
    plan: list[RecallPartition],
    output: Path,
    done: list[PartitionStats],
    seconds: float,
    with_truth: bool,
    storage_options: dict | None = None,
) -> RecallSummary:
    # Metrics cover every partition, including ones finished by an earlier run,
    # so they are read back from the result files rather than taken from `done`;
    # one file at a time, so the driver's memory does not grow with the probes.
    averaged = ["converged", "spurious"] + (["exact", "overlap"] if with_truth else [])
    sums = dict.fromkeys(averaged, 0.0)
    kinds: collections.Counter[str] = collections.Counter()
    n = 0
    for part in plan:
        # Kinds as dictionary codes: counted 2.5x faster than as strings (the summary
        # is work of the driver alone, after the workers are done).
        table = _read_table(
            part.output, [*averaged, "kind"], storage_options, read_dictionary=["kind"]
        )
        n += table.num_rows
        for name in averaged:
            sums[name] += pc.sum(table.column(name).cast(pa.float64())).as_py() or 0.0
        for row in pc.value_counts(table.column("kind")).to_pylist():
            kinds[row["values"]] += row["counts"]
    expected = sum(p.n_rows for p in plan)
    if n != expected:
        raise RuntimeError(f"recall results hold {n} probes, the input holds {expected}")

    def mean(name: str) -> float:
        return sums[name] / n if n else float("nan")

    n_run = sum(s.n_probes for s in done)
    return RecallSummary(
        n_probes=n,
        n_partitions=len(plan),
        n_partitions_run=len(done),
        n_partitions_skipped=len(plan) - len(done),
        exact_recall_rate=mean("exact") if with_truth else float("nan"),
        mean_overlap=mean("overlap") if with_truth else float("nan"),
        converged_fraction=mean("converged"),
        spurious_fraction=mean("spurious"),
        probes_per_second=n_run / seconds if n_run and seconds > 0 else 0.0,
        seconds=seconds,
        output_dir=str(output),
        kinds=dict(sorted(kinds.items())),
    )
