"""MLflow run names that tell runs apart in the UI's run list."""

from __future__ import annotations

import time


def run_name(*details: object) -> str:
    """The Prefect flow-run name (or the local time), then what sets the run apart.

    E.g. ``witty-lynx (regression 64x64)``: the unique part first, because the UI's
    run list cuts long names short, and the same name as in the Prefect UI, so the
    two can be matched. Each flow logs to its own experiment, so the flow's name
    would only repeat the experiment's.
    """
    from prefect.runtime import flow_run

    prefix = flow_run.name or time.strftime("%Y-%m-%d %H:%M:%S")
    shown = " ".join(str(d) for d in details if d not in (None, ""))
    return f"{prefix} ({shown})" if shown else prefix
