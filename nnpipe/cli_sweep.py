"""``nnpipe sweep``: the sweep_bp flow from the command line (kept beside cli.py for its size)."""

from __future__ import annotations

import argparse
from typing import Any


def _cmd_sweep(args: argparse.Namespace) -> int:
    from flows.sweep_bp import check_inputs, sweep_bp
    from flows.sweep_config import load_sweep_config
    from flows.sweep_runs import sweep_report
    from nnpipe.cli import _check_address, _run_flow

    _check_address(args.dask_address)
    config = load_sweep_config(args.config, workdir=args.workdir, dask_address=args.dask_address)
    return _run_flow(args, config, sweep_bp, sweep_report, check_inputs)


def add_sweep_command(sub: Any) -> None:
    """The ``sweep`` sub-command."""
    from nnpipe.cli import ENV_HELP, _add_config_options

    p = sub.add_parser(
        "sweep",
        epilog=ENV_HELP,
        help="run the sweep_bp flow (trials of a search space on the Dask workers)",
        description="Train a base config (`train:`) over a search space (`space:`: grid "
        "lists, or uniform / loguniform / integer / choice draws) with strategy grid, random "
        "or halving; one MLflow parent run with a child run per trial, the best model "
        "registered and moved to @champion when it beats the current one. A rerun reuses "
        "finished trials and continues unfinished ones from their checkpoints.",
    )
    _add_config_options(p)
    p.set_defaults(func=_cmd_sweep)
