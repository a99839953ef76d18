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
