"""A dataset's epochs as minibatch iterables for the Trainer: training side and validation side.

The validation rows are read once: the first epoch collects them from the reads
of its training rows and keeps them while they fit in a byte budget; later
epochs reuse them. When they do not fit, each epoch streams them again.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from nnpipe.data.split import TrainValidationSplit
from nnpipe.data.stream import MinibatchStream


class _ValidationRows:
    """Validation rows of one epoch's read, kept while they fit in ``max_bytes``."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes, self.parts, self.nbytes, self.overflow = max_bytes, [], 0, False

    def add(self, index: int, X: np.ndarray, y: np.ndarray) -> None:
        if self.overflow:
            return
        self.nbytes += X.nbytes + y.nbytes
        if self.nbytes > self.max_bytes:
            self.overflow, self.parts = True, []
        else:
            self.parts.append((index, X.copy(), y.copy()))

    def in_partition_order(self) -> list[tuple[np.ndarray, np.ndarray]]:
        # Partitions arrive in the epoch's shuffled order; summing in a fixed order
        # keeps the validation loss independent of the epoch it was collected in.
        return [(X, y) for _, X, y in sorted(self.parts, key=lambda p: p[0])]


class EpochStreams:
    """Training batches per epoch and validation batches of ``dataset``, read by MinibatchStream.

    ``split`` None: no validation side (:meth:`validation_batches` is None).
    ``validation_cache_bytes`` 0: validation rows are streamed every epoch.
    ``stream_options`` (``x_scaler``, ``y_dtype``, ``buffer_partitions``,
    ``prefetch``, ``client``, ...) go to both :class:`MinibatchStream`.
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int,
        *,
        split: TrainValidationSplit | None = None,
        validation_batch_size: int = 8192,
        validation_cache_bytes: int = 256 * 2**20,
        random_state: int = 0,
        shuffle: bool = True,
        **stream_options: Any,
    ) -> None:
        self.source = getattr(dataset, "path", "")  # names the dataset in errors
        subset = "train" if split is not None else "all"
        self.train = MinibatchStream(
            dataset,
            batch_size,
            subset=subset,
            split=split,
            random_state=random_state,
            shuffle=shuffle,
            **stream_options,
        )
        self.validation = None
        if split is not None:
            self.validation = MinibatchStream(
                dataset,
                validation_batch_size,
                subset="validation",
                split=split,
                shuffle=False,
                **stream_options,
            )
        self.validation_batch_size = validation_batch_size
        self.cache_bytes = validation_cache_bytes
        self._cached: list[tuple[np.ndarray, np.ndarray]] | None = None
        self._collector: _ValidationRows | None = None
        self._tried_cache = False  # True once an epoch collected the rows (kept or too big)

    def training_batches(self, epoch: int, another_follows: bool) -> Iterator[tuple[Any, Any]]:
        """Epoch ``epoch``'s training batches; ``another_follows``: read the next one ahead."""
        self._collector = None
        if self.validation is not None and self.cache_bytes > 0 and not self._tried_cache:
            self._tried_cache = True
            self._collector = _ValidationRows(self.cache_bytes)
        collect = None if self._collector is None else self._collector.add
        # Only the first epoch of a run collects validation rows (kept, or found too
        # big to keep and streamed from then on), so the epoch read ahead while this
        # one trains never needs them: the stream reads its training rows only.
        return self.train.epoch(epoch, collect, prefetch_next=another_follows)

    def validation_batches(self) -> Iterable[tuple[np.ndarray, np.ndarray]] | None:
        """Validation batches after an epoch's training: kept rows if they fit, else a stream."""
        if self.validation is None:
            return None
        collector, self._collector = self._collector, None
        if collector is not None and not collector.overflow:
            self._cached = collector.in_partition_order()
        if self._cached is None:
            return self.validation.epoch(0)
        return self._slices(self._cached)

    def _slices(self, parts: list[tuple[np.ndarray, np.ndarray]]) -> Iterator[tuple[Any, Any]]:
        size = self.validation_batch_size
        for X, y in parts:
            y1 = y[:, 0] if y.shape[1] == 1 else y  # as the stream yields it
            for s in range(0, len(X), size):
                yield X[s : s + size], y1[s : s + size]

    def close(self) -> None:
        """Drop a next epoch read ahead but not used (training stopped early or failed)."""
        self.train.close()
