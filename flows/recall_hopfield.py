"""Flow ``recall_hopfield``: store the patterns, recall every probe partition on Dask workers.

load patterns -> fit the Hopfield network -> recall the partitions not done yet
(one result file per input partition, written atomically) -> summary metrics,
report, energy plot, capacity curve at this network size (and, with
``pattern_shape``, pictures of a few recalls) -> MLflow.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows import progress
from flows.cluster import dask_client, describe
from flows.config import RecallConfig
from flows.lineage import publish_run, run_tags
from flows.naming import run_name
from flows.report import recall_report
from nnpipe.core.hopfield import HopfieldNetwork, capacity_curve, energy_trajectories
from nnpipe.data import storage
from nnpipe.data.partition_io import read_patterns
from nnpipe.data.recall_job import (
    PartitionStats,
    list_probe_files,
    read_probes,
    run_recall_job,
)
from nnpipe.tracking import (
    MlflowTracker,
    capacity_curve_figure,
    energy_trajectory_figure,
    hopfield_recall_figure,
)

NETWORK_FILE = "hopfield.npz"
# Probes drawn in plots/recall_pictures.png: enough to see each kind, few enough to read.
PICTURED_PROBES = 8
# Loads of the capacity curve logged with each run (0.138: the Hebbian limit), and
# probes per load and trial: a few seconds at N = 100, bounded for large N.
CAPACITY_LOADS = (0.025, 0.05, 0.1, 0.138, 0.15, 0.2, 0.25, 0.3)
CAPACITY_PROBES = 20


@task(retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE)
def load_patterns(dataset: Path | str, storage_options: dict | None = None) -> np.ndarray:
    """The stored patterns (n_patterns, n_neurons) of a Hopfield dataset."""
    if not storage.is_url(dataset) and not (Path(dataset) / "patterns").is_dir():
        raise FileNotFoundError(
            f"Hopfield dataset {str(dataset)!r} has no patterns/ directory; write one with "
            "`nnpipe make-data hopfield DIR`"
        )
    return read_patterns(dataset, storage_options)


def check_inputs(config: RecallConfig) -> None:
    """Check patterns and probe files before any run starts (a wrong path fails at once)."""
    patterns = load_patterns.fn(config.dataset_path, config.storage_options)
    check_pattern_shape(config, patterns)
    list_probe_files(storage.join(config.dataset_path, "probes"), config.storage_options)


def check_pattern_shape(config: RecallConfig, patterns: np.ndarray) -> None:
    """``pattern_shape`` (when set) must cover each pattern exactly: rows * cols = N."""
    if config.pattern_shape is None:
        return
    rows, cols = config.pattern_shape
    if rows * cols != patterns.shape[1]:
        raise ValueError(
            f"pattern_shape [{rows}, {cols}] has {rows * cols} cells but the patterns in "
            f"{str(config.dataset_path)!r} have {patterns.shape[1]} neurons; rows * cols "
            "must equal the pattern length"
        )


@task(cache_policy=NO_CACHE)
def fit_network(config: RecallConfig, patterns: np.ndarray, out: Path | str) -> HopfieldNetwork:
    """Store the patterns with the configured rule; save the network beside the results."""
    network = HopfieldNetwork(
        rule=config.rule,
        update=config.update,
        max_iter=config.max_iter,
        random_state=config.random_state,
    ).fit(patterns)
    storage.makedirs(out)
    storage.save_file(network.save, storage.join(out, NETWORK_FILE), config.storage_options)
    return network


@task(cache_policy=NO_CACHE)
def recall_partitions(
    network: HopfieldNetwork, patterns: np.ndarray, config: RecallConfig, client: Any
) -> dict[str, Any]:
    """Recall the probe partitions not done yet, in parallel on the workers."""
    probes = storage.join(config.dataset_path, "probes")
    n_files = len(list_probe_files(probes, config.storage_options))
    progress.start("recall_hopfield", n_files, unit="partition")

    def on_partition(stats: PartitionStats, done: int, todo: int) -> None:
        rate = stats.n_probes / stats.seconds if stats.seconds > 0 else None
        progress.advance("recall_hopfield", {"partition": stats.key, "probes/s": rate})

    summary = run_recall_job(
        network,
        patterns,
        probes,
        config.output_path,
        client=client,
        on_partition=on_partition,
        storage_options=config.storage_options,
    )
    progress.finish("recall_hopfield")
    return summary.to_dict()


def _first_probes(dataset: Path | str, storage_options: dict | None, pattern_column: str | None):
    first = list_probe_files(storage.join(dataset, "probes"), storage_options)[0]
    return read_probes(first, "probe", pattern_column, storage_options)


def probe_energies(network: HopfieldNetwork, dataset: Path | str, storage_options=None):
    """Energy after each async sweep (at most 10) for the first 8 probes of the dataset."""
    n_probes = 8
    probes, _, _ = _first_probes(dataset, storage_options, None)
    sweeps = min(int(network.max_iter), 10)
    return energy_trajectories(network, probes[:n_probes], max_sweeps=sweeps)


def probe_noise(patterns: np.ndarray, dataset: Path | str, storage_options=None) -> float:
    """Fraction of bits the first probe file's probes differ from their source patterns."""
    probes, sources, _ = _first_probes(dataset, storage_options, "pattern_id")
    return float((probes != patterns[sources]).mean())


def capacity_table(patterns: np.ndarray, noise: float, config: RecallConfig) -> dict[str, list]:
    """Exact recall against load P/N for this run's network size, rule, update and noise.

    Fresh random patterns per load (``CAPACITY_LOADS`` and this run's own load), a
    seeded sample of probes each: where the stored set sits against the capacity.
    """
    n_neurons = patterns.shape[1]
    loads = sorted({*CAPACITY_LOADS, round(patterns.shape[0] / n_neurons, 4)})
    return capacity_curve(
        n_neurons,
        loads,
        [round(noise, 4)],
        rule=config.rule,
        update=config.update,
        trials=2,
        probes_per_trial=CAPACITY_PROBES,
        max_iter=config.max_iter,
        random_state=config.random_state,
    )


def recall_pictures(network: HopfieldNetwork, patterns: np.ndarray, config: RecallConfig):
    """Stored pattern, probe and recalled state (with its kind) for a seeded sample of probes."""
    probes, sources, _ = _first_probes(config.dataset_path, config.storage_options, "pattern_id")
    rng = np.random.default_rng(config.random_state)
    rows = np.sort(rng.choice(len(probes), min(PICTURED_PROBES, len(probes)), replace=False))
    result = network.recall(probes[rows])  # a probe's recall never depends on its batch
    return hopfield_recall_figure(
        patterns,
        probes[rows],
        result.states,
        config.pattern_shape,
        sources=sources[rows],
        kinds=network.classify(result),
        title=f"Hopfield recall ({config.rule}, {config.update}): {rows.size} sampled probes",
    )


# The defaults, shown in the Prefect UI form of a deployment (never mutated).
DEFAULT_CONFIG = RecallConfig()


@flow(name="recall_hopfield")
def recall_hopfield(
    config: RecallConfig = DEFAULT_CONFIG, parent_run_id: str | None = None
) -> dict[str, Any]:
    """Hopfield recall over every probe partition, tracked in MLflow; run id and summary."""
    tracker = MlflowTracker(config.experiment)
    out = config.output_path
    name = run_name(storage.basename(config.dataset_path), f"{config.rule}-{config.update}")
    options = config.storage_options
    with tracker.run(run_name=name, tags=run_tags("recall_hopfield", parent_run_id)) as rid:
        tracker.log_params({"config": config.model_dump(mode="json")})
        patterns = load_patterns(config.dataset_path, options)
        check_pattern_shape(config, patterns)
        network = fit_network(config, patterns, out)
        with dask_client(config.dask_address) as client:
            cluster = describe(client)
            summary = recall_partitions(network, patterns, config, client)
        tracker.log_params(
            {
                "network": {
                    "n_neurons": int(patterns.shape[1]),
                    "n_patterns": int(patterns.shape[0]),
                    "load": float(patterns.shape[0] / patterns.shape[1]),
                },
                "cluster": cluster,
            }
        )
        tracker.log_metrics({k: v for k, v in summary.items() if k not in ("output_dir", "kinds")})
        report = {"summary": summary, "network_file": str(storage.join(out, NETWORK_FILE))}
        tracker.log_dict(report, "recall_report.json")
        text = json.dumps(report, indent=2).encode()
        storage.write_bytes(storage.join(out, "recall_report.json"), text, options)
        with storage.local_copy(storage.join(out, NETWORK_FILE), options) as local:
            tracker.log_artifact(local, artifact_path="network")
        if config.update == "async":
            lines = probe_energies(network, config.dataset_path, options)
            tracker.log_plot("plots/energy.png", energy_trajectory_figure, list(lines))
        noise = probe_noise(patterns, config.dataset_path, options)
        table = capacity_table(patterns, noise, config)
        tracker.log_dict(table, "capacity.json")
        load = patterns.shape[0] / patterns.shape[1]
        tracker.log_plot(
            "plots/capacity.png",
            capacity_curve_figure,
            table,
            title=f"Capacity at this size and rule (this run: load {load:.3f})",
        )
        if config.pattern_shape is not None:
            tracker.log_plot(
                "plots/recall_pictures.png", recall_pictures, network, patterns, config
            )
    result = {"run_ids": {"recall_hopfield": rid}, "summary": summary}
    publish_run(tracker, rid, recall_report(result), summary)
    return result
