"""``nnpipe serve``, ``predict`` and ``demo``: their arguments (kept beside cli.py for its size)."""

from __future__ import annotations

from typing import Any


def add_service_commands(sub: Any) -> None:
    """The serve, predict and demo sub-commands."""
    from nnpipe.cli import ENV_HELP, _add_overwrite, _cmd_demo, _cmd_predict, _cmd_serve

    p = sub.add_parser(
        "serve",
        epilog=ENV_HELP,
        help="serve the flows as Prefect deployments with cron schedules",
        description="Serve the flows as Prefect deployments with the cron schedules of a "
        "YAML file. Schedules fire only with a Prefect server: run `prefect server start` "
        "and set PREFECT_API_URL=http://127.0.0.1:4200/api first.",
    )
    p.add_argument(
        "--schedules",
        metavar="YAML",
        help="deployments and cron schedules (default: the packaged flows/schedules.yaml)",
    )
    p.add_argument("--config", metavar="YAML", help="flow parameters given to every deployment")
    p.add_argument("--dask-address", metavar="tcp://HOST:PORT", help="Dask cluster for the runs")
    p.add_argument(
        "--workdir",
        metavar="DIR",
        help="where every deployment's runs read and write (a directory or s3://bucket/prefix; "
        "default: the config's, else nnpipe-work in the runner's directory)",
    )
    p.add_argument("--list", action="store_true", help="print the deployments and exit")
    p.add_argument(
        "--run-once",
        action="store_true",
        help="register the deployments, run what is due now, and exit",
    )
    p.add_argument("--limit", type=int, default=1, help="flow runs allowed at once")
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser(
        "predict",
        help="predict a CSV or Parquet file with an MLflow model URI or a local model file",
        description="Predict every row of a CSV or Parquet file. MODEL is an MLflow model "
        "URI (runs:/<id>/model, models:/<name>/<version>) or a local model file written by "
        "nnpipe (models/<run id>/model.npz: network, feature scaler and column names; a "
        "model directory of earlier versions works too). "
        "The output format follows OUTPUT's suffix (.csv or .parquet).",
    )
    p.add_argument("model", help="runs:/..., models:/..., path/to/model.npz or its directory")
    p.add_argument("input", help="CSV or Parquet file with the feature columns")
    p.add_argument(
        "output",
        help="CSV or Parquet file to write (input columns + prediction; a classifier's "
        "label and one proba_<label> column per class)",
    )
    p.add_argument("--column", default="prediction", help="name of the prediction column")
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser(
        "demo",
        epilog=ENV_HELP,
        help="generate data and run the whole pipeline on embedded defaults, then report",
        description="Generate a regression set with negative targets and a Hopfield pattern "
        "set under --workdir, run the pipeline (MLflow at ./mlflow.db, the local Prefect "
        "server that later commands reuse, a local Dask cluster) and print a short report.",
    )
    p.add_argument("--workdir", default="nnpipe-work", help="where results are written")
    p.add_argument("--dask-address", metavar="tcp://HOST:PORT", help="use this Dask cluster")
    p.add_argument("--seed", type=int, default=0)
    quick = "smaller data and 3 epochs, in WORKDIR/quick: a smoke test (~1 min)"
    p.add_argument("--quick", action="store_true", help=quick)
    _add_overwrite(p)
    p.set_defaults(func=_cmd_demo)
