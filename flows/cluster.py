"""The Dask cluster a flow run uses: an existing scheduler, or a local one for the run."""

from __future__ import annotations

import contextlib
import importlib.util
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

import dask

from flows import progress
from nnpipe.data.compute import local_cluster_config

if TYPE_CHECKING:  # imported when a client is made: about 1 s a command without one saves
    from distributed import Client

# Two single-threaded workers: the machine this runs on by default has two cores, and
# NumPy inside each task should not fight a second task for them. Local workers are
# threads of this process: starting worker processes costs several seconds per run
# on a busy 2-core machine, and the tasks (Parquet reads, NumPy) release the GIL.
LOCAL_WORKERS = 2


def scheduler_address(address: str | None = None) -> tuple[str | None, str]:
    """The scheduler to use and where that choice came from.

    ``address`` (``--dask-address`` / the config) wins; otherwise Dask's own setting
    ``scheduler-address``, which ``DASK_SCHEDULER_ADDRESS`` or a Dask YAML file sets,
    as ``Client()`` itself would read it. None: a local cluster for the run.
    """
    if address:
        return address, "--dask-address"
    configured = dask.config.get("scheduler-address", None)
    return (configured or None), "DASK_SCHEDULER_ADDRESS"


def dashboard_enabled() -> bool:
    """Whether a local cluster can draw its dashboard (bokeh: the 'dashboard' extra)."""
    return importlib.util.find_spec("bokeh") is not None


@contextlib.contextmanager
def dask_client(
    address: str | None = None, n_workers: int = LOCAL_WORKERS, processes: bool = False
) -> Iterator[Client]:
    """A ``distributed.Client`` on ``address`` (tcp://host:port) or on a temporary local cluster.

    Without ``address``, ``DASK_SCHEDULER_ADDRESS`` is honoured as Dask honours it.
    ``processes``: local workers as processes (for training, whose minibatch steps
    spend much of their time in Python, where threads would take turns).
    """
    from distributed import Client, LocalCluster

    address, source = scheduler_address(address)
    if address:
        try:
            client = Client(address, timeout="30s")
        except OSError as exc:
            raise ConnectionError(
                f"cannot reach the Dask scheduler at {address} (from {source}): {exc}; is "
                "`dask scheduler` running there?"
            ) from exc
        with client:
            yield client
        return
    # Worker start/stop chatter at INFO would bury the report.
    logging.getLogger("distributed").setLevel(
        max(logging.WARNING, logging.getLogger("distributed").level)
    )
    dashboard = dashboard_enabled()
    with (
        # The local dashboard listens on loopback; Dask would name the host's address.
        local_cluster_config(**{"distributed.dashboard.link": "http://127.0.0.1:{port}/status"}),
        LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=processes,
            # On loopback only, and only when bokeh can draw it (about 2 s to import).
            dashboard_address="127.0.0.1:0" if dashboard else None,
            silence_logs=logging.WARNING,
        ) as cluster,
        Client(cluster) as client,
    ):
        if dashboard:
            progress.note(f"Dask dashboard: {client.dashboard_link}")
        yield client


@contextlib.contextmanager
def client_if_needed(
    address: str | None, needs_workers: bool, **options: object
) -> Iterator[Client | None]:
    """A Dask client when there is a scheduler to use or work needing workers; else None.

    With no scheduler named (``--dask-address``, ``DASK_SCHEDULER_ADDRESS``) and work
    that runs in this process anyway (training in one process reads partitions in
    threads of the driver), None: a local cluster would only add its start (about
    1-2 s, and bokeh's import for its dashboard) to the command.
    """
    if needs_workers or scheduler_address(address)[0]:
        with dask_client(address, **options) as client:  # type: ignore[arg-type]
            yield client
    else:
        yield None


def describe(client: Client | None) -> dict[str, object]:
    """Scheduler address, worker count and dashboard link (None without one), for run parameters."""
    if client is None:
        return {"scheduler": "threads of this process", "n_workers": 0, "dashboard": None}
    info = client.scheduler_info()
    dashboard = info.get("services", {}).get("dashboard")
    return {
        "scheduler": client.scheduler.address,
        "n_workers": len(info.get("workers", {})),
        "dashboard": client.dashboard_link if dashboard else None,
    }
