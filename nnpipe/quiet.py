"""Keep the services' own logs out of the ``nnpipe`` command's output.

The command prints its report, and a failure as one line (``--debug`` adds the
traceback); Prefect, Dask and MLflow would otherwise add their progress chatter
and their own tracebacks of the same failure.
"""

from __future__ import annotations

import logging
import os


def quiet_services() -> None:
    """Service settings for a command run (set only where the user has not set them)."""
    # Prefect's INFO chatter would drown the report; users can still raise it.
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_TO_API_BATCH_INTERVAL", "0.5")
    # A temporary Prefect server takes well over the default 20 s on a busy small machine.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")


def quiet_loggers(debug: bool) -> None:
    """Engine loggers down to warnings, their failure logs to --debug only."""
    # The command prints the failure itself (one line; --debug for the traceback), so
    # the engines' own error logs with tracebacks are kept for --debug only.
    for name in (
        "prefect.flow_runs",
        "prefect.task_runs",
        "prefect.flow_engine",
        "prefect.task_engine",
        "distributed.worker",  # "Compute Failed": the same exception reaches the command
    ):
        logging.getLogger(name).setLevel(logging.DEBUG if debug else logging.CRITICAL)
    for name in ("mlflow", "distributed", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    if not debug:
        # Prefect sets up its logging again when its temporary server starts, putting
        # the run loggers back to its default level: these settings survive that.
        for run_logger in ("PREFECT_FLOW_RUNS", "PREFECT_TASK_RUNS"):
            os.environ.setdefault(f"PREFECT_LOGGING_LOGGERS_{run_logger}_LEVEL", "CRITICAL")
