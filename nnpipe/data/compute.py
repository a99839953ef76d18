"""Run one function per partition on the local Dask scheduler or a distributed Client."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any


def compute_partitions(
    fn: Callable[..., Any], indices: Iterable[int], client: Any = None, *args: Any
) -> list[Any]:
    """``[fn(i, *args) for i in indices]`` as one Dask computation (workers when ``client``)."""
    import dask
    import dask.threaded

    tasks = [dask.delayed(fn, pure=True)(i, *args) for i in indices]
    if client is not None:
        return list(client.gather(client.compute(tasks)))
    # The threaded scheduler's function itself: given any name (even "threads"), dask
    # imports distributed (0.5 s) just to look for a default client.
    return list(dask.compute(*tasks, scheduler=dask.threaded.get))


# Dask settings of the local clusters nnpipe starts, whose tasks are seconds of NumPy
# each. Measured on 2 idle single-threaded worker processes, CPU seconds per 10 s:
# the driver (scheduler, nannies) 0.58 -> 0.22, each worker 0.40 -> 0.10. On 2 cores
# that CPU is taken from the tasks. Clusters given by address keep their own settings.
LOCAL_CLUSTER_CONFIG = {
    # Dask's statistical profiler samples the stack of every running task each 10 ms
    # (the dashboard's Profile page, which stays empty for these clusters).
    "distributed.worker.profile.enabled": False,
    # Every event loop (scheduler, nanny, worker) times its own tick, every 20 ms by default.
    "distributed.admin.tick.interval": "1s",
}


def local_cluster_config(**extra: Any) -> Any:
    """A context in which a local cluster (and the workers it spawns) gets these settings."""
    import dask

    return dask.config.set({**LOCAL_CLUSTER_CONFIG, **extra})
