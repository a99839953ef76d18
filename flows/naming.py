"""MLflow run names that tell runs apart in the UI's run list."""

from __future__ import annotations

import time


def run_name(flow: str, *details: object) -> str:
    """``flow`` and what sets the run apart, then the Prefect flow-run name (or the time).

    E.g. ``train_bp regression 64x64 · witty-lynx``: the same name the run has in the
    Prefect UI, so the two can be matched; outside a flow run, the local time.
    """
    from prefect.runtime import flow_run

    suffix = flow_run.name or time.strftime("%Y-%m-%d %H:%M:%S")
    return " ".join([flow, *(str(d) for d in details if d not in (None, ""))]) + f" · {suffix}"
