"""How a distributed run is laid out: partitions dealt to workers, and H.

Plain Python, no Dask: the driver decides these before the first round.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nnpipe.core.validation import check_positive

from .shares import Share

# ``local_steps="auto"`` (the default) sizes H so a round computes for about
# ROUND_SECONDS (a step estimated from the model's size: a fixed cost plus its
# flops at a single core's rate), which keeps the scheduler round trip of each
# round (10-100 ms) a small share, yet averages at least MIN_ROUNDS times an
# epoch. Chosen by measurement: README "Training on several Dask workers".
ROUND_SECONDS = 0.5
STEP_SECONDS = 2e-4
FLOPS_PER_SECOND = 3e10
MIN_ROUNDS = 4


def auto_local_steps(layers: list[int], batch_size: int, rows_per_worker: int) -> int:
    """H for a round of about ROUND_SECONDS, with at least MIN_ROUNDS rounds an epoch.

    ``layers`` are the network's widths, inputs to outputs.
    """
    params = sum((a + 1) * b for a, b in zip(layers[:-1], layers[1:], strict=True))
    step = STEP_SECONDS + 6 * batch_size * params / FLOPS_PER_SECOND
    batches = math.ceil(rows_per_worker / batch_size)
    return max(1, min(math.ceil(ROUND_SECONDS / step), math.ceil(batches / MIN_ROUNDS)))


def layer_widths(model: Any, dataset: Any, classes: Any) -> list[int]:
    """The widths of ``model``'s layers on ``dataset``: features, hidden, outputs."""
    hidden = model.hidden_layer_sizes
    hidden = [hidden] if isinstance(hidden, (int, np.integer)) else list(hidden)
    outputs = dataset.n_targets if classes is None else max(len(classes), 1)
    return [dataset.n_features, *hidden, outputs]


def balance_partitions(row_counts: list[int], n_workers: int, source: str = "") -> list[list[int]]:
    """Partition indices for each of ``n_workers``, balanced by rows (each list sorted).

    Largest partition first onto the worker with the fewest rows so far. Refused
    when there are fewer partitions holding rows than workers (a worker would idle).
    """
    check_positive("workers", n_workers, integer=True)
    filled = [i for i, n in enumerate(row_counts) if n > 0]
    if n_workers > len(filled):
        raise ValueError(
            f"workers={n_workers} but dataset {source!r} has {len(filled)} partitions with "
            f"training rows; each worker needs at least one: use workers <= {len(filled)} "
            "or write the dataset in more partitions"
        )
    loads, shares = [0] * n_workers, [[] for _ in range(n_workers)]
    for i in sorted(filled, key=lambda i: (-row_counts[i], i)):
        w = min(range(n_workers), key=lambda w: (loads[w], w))
        shares[w].append(i)
        loads[w] += row_counts[i]
    return [sorted(s) for s in shares]


def make_shares(placed: list[list[int]], counts: list[int], addresses: list[str]) -> list[Share]:
    """One Share per worker: its partitions, their training rows, its address."""
    return [
        Share(w, tuple(p), tuple(counts[i] for i in p), addresses[w]) for w, p in enumerate(placed)
    ]


def check_options(
    workers: Any, local_steps: Any, warmup_epochs: Any, worker_timeout: Any, epochs: Any,
    buffer_partitions: Any,
) -> None:  # fmt: skip
    """A ValueError naming the first option of a distributed run out of its range."""
    check_positive("workers", workers, integer=True)
    check_positive("buffer_partitions", buffer_partitions, integer=True)
    if not (isinstance(local_steps, str) and local_steps == "auto"):
        try:
            check_positive("local_steps", local_steps, integer=True)
        except ValueError:
            raise ValueError(
                f"local_steps={local_steps!r} is invalid; expected 'auto' or an integer > 0"
            ) from None
    check_positive("warmup_epochs", warmup_epochs, integer=True, allow_zero=True)
    check_positive("worker_timeout", worker_timeout)
    check_positive("epochs", epochs, integer=True)
