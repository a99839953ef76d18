"""Hopfield recall over a partitioned probe dataset, one result file per input partition.

The probe dataset is a directory of Parquet files, each holding a fixed-size
``list<int8>`` column of bipolar probes (and, optionally, the index of the stored
pattern each probe is a noisy copy of). Every input file is recalled as one unit
of work, on Dask workers when a ``distributed.Client`` is given, in this process
otherwise, and its results go to one output file whose name is derived from the
input's relative path.

Bookkeeping that makes a rerun safe:

- an output file is written to a temporary name in the output directory and
  renamed into place (on an object store: sent as one object, which the store
  publishes only once complete), so a file under its final name is always complete;
- it carries, in its Parquet metadata, the input file it came from, that file's
  size and row count, and a fingerprint of the network's weights; a rerun skips
  the partitions whose output matches all of these and recomputes (replaces) the
  rest, so a probe is never recalled twice into the output nor lost;
- temporary files left by an interrupted run are removed at the start of the next.

Recall of a probe does not depend on the other probes in its batch (a property of
:class:`nnpipe.core.hopfield.HopfieldNetwork`), so the split into partitions does
not change any result.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .partition_io import (
    DataError,
    bipolar_column,
    column_to_numpy,
    find_parquet_files,
    list_parquet_files,
    read_columns,
    write_parquet,
)
from .recall_results import RecallSummary, summarise
from .recall_results import read_results as read_results  # where callers import it
from .storage import is_url, join, list_names, makedirs, remote_errors, remove, resolve_filesystem

_META_PREFIX = b"nnpipe.recall."

# Probe states (rows x neurons) recalled together within a partition: a slice's
# working arrays stay in the CPU's caches and within the work arrays a thread keeps
# from one recall call to the next (8 MB), and a task's memory does not grow with
# its partition's rows. 1310 probes of 100 neurons.
SLICE_ELEMENTS = 1 << 17


@dataclass(frozen=True)
class RecallPartition:
    """One unit of work: an input probe file and the result file it maps to."""

    source: str
    output: str
    key: str
    source_size: int
    n_rows: int


@dataclass(frozen=True)
class PartitionStats:
    """Counts over one partition's results, enough to merge into dataset-wide metrics."""

    key: str
    n_probes: int
    n_exact: int
    n_converged: int
    n_spurious: int
    overlap_sum: float
    seconds: float


def network_fingerprint(network: Any) -> str:
    """A short hash of the weights and recall settings: results of another network are stale."""
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(network.weights_).tobytes())
    thresholds = getattr(network, "thresholds_", None)
    if thresholds is not None:
        digest.update(np.ascontiguousarray(thresholds).tobytes())
    settings = {k: getattr(network, k, None) for k in ("rule", "update", "max_iter")}
    # The async visiting order comes from this seed: another seed, other results.
    settings["order_seed"] = repr(getattr(network, "order_seed_", None))
    digest.update(json.dumps(settings, sort_keys=True).encode())
    return digest.hexdigest()[:16]


def list_probe_files(
    probes_dir: str | os.PathLike, storage_options: dict | None = None
) -> list[str]:
    """The probe directory's partition files, by the dataset rules (:func:`list_parquet_files`)."""
    if not is_url(probes_dir) and not Path(probes_dir).is_dir():
        raise FileNotFoundError(f"probe dataset {os.fspath(probes_dir)!r} is not a directory")
    files = list_parquet_files(probes_dir, storage_options)
    if not files:
        raise DataError(f"probe dataset {os.fspath(probes_dir)!r} holds no .parquet files")
    return files


def plan_partitions(
    probes_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    storage_options: dict | None = None,
) -> list[RecallPartition]:
    """One :class:`RecallPartition` per input file; output names follow the input paths."""
    list_probe_files(probes_dir, storage_options)  # the checks and their messages
    fs, pa_fs, root = resolve_filesystem(probes_dir, storage_options)
    plan = []
    for path, size in find_parquet_files(fs, root):
        key = path[len(root) :].lstrip("/")
        try:
            with remote_errors(probes_dir, fs):
                n_rows = pq.read_metadata(path, filesystem=pa_fs).num_rows
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"cannot read Parquet file {path!r}: {exc}") from exc
        plan.append(
            RecallPartition(
                source=fs.unstrip_protocol(path) if is_url(probes_dir) else path,
                output=str(join(output_dir, key.replace("/", "__"))),
                key=key,
                source_size=size,
                n_rows=n_rows,
            )
        )
    return plan


def _expected_meta(part: RecallPartition, fingerprint: str) -> dict[bytes, bytes]:
    values = {
        "source": part.key,
        "source_size": str(part.source_size),
        "n_rows": str(part.n_rows),
        "network": fingerprint,
    }
    return {_META_PREFIX + k.encode(): v.encode() for k, v in values.items()}


def _metadata(path: str, storage_options: dict | None) -> Any:
    """The Parquet footer of ``path`` (local or on a store)."""
    if not is_url(path):
        return pq.ParquetFile(path).metadata
    fs, pa_fs, p = resolve_filesystem(path, storage_options)
    with remote_errors(path, fs):
        return pq.read_metadata(p, filesystem=pa_fs)


def is_done(part: RecallPartition, fingerprint: str, storage_options: dict | None = None) -> bool:
    """True when ``part``'s output exists, is complete, and came from this input and network."""
    try:
        meta = _metadata(part.output, storage_options)
    except (FileNotFoundError, pa.ArrowInvalid, OSError):
        return False
    stored = meta.metadata or {}
    expected = _expected_meta(part, fingerprint)
    return meta.num_rows == part.n_rows and all(stored.get(k) == v for k, v in expected.items())


def remove_stale_temporaries(output_dir: str | os.PathLike) -> int:
    """Delete temporary files an interrupted run left in ``output_dir``; return how many.

    An object store holds none: its results are written as one object each.
    """
    if is_url(output_dir):
        return 0
    out = Path(output_dir)
    if not out.is_dir():
        return 0
    # atomic_write's temporaries: ".<name>.<random>.tmp" beside the result file.
    stale = [p for p in out.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp")]
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


def remove_orphan_results(
    plan: list[RecallPartition], output_dir: str | os.PathLike, storage_options: dict | None = None
) -> int:
    """Delete result files whose probe file is gone (probes rewritten); return how many.

    Otherwise :func:`read_results` would read them with the current results. Only
    files this job wrote (their metadata names a source) are touched.
    """
    wanted = {p.output for p in plan}
    orphans = []
    for name in list_names(output_dir, storage_options):
        path = str(join(output_dir, name))
        if not name.endswith(".parquet") or path in wanted:
            continue
        try:
            meta = _metadata(path, storage_options).metadata or {}
        except (pa.ArrowInvalid, OSError):
            continue
        if _META_PREFIX + b"source" in meta:
            orphans.append(path)
    for path in orphans:
        remove(path, storage_options)
    return len(orphans)


def read_probes(
    path: str, probe_column: str, pattern_column: str | None, storage_options: dict | None = None
):
    """(probes (n, n_neurons) int8, pattern index (n,) or None, probe ids (n,)) of one file.

    Only these columns are read; ``probe_id`` is optional (row numbers stand in).
    """
    columns = [probe_column] + ([pattern_column] if pattern_column else [])
    table = read_columns(path, columns, optional=["probe_id"], storage_options=storage_options)
    probes = bipolar_column(table, probe_column, path)
    patterns = None
    if pattern_column:
        patterns = column_to_numpy(table, pattern_column, path).astype(np.int64)
    if "probe_id" in table.column_names:
        ids = column_to_numpy(table, "probe_id", path).astype(np.int64)
    else:
        ids = np.arange(table.num_rows, dtype=np.int64)
    return probes, patterns, ids


def recall_partition(
    network: Any,
    stored_patterns: np.ndarray,
    part: RecallPartition,
    fingerprint: str,
    probe_column: str = "probe",
    pattern_column: str | None = "pattern_id",
    storage_options: dict | None = None,
) -> PartitionStats:
    """Recall one input file and write its result file atomically; return its counts."""
    start = time.perf_counter()
    probes, truth, ids = read_probes(part.source, probe_column, pattern_column, storage_options)
    if probes.shape[1] != network.weights_.shape[0]:
        raise ValueError(
            f"probe file {part.source!r}: probes have {probes.shape[1]} neurons, the network "
            f"has {network.weights_.shape[0]}"
        )
    if (
        truth is not None
        and truth.size
        and (truth.min() < 0 or truth.max() >= len(stored_patterns))
    ):
        raise ValueError(
            f"probe file {part.source!r}: {pattern_column!r} holds {int(truth.max())}, "
            f"but only {len(stored_patterns)} patterns are stored"
        )
    n = probes.shape[0]
    step = max(1, SLICE_ELEMENTS // max(1, probes.shape[1]))
    slices = [
        _recall_slice(network, stored_patterns, probes, truth, ids, slice(lo, lo + step))
        for lo in range(0, max(n, 1), step)  # an empty file still gets its schema
    ]
    table = pa.Table.from_batches([batch for batch, _ in slices])
    table = table.replace_schema_metadata(_expected_meta(part, fingerprint))
    write_parquet(table, part.output, storage_options)
    n_exact, n_converged, n_spurious, overlap_sum = (
        sum(column) for column in zip(*(counts for _, counts in slices), strict=True)
    )
    return PartitionStats(
        key=part.key,
        n_probes=n,
        n_exact=n_exact,
        n_converged=n_converged,
        n_spurious=n_spurious,
        overlap_sum=overlap_sum,
        seconds=time.perf_counter() - start,
    )


def _recall_slice(
    network: Any,
    stored_patterns: np.ndarray,
    probes: np.ndarray,
    truth: np.ndarray | None,
    ids: np.ndarray,
    rows: slice,
) -> tuple[pa.RecordBatch, tuple[int, int, int, float]]:
    """The result rows of ``probes[rows]``; (exact, converged, spurious, overlap sum) of them."""
    result = network.recall(probes[rows])
    states = np.asarray(result.states, dtype=np.int8)  # (n, n_neurons)
    converged = np.asarray(result.converged, bool)
    # The network's own classification: the same exact fields as its recall.
    found = network.classify(states)
    # A fixed point that is not a stored pattern: reversed, mixture or other spurious state.
    spurious = converged & (found.labels != "stored")
    n, n_neurons = states.shape
    columns: dict[str, pa.Array] = {
        "probe_id": pa.array(ids[rows]),
        "state": pa.FixedSizeListArray.from_arrays(pa.array(states.ravel()), n_neurons),
        "converged": pa.array(converged),
        "n_sweeps": pa.array(np.asarray(result.n_sweeps, np.int32)),
        "energy": pa.array(np.asarray(result.energy, np.float64)),
        "kind": pa.array(found.labels, pa.string()),
        "nearest": pa.array(found.nearest.astype(np.int32)),
        "spurious": pa.array(spurious),
    }
    n_exact, overlap_sum = 0, 0.0
    if truth is not None:
        target = stored_patterns[truth[rows]]  # (n, n_neurons)
        agree = np.count_nonzero(states == target, axis=1)
        exact = agree == n_neurons
        overlap = (2 * agree - n_neurons) / n_neurons  # the mean of s * t, exactly
        columns["pattern_id"] = pa.array(truth[rows])
        columns["exact"] = pa.array(exact)
        columns["overlap"] = pa.array(overlap)
        n_exact, overlap_sum = int(exact.sum()), float(overlap.sum())
    counts = (n_exact, int(np.count_nonzero(converged)), int(spurious.sum()), overlap_sum)
    return pa.RecordBatch.from_pydict(columns), counts


def run_recall_job(
    network: Any,
    stored_patterns: np.ndarray,
    probes_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    client: Any = None,
    probe_column: str = "probe",
    pattern_column: str | None = "pattern_id",
    on_partition: Callable[[PartitionStats, int, int], None] | None = None,
    storage_options: dict | None = None,
) -> RecallSummary:
    """Recall every probe partition not done yet; return metrics over all of them.

    ``client`` is a ``distributed.Client``: partitions then run in parallel on its
    workers (which must see ``probes_dir`` and ``output_dir`` at the same paths).
    ``on_partition(stats, n_done, n_todo)`` is called as each partition finishes.
    ``storage_options`` go to fsspec for URLs (``s3://...``), here and on the workers.
    """
    stored = np.asarray(stored_patterns, dtype=np.int8)
    output = output_dir if is_url(output_dir) else Path(output_dir)
    makedirs(output, storage_options)
    remove_stale_temporaries(output)
    plan = plan_partitions(probes_dir, output, storage_options)
    remove_orphan_results(plan, output, storage_options)
    fingerprint = network_fingerprint(network)
    todo = [p for p in plan if not is_done(p, fingerprint, storage_options)]
    start = time.perf_counter()
    kwargs = {
        "probe_column": probe_column,
        "pattern_column": pattern_column,
        "storage_options": storage_options,
    }
    done: list[PartitionStats] = []
    if client is None:
        for part in todo:
            stats = recall_partition(network, stored, part, fingerprint, **kwargs)
            done.append(stats)
            if on_partition:
                on_partition(stats, len(done), len(todo))
    elif todo:
        from distributed import as_completed

        # One copy of the weights per worker instead of one per task.
        [net_f, pat_f] = client.scatter([network, stored], broadcast=True, hash=False)
        futures = [
            client.submit(
                recall_partition, net_f, pat_f, part, fingerprint, key=_task_key(part), **kwargs
            )
            for part in todo
        ]
        for future in as_completed(futures):
            stats = future.result()
            done.append(stats)
            if on_partition:
                on_partition(stats, len(done), len(todo))
    seconds = time.perf_counter() - start
    with_truth = pattern_column is not None
    return summarise(plan, output, done, seconds, with_truth, storage_options)


def _task_key(part: RecallPartition) -> str:
    return f"nnpipe-recall-{hashlib.sha1(part.output.encode()).hexdigest()[:12]}-{uuid.uuid4().hex}"
