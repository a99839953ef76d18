"""The Dask cluster a flow run uses: an existing scheduler, or a local one for the run."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from distributed import Client, LocalCluster

# Two single-threaded workers: the machine this runs on by default has two cores, and
# NumPy inside each task should not fight a second task for them. Local workers are
# threads of this process: starting worker processes costs several seconds per run
# on a busy 2-core machine, and the tasks (Parquet reads, NumPy) release the GIL.
LOCAL_WORKERS = 2


@contextlib.contextmanager
def dask_client(
    address: str | None = None, n_workers: int = LOCAL_WORKERS, processes: bool = False
) -> Iterator[Client]:
    """A ``distributed.Client`` on ``address`` (tcp://host:port) or on a temporary local cluster.

    ``processes``: local workers as processes (for training, whose minibatch steps
    spend much of their time in Python, where threads would take turns).
    """
    if address:
        try:
            client = Client(address, timeout="30s")
        except OSError as exc:
            raise ConnectionError(
                f"cannot reach the Dask scheduler at {address}: {exc}; is `dask scheduler` "
                "running there?"
            ) from exc
        with client:
            yield client
        return
    # Worker start/stop chatter at INFO would bury the report.
    logging.getLogger("distributed").setLevel(
        max(logging.WARNING, logging.getLogger("distributed").level)
    )
    with (
        LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=processes,
            dashboard_address=":0",
            silence_logs=logging.WARNING,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def describe(client: Client) -> dict[str, object]:
    """Scheduler address and worker count, for run parameters."""
    info = client.scheduler_info()
    return {"scheduler": client.scheduler.address, "n_workers": len(info.get("workers", {}))}
