"""Choosing the number of BLAS threads for training, on purpose.

Measured on a 2-vCPU machine: with small layers (64-256-256-1, batch 256) one
OpenBLAS thread trains about 10% faster than two on an idle machine, and two
threads are about 10x slower when another process keeps a core busy (the BLAS
threads wait on each other). Large products (2048 x 2048) run about twice as fast
on two threads. So: one thread unless a step's largest matrix product is big, and
then no more threads than there are idle cores. ``n_threads`` overrides it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from threadpoolctl import ThreadpoolController

# Multiply-adds of one layer's forward product (batch x fan_in x fan_out) above which
# more threads pay off; 64-256-256 at batch 256 is 1.7e7, 512-1024-1024 at 1024 is 1e9.
MULTITHREAD_MIN_MACS = 1 << 27

_controller: ThreadpoolController | None = None


def _get_controller() -> ThreadpoolController:
    global _controller
    if _controller is None:
        _controller = ThreadpoolController()
    return _controller


def current_blas_threads() -> int:
    """Largest thread count among the loaded BLAS libraries (1 when none is found)."""
    counts = [lib["num_threads"] for lib in _get_controller().select(user_api="blas").info()]
    return max(counts, default=1)


def usable_cores() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def other_runnable_tasks() -> int:
    """Threads of other processes that want a CPU right now (Linux), else the 1-min load."""
    try:
        with open("/proc/loadavg") as fh:
            running = int(fh.read().split()[3].split("/")[0])
        # Our own runnable threads (this one, BLAS workers still spinning) are not "others".
        own = 0
        for stat in Path("/proc/self/task").glob("*/stat"):
            try:
                if stat.read_text().rsplit(")", 1)[1].split()[0] == "R":
                    own += 1
            except (OSError, IndexError):
                continue
        return max(0, running - max(own, 1))
    except (OSError, ValueError, IndexError):
        try:
            return int(os.getloadavg()[0])
        except (OSError, AttributeError):
            return 0


def choose_n_threads(layer_sizes: Sequence[int], batch_size: int) -> int:
    """Threads for a network with ``layer_sizes`` (inputs ... outputs) at ``batch_size``."""
    macs = max(
        (batch_size * a * b for a, b in zip(layer_sizes[:-1], layer_sizes[1:], strict=False)),
        default=0,
    )
    if macs < MULTITHREAD_MIN_MACS:
        return 1
    idle = usable_cores() - other_runnable_tasks()
    # Never more than the BLAS is currently allowed: respects a limit set by the user.
    return max(1, min(idle, current_blas_threads()))


@contextmanager
def blas_threads(n_threads: int) -> Iterator[None]:
    """Run the block with ``n_threads`` BLAS threads, restoring the previous setting after."""
    with _get_controller().limit(limits=int(n_threads), user_api="blas"):
        yield
