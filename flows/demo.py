"""``nnpipe demo``: the whole pipeline on embedded defaults, summarised in a short report.

Writes (when missing) a regression set whose targets are mostly negative and a
Hopfield pattern set with noisy probes under ``workdir``, runs the ``pipeline``
flow (MLflow: ``MLFLOW_TRACKING_URI`` or ./mlflow.db with artifacts in
./mlartifacts; Prefect: ``PREFECT_API_URL``, else the command's reused local server; Dask: a local
cluster unless an address is given) and returns the report text.
"""

from __future__ import annotations

from pathlib import Path

from flows.config import PipelineConfig
from flows.pipeline import pipeline
from flows.prepare_data import check_data
from flows.report import pipeline_report
from nnpipe.tracking import default_tracking_uri

QUICK = {
    "data": {
        "regression": {"n_rows": 4_000, "rows_per_partition": 1_000},
        "hopfield": {"n_neurons": 64, "n_patterns": 4, "n_probes": 800, "rows_per_partition": 200},
    },
    "train": {"hidden_layer_sizes": [16], "max_epochs": 3},
}


def demo_config(
    workdir: Path,
    dask_address: str | None = None,
    seed: int = 0,
    quick: bool = False,
    overwrite: bool = False,
) -> PipelineConfig:
    """The embedded defaults: sizes that finish in well under 3 minutes on 2 cores.

    ``quick`` shrinks data and training to a smoke test of the same pipeline, under
    ``workdir/quick`` (its own data, models and recall results beside the full demo's).
    """
    config = PipelineConfig.model_validate(
        {
            "workdir": str(Path(workdir) / "quick" if quick else workdir),
            "dask_address": dask_address,
            "data": {
                "seed": seed,
                "overwrite": overwrite,
                "regression": {"n_rows": 20_000, "n_features": 8, "rows_per_partition": 2_000},
                "hopfield": {
                    "n_neurons": 100,
                    "n_patterns": 6,
                    "n_probes": 4_000,
                    "flip_fraction": 0.1,
                    "rows_per_partition": 500,
                },
            },
            "train": {
                "hidden_layer_sizes": [64, 64],
                "activation": "tanh",
                "max_epochs": 30,
                "n_iter_no_change": 5,
                "random_state": seed,
            },
            "recall": {"rule": "hebbian", "update": "async", "random_state": seed},
        }
    )
    if quick:
        values = config.model_dump(mode="json", exclude_unset=True)
        for stage, overrides in QUICK.items():
            for key, value in overrides.items():
                if isinstance(value, dict):
                    values[stage].setdefault(key, {}).update(value)
                else:
                    values[stage][key] = value
        config = PipelineConfig.model_validate(values)
    return config


def run_demo(
    workdir: Path,
    dask_address: str | None = None,
    seed: int = 0,
    quick: bool = False,
    overwrite: bool = False,
) -> str:
    """Run the pipeline on the demo config; return the report."""
    config = demo_config(workdir, dask_address, seed, quick, overwrite)
    check_data(config.data)  # before Prefect starts: data made otherwise is refused at once
    result = pipeline(config=config)
    train = result["summary"]["train_bp"]
    lines = [
        "nnpipe demo",
        pipeline_report(result, tracking_uri=default_tracking_uri()),
        "",
        "Negative targets are predicted as negative numbers: the regressor's output is linear "
        f"and its targets are standardised ({train['prediction_min']:+.2f} is its lowest "
        "prediction).",
        "See the runs, metrics, loss curve and registered model: make ui, then Model "
        "training (http://127.0.0.1:5000/#/?workflowType=machine_learning)",
    ]
    return "\n".join(lines)
