"""Flow ``prepare_data``: write the synthetic datasets when missing, fit scalers out of core.

extract (datasets on disk) -> describe (rows, fingerprint) -> fit scalers on the
training split in one Dask pass (skipped when the saved scalers' manifest matches the
dataset, split and scaler kind) -> save them beside a manifest -> log to MLflow.
``train_bp`` reuses the saved scalers when the manifest matches its dataset and split.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows import progress
from flows.cluster import dask_client, describe
from flows.config import DataConfig
from flows.datasets import check_dataset, write_dataset
from flows.lineage import log_dataset_input, publish_run, run_tags
from flows.naming import run_name
from flows.report import prepare_report
from nnpipe.core.scalers import SCALERS
from nnpipe.data import storage
from nnpipe.data.dataset import ParquetDataset
from nnpipe.data.partition_io import DataError, list_parquet_files
from nnpipe.data.scaling import fit_scalers
from nnpipe.data.split import TrainValidationSplit
from nnpipe.data.synthetic import read_dataset_record
from nnpipe.tracking import MlflowTracker

SCALER_MANIFEST = "scalers.json"


def scaler_dir(workdir: Path | str) -> Path | str:
    """Where the fitted scalers and their manifest live."""
    return storage.join(workdir, "scalers")


def scaler_manifest(
    dataset: ParquetDataset, kind: str, split: TrainValidationSplit
) -> dict[str, Any]:
    """What a set of saved scalers was fitted on; reuse requires an exact match.

    The fingerprint sees file names, sizes and rows; the record of a generated
    dataset (its seed, noise, ...) tells apart data of equal size made otherwise.
    """
    record = read_dataset_record(dataset.path, dataset.storage_options)
    return {
        "fingerprint": dataset.fingerprint,
        "dataset_record": record["parameters"] if record else None,
        "features": list(dataset.feature_names),
        "targets": list(dataset.target_names),
        "kind": kind,
        "validation_fraction": split.validation_fraction,
        "split_seed": split.seed,
    }


OVERWRITE_HINT = (
    "pass --overwrite (or overwrite: true in the data config) to rewrite it, "
    "or use another --workdir"
)


def dataset_parameters(kind: str, config: DataConfig) -> dict[str, Any]:
    """What the config asks the ``kind`` dataset to be, in write_dataset's argument names."""
    if kind == "regression":
        r = config.regression
        sizes = dict(n_rows=r.n_rows, n_features=r.n_features, noise=r.noise)
        rows_per_partition = r.rows_per_partition
    else:
        h = config.hopfield
        sizes = dict(
            n_rows=h.n_probes,
            n_neurons=h.n_neurons,
            n_patterns=h.n_patterns,
            flip_fraction=h.flip_fraction,
        )
        rows_per_partition = h.rows_per_partition
    return {**sizes, "rows_per_partition": rows_per_partition, "seed": config.seed}


def _present(path: Path | str, storage_options: dict | None = None) -> bool:
    if storage.is_url(path):
        try:
            return bool(list_parquet_files(path, storage_options))
        except DataError:  # nothing there
            return False
    path = Path(path)
    return path.is_dir() and any(path.rglob("*.parquet"))


def check_data(config: DataConfig) -> None:
    """Refuse data already there but made with other parameters than the config's.

    Called before any run starts. With ``overwrite`` the data is rewritten anyway;
    with ``generate: false`` the data there is used as it is.
    """
    if not config.generate or config.overwrite:
        return
    for kind, path in (("regression", config.regression_path), ("hopfield", config.hopfield_path)):
        if _present(path, config.storage_options):
            check_dataset(
                kind,
                path,
                OVERWRITE_HINT,
                storage_options=config.storage_options,
                **dataset_parameters(kind, config),
            )


@task(retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE)
def ensure_dataset(kind: str, path: Path | str, config: DataConfig) -> dict[str, Any]:
    """Write the synthetic ``kind`` dataset unless it is there (or ``overwrite`` is set)."""
    present = _present(path, config.storage_options)
    if present and not config.overwrite:
        return {"path": str(path), "kind": kind, "written": False}
    if not config.generate and not present:
        raise FileNotFoundError(
            f"{kind} dataset {str(path)!r} does not exist and generate=false; "
            "write it with `nnpipe make-data` or set generate: true"
        )
    info = write_dataset(
        kind,
        path,
        overwrite=True,
        storage_options=config.storage_options,
        **dataset_parameters(kind, config),
    )
    return {**info, "written": True}


@task(cache_policy=NO_CACHE)
def fit_and_save_scalers(
    dataset: ParquetDataset, kind: str, split: TrainValidationSplit, out: Path | str, client: Any
) -> dict[str, Any]:
    """Fit feature and target scalers on the training split (on the workers); save them."""
    x_scaler, y_scaler = fit_scalers(
        dataset, kind, kind, subset="train", split=split, client=client
    )
    options = dataset.storage_options
    storage.makedirs(out)
    # No manifest beside half-written scalers; each file is whole (renamed, or one object).
    storage.remove(storage.join(out, SCALER_MANIFEST), options)
    storage.save_file(x_scaler.save, storage.join(out, "x_scaler.npz"), options)
    storage.save_file(y_scaler.save, storage.join(out, "y_scaler.npz"), options)
    manifest = scaler_manifest(dataset, kind, split)
    manifest["n_samples_seen"] = int(x_scaler.n_samples_seen_)
    text = json.dumps(manifest, indent=2).encode()
    storage.write_bytes(storage.join(out, SCALER_MANIFEST), text, options)
    return {"dir": str(out), **manifest, "reused": False}


def saved_scaler_manifest(
    workdir: Path | str, dataset: ParquetDataset, kind: str, split: TrainValidationSplit
) -> dict[str, Any] | None:
    """The manifest of scalers saved for exactly this dataset, kind and split, else None."""
    path = storage.join(scaler_dir(workdir), SCALER_MANIFEST)
    try:
        saved = json.loads(storage.read_bytes(path, dataset.storage_options))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    wanted = scaler_manifest(dataset, kind, split)
    if not isinstance(saved, dict) or any(saved.get(k) != v for k, v in wanted.items()):
        return None
    return saved


def load_saved_scalers(
    workdir: Path | str, dataset: ParquetDataset, kind: str, split, storage_options=None
):
    """The scalers ``prepare_data`` saved for exactly this dataset and split, else None."""
    if saved_scaler_manifest(workdir, dataset, kind, split) is None:
        return None
    out, load = scaler_dir(workdir), SCALERS[kind].load
    options = storage_options if storage_options is not None else dataset.storage_options
    return tuple(
        storage.load_file(load, storage.join(out, name), options)
        for name in ("x_scaler.npz", "y_scaler.npz")
    )


# The defaults, shown in the Prefect UI form of a deployment (never mutated).
DEFAULT_CONFIG = DataConfig()


@flow(name="prepare_data")
def prepare_data(
    config: DataConfig = DEFAULT_CONFIG, parent_run_id: str | None = None
) -> dict[str, Any]:
    """Synthetic datasets (when missing) and out-of-core scalers, tracked in MLflow."""
    check_data(config)
    tracker = MlflowTracker(config.experiment)
    name = run_name(f"{config.regression.n_rows} rows")
    with tracker.run(run_name=name, tags=run_tags("prepare_data", parent_run_id)) as run_id:
        tracker.log_params({"config": config.model_dump(mode="json")})
        progress.start("prepare_data", 3, unit="step")
        regression = ensure_dataset("regression", config.regression_path, config)
        hopfield = ensure_dataset("hopfield", config.hopfield_path, config)
        progress.advance("prepare_data", {"datasets": "ready"})
        dataset = ParquetDataset(
            config.regression_path,
            targets=config.target,
            nan_policy=config.nan_policy,
            storage_options=config.storage_options,
        )
        split = TrainValidationSplit(
            validation_fraction=config.validation_fraction, seed=config.split_seed
        )
        out = scaler_dir(config.workdir)
        saved = saved_scaler_manifest(config.workdir, dataset, config.scaler, split)
        cluster = None
        if saved is not None:  # same data, split and kind: no pass over the data
            scalers = {"dir": str(out), **saved, "reused": True}
        else:
            with dask_client(config.dask_address) as client:
                cluster = describe(client)
                scalers = fit_and_save_scalers(dataset, config.scaler, split, out, client)
        progress.advance("prepare_data", {"scalers": "reused" if saved else "fitted"})
        tracker.log_params({"data": dataset.describe(), "scalers_reused": scalers["reused"]})
        log_dataset_input(tracker, dataset, "preparation")
        if cluster is not None:
            tracker.log_params({"cluster": cluster})
        tracker.log_metrics(
            {
                "regression_rows": dataset.n_rows,
                "regression_partitions": dataset.n_partitions,
                "scaler_rows": scalers["n_samples_seen"],
            }
        )
        for name in ("x_scaler.npz", "y_scaler.npz", SCALER_MANIFEST):
            path = storage.join(out, name)
            with storage.local_copy(path, config.storage_options) as local:
                tracker.log_artifact(local, artifact_path="scalers")
        summary = {
            "regression": regression,
            "hopfield": hopfield,
            "scalers": scalers,
            "cluster": cluster,
        }
        tracker.log_dict(summary, "prepare_data.json")
        progress.advance("prepare_data", {"logged": run_id[:8]})
        progress.finish("prepare_data")
    result = {"run_ids": {"prepare_data": run_id}, "summary": summary}
    publish_run(tracker, run_id, prepare_report(result), summary)
    return result
