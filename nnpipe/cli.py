"""The ``nnpipe`` command: make data, train, recall, run the pipeline, sweep, serve, predict, demo.

Exit codes: 0 success, 2 bad usage or bad input (a one-line message, no
traceback), 1 a failure while running (the message; ``--debug`` adds the
traceback). Progress goes to stderr: a bar on a terminal, log lines otherwise.

``PREFECT_API_URL`` selects a Prefect server (default: a local one started on
first use and reused, see ``nnpipe server --help``);
``MLFLOW_TRACKING_URI`` selects the MLflow store (default: ./mlflow.db with
artifacts in ./mlartifacts); ``--dask-address tcp://host:port`` runs the scaler
fit, data loading and recall jobs on that Dask cluster's workers (default: a
local cluster started for the run).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nnpipe
from nnpipe import lifecycle
from nnpipe.cli_server import add_server_command, flow_settings, use_local_server
from nnpipe.cli_services import add_service_commands
from nnpipe.cli_sweep import add_sweep_command
from nnpipe.quiet import quiet_loggers, quiet_services

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
FLOW_COMMANDS = {"prepare", "train", "recall", "pipeline", "sweep", "serve", "demo"}
TRACKING_COMMANDS = FLOW_COMMANDS - {"serve"}  # serve's flow runs happen in other processes


ENV_HELP = (
    "environment: PREFECT_API_URL (Prefect server; default a local one reused by later "
    "commands, see `nnpipe server --help`), "
    "MLFLOW_TRACKING_URI (MLflow store; default sqlite:///mlflow.db in the current "
    "directory, artifacts in ./mlartifacts)"
)


class UsageError(ValueError):
    """Bad command-line input found after argument parsing (exit code 2)."""


# -- shared option groups --------------------------------------------------------------


def _add_config_options(p: argparse.ArgumentParser, *, workdir: bool = True) -> None:
    p.add_argument("--config", metavar="YAML", help="YAML file of flow parameters")
    if workdir:
        p.add_argument(
            "--workdir",
            metavar="DIR",
            help="where datasets, models and recall results go (default: nnpipe-work)",
        )
    p.add_argument(
        "--dask-address",
        metavar="tcp://HOST:PORT",
        help="run scaler fit, data loading and recall on this Dask scheduler's workers "
        "(default: a local Dask cluster for the run)",
    )
    p.add_argument(
        "--print-config",
        action="store_true",
        help="print the resolved parameters as YAML and exit",
    )
    p.add_argument("--json", action="store_true", help="print the flow's result as JSON")
    p.add_argument(
        "--service-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="fail when the MLflow, Prefect or Dask service does not answer in this time",
    )


def _add_overwrite(p: argparse.ArgumentParser) -> None:
    help_ = "rewrite the synthetic datasets (data made with other parameters is refused)"
    p.add_argument("--overwrite", action="store_true", help=help_)


def _workers(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: allowed a whole number of workers >= 1")
    return int(text)


def _add_restart(p: argparse.ArgumentParser) -> None:
    help_ = "start training over (default: continue from the checkpoints of the same run)"
    p.add_argument("--restart", action="store_true", help=help_)


def _check_address(address: str | None) -> None:
    if address is not None and "://" not in address:
        raise UsageError(
            f"--dask-address {address!r} must be a scheduler URL like tcp://127.0.0.1:8786"
        )


def _load(args: argparse.Namespace, kind: str, **overrides: Any):
    from flows.config import load_config

    _check_address(getattr(args, "dask_address", None))
    common = {"workdir": getattr(args, "workdir", None), "dask_address": args.dask_address}
    return load_config(args.config, kind, **common, **overrides)


def _emit(args: argparse.Namespace, result: dict[str, Any], text: str) -> None:
    if args.json:
        print(json.dumps(result, indent=2, default=str), file=args.json_stdout)
    else:
        print(text)


# -- make-data -------------------------------------------------------------------------


def _cmd_make_data(args: argparse.Namespace) -> int:
    from flows.datasets import write_dataset

    info = write_dataset(
        args.kind,
        args.output,
        n_rows=args.rows,
        n_features=args.features,
        rows_per_partition=args.rows_per_partition,
        n_neurons=args.neurons,
        n_patterns=args.patterns,
        flip_fraction=args.flip_fraction,
        seed=args.seed,
        overwrite=args.overwrite,
    )
    print(f"wrote {args.kind} dataset to {info['path']}: " + _kv(info, skip=("path",)))
    return EXIT_OK


# -- flows -----------------------------------------------------------------------------


def _cmd_prepare(args: argparse.Namespace) -> int:
    from flows.prepare_data import check_data, prepare_data
    from flows.report import prepare_report

    config = _load(args, "prepare_data", overwrite=args.overwrite or None)
    return _run_flow(args, config, prepare_data, prepare_report, check_data)


def _cmd_train(args: argparse.Namespace) -> int:
    from flows.report import train_report
    from flows.train_bp import check_inputs, train_bp

    config = _load(
        args,
        "train_bp",
        dataset=args.dataset,
        task=args.task,
        target=args.target,
        max_epochs=args.epochs,
        random_state=args.seed,
        distributed=None if args.workers is None else {"workers": args.workers},
        nan_policy=args.nan_policy,
        restart=args.restart or None,
    )
    return _run_flow(args, config, train_bp, train_report, check_inputs)


def _cmd_recall(args: argparse.Namespace) -> int:
    from flows.recall_hopfield import check_inputs, recall_hopfield
    from flows.report import recall_report

    config = _load(
        args, "recall_hopfield", dataset=args.dataset, output=args.output, rule=args.rule
    )
    return _run_flow(args, config, recall_hopfield, recall_report, check_inputs)


def _cmd_pipeline(args: argparse.Namespace) -> int:
    from flows.pipeline import pipeline
    from flows.prepare_data import check_data
    from flows.report import pipeline_report

    overrides: dict[str, Any] = {}
    if args.epochs is not None:
        overrides["train"] = {"max_epochs": args.epochs}
    if args.overwrite:
        overrides["data"] = {"overwrite": True}
    if args.restart:
        overrides["train"] = {**overrides.get("train", {}), "restart": True}
    config = _load(args, "pipeline", **overrides)
    return _run_flow(args, config, pipeline, pipeline_report, lambda c: check_data(c.data))


def _run_flow(
    args: argparse.Namespace,
    config: Any,
    flow: Callable[..., dict[str, Any]],
    report: Callable[[dict[str, Any]], str],
    check: Callable[[Any], None] | None = None,
) -> int:
    """Print the resolved config (--print-config), or check inputs, run the flow, report."""
    if args.print_config:
        from flows.config import dump_config

        print(dump_config(config), end="")
        return EXIT_OK
    from flows.services import check_services, request_timeouts

    request_timeouts(args.service_timeout)
    check_services(getattr(config, "dask_address", None), args.service_timeout)
    if check is not None:
        check(config)  # bad input fails here, before Prefect starts
    result = flow(config=config)
    _emit(args, result, report(result))
    return EXIT_OK


# -- serve, predict, demo --------------------------------------------------------------


def _cmd_serve(args: argparse.Namespace) -> int:
    from flows.schedules import build_deployments, load_schedules, serve_deployments

    _check_address(args.dask_address)
    schedules = load_schedules(args.schedules)
    deployments = build_deployments(
        schedules, config_path=args.config, dask_address=args.dask_address, workdir=args.workdir
    )
    for spec in schedules:
        paused = " (paused)" if spec.paused else ""
        print(f"deployment {spec.flow}/{spec.name}: cron {spec.cron!r} {spec.timezone}{paused}")
    if args.list:
        return EXIT_OK
    from flows.schedules import api_url

    url = api_url()
    if url and not args.run_once:
        first = schedules[0]
        print(
            f"serving {len(deployments)} deployments on {url} (Ctrl-C stops and pauses them)\n"
            f"  run one now: prefect deployment run '{first.flow}/{first.name}'\n"
            f"  watch runs in the Prefect UI: {url.removesuffix('/api')}/runs",
            flush=True,
        )
    serve_deployments(
        deployments, run_once=args.run_once, limit=args.limit, require_server=not args.run_once
    )
    return EXIT_OK


def _cmd_predict(args: argparse.Namespace) -> int:
    from flows.predict import predict_file, predict_report

    print(predict_report(predict_file(args.model, args.input, args.output, column=args.column)))
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    from flows.demo import run_demo

    _check_address(args.dask_address)
    print(run_demo(Path(args.workdir), args.dask_address, args.seed, args.quick, args.overwrite))
    return EXIT_OK


def _kv(info: dict[str, Any], skip: tuple[str, ...] = ()) -> str:
    return ", ".join(f"{k}={v}" for k, v in info.items() if k not in skip)


# -- the parser ------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The ``nnpipe`` argument parser (one sub-parser per command)."""
    parser = argparse.ArgumentParser(
        prog="nnpipe",
        description=__doc__.replace("``", "`"),  # reST quoting is noise on a terminal
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"nnpipe {nnpipe.__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of failures")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_data_and_flow_commands(sub)
    add_sweep_command(sub)
    add_service_commands(sub)
    add_server_command(sub)
    return parser


def _add_data_and_flow_commands(sub: Any) -> None:
    """make-data, prepare, train, recall, pipeline."""
    p = sub.add_parser(
        "make-data",
        help="write a synthetic partitioned Parquet dataset",
        description="Write a synthetic dataset as partitioned Parquet, partition by partition.",
    )
    p.add_argument("kind", choices=["regression", "classification", "hopfield"])
    p.add_argument("output", help="directory to write (refused if it holds data, see --overwrite)")
    p.add_argument("--rows", type=int, default=20_000, help="rows, or probes for hopfield")
    p.add_argument("--features", type=int, default=8, help="feature columns (regression)")
    p.add_argument("--rows-per-partition", type=int, default=2_000)
    p.add_argument("--neurons", type=int, default=100, help="neurons per pattern (hopfield)")
    p.add_argument("--patterns", type=int, default=6, help="stored patterns (hopfield)")
    p.add_argument("--flip-fraction", type=float, default=0.1, help="probe noise (hopfield)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace an existing dataset")
    p.set_defaults(func=_cmd_make_data)

    p = sub.add_parser(
        "prepare",
        epilog=ENV_HELP,
        help="run the prepare_data flow (datasets + out-of-core scalers)",
        description="Write the synthetic datasets when missing and fit scalers out of core.",
    )
    _add_config_options(p)
    _add_overwrite(p)
    p.set_defaults(func=_cmd_prepare)

    p = sub.add_parser(
        "train",
        epilog=ENV_HELP,
        help="run the train_bp flow (BP network trained out of core, tracked in MLflow)",
        description="Train an MLPRegressor (or with --task classification an MLPClassifier) "
        "on a partitioned Parquet dataset, out of core.",
    )
    _add_config_options(p)
    p.add_argument("--dataset", metavar="DIR", help="partitioned Parquet directory")
    p.add_argument(
        "--task",
        choices=["regression", "classification"],
        help="regression (default): numeric target; classification: a label column "
        "(int, str or bool), classes found in the training rows",
    )
    p.add_argument("--target", help="target column, or the label column (default: y)")
    p.add_argument("--epochs", type=int, help="maximum epochs")
    p.add_argument("--seed", type=int, help="random_state")
    help_ = "train across N Dask workers (local, or --dask-address's); batch size per worker"
    p.add_argument("--workers", type=_workers, metavar="N", help=help_)
    p.add_argument("--nan-policy", choices=["raise", "drop"], help="rows with NaN/inf/null")
    _add_restart(p)
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser(
        "recall",
        epilog=ENV_HELP,
        help="run the recall_hopfield flow (probe partitions recalled on Dask workers)",
        description="Store the dataset's patterns in a Hopfield network and recall every "
        "probe partition; a rerun skips partitions already done.",
    )
    _add_config_options(p)
    p.add_argument("--dataset", metavar="DIR", help="Hopfield dataset (patterns + probes)")
    p.add_argument("--output", metavar="DIR", help="result directory (one file per partition)")
    p.add_argument("--rule", choices=["hebbian", "storkey", "pseudoinverse"])
    p.set_defaults(func=_cmd_recall)

    p = sub.add_parser(
        "pipeline",
        epilog=ENV_HELP,
        help="run prepare_data, train_bp and recall_hopfield in order",
        description="The whole pipeline: data, scalers, BP training, Hopfield recall.",
    )
    _add_config_options(p)
    p.add_argument("--epochs", type=int, help="maximum training epochs")
    _add_overwrite(p)
    _add_restart(p)
    p.set_defaults(func=_cmd_pipeline)


def _start_tracking(words: list[str]) -> None:
    """In the command's own process, first thing: MLflow's import starts in a helper.

    The command is the first word that is not an option (the top-level options
    take no value). Should argparse then refuse the line (or print a command's
    help), the helper finds the command gone once its import is done, and exits.
    """
    lifecycle.quiet_telemetry()
    command = next((word for word in words if not word.startswith("-")), None)
    if command in TRACKING_COMMANDS:
        from nnpipe.tracking import _remote

        _remote.start()  # MLflow's import, in a helper, while this process starts


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    if argv is None:  # the command's own process (not a call from Python)
        _start_tracking(sys.argv[1:])
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or bad usage (2)
        return int(exc.code or 0)
    quiet_services()
    from flows.progress import Reporter, use_reporter

    if args.command in FLOW_COMMANDS:
        if argv is None:
            lifecycle.start_reaper()
            lifecycle.handle_sigterm()
            try:
                use_local_server(args.command)  # before Prefect reads its settings
            except BaseException as exc:
                return lifecycle.report(f"nnpipe {args.command}", exc, args.debug)
        import prefect  # noqa: F401  (its logging set-up first, then ours on top)

        quiet_loggers(args.debug)

    # With --json, stdout carries the JSON document only: whatever libraries print
    # on the way (MLflow's "View run ..." lines for a tracking server) goes to stderr.
    args.json_stdout = sys.stdout
    divert = getattr(args, "json", False)
    try:
        with (
            use_reporter(Reporter()),
            contextlib.redirect_stdout(sys.stderr) if divert else contextlib.nullcontext(),
            flow_settings(),
        ):
            return args.func(args)
    except BaseException as exc:  # also Ctrl-C, SIGTERM (Prefect's TerminationSignal)
        return lifecycle.report(f"nnpipe {args.command}", exc, args.debug)
    finally:
        if argv is None:  # the command's own process, about to exit
            lifecycle.skip_collection_at_exit()


if __name__ == "__main__":
    sys.exit(main())
