"""Shuffled, prefetched minibatches from a partitioned dataset.

Per epoch: the partition order is a seeded permutation; partitions are read
``buffer_partitions`` at a time (a group), scaled, stacked with the rows left
over from the previous group and shuffled together; full batches are cut from
the group and the remainder carries over, so only the epoch's last batch can be
short and each row is yielded exactly once.

A background thread builds each group (reads, scaling, the shuffle gather) while
the previous one trains (with a ``distributed.Client`` the reads run on its
workers, a group's partitions at once), staying at most one group ahead. The
training thread only slices batches. On request the next epoch's first group is
read while the current epoch's last one trains.

Where the memory goes: the group training (its batches) plus the group being
built (its reads, their stacked copy, the gathered batches), so a few groups of
partitions whatever the dataset size. Each of these is a new NumPy array, and
training starts once the epoch's first group is built: reading into a reused
buffer, gathering in small pieces, keeping buffers from epoch to epoch and
letting the first group out partition by partition each changed a streamed
epoch of ``benchmarks/bench_data.py`` by less than 5%, so none is done.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from nnpipe.core.scalers import MinMaxScaler, StandardScaler
from nnpipe.core.validation import check_positive, resolve_dtype

from .split import TrainValidationSplit, check_subset

# -- one partition: read, scale, cast (on the reader thread) ------------------------------


@dataclass(frozen=True)
class _Scaling:
    """Scale and cast one partition's arrays (runs in the loader, off the training thread)."""

    x_scaler: Any
    y_scaler: Any
    dtype: np.dtype
    y_dtype: np.dtype

    def __call__(self, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not len(X):
            return X.astype(self.dtype), y.astype(self.y_dtype)
        return _apply(self.x_scaler, X, self.dtype), _apply(self.y_scaler, y, self.y_dtype)


def _apply(scaler: Any, A: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``scaler.transform(A)`` as ``dtype``, overwriting ``A`` when it can.

    ``A`` is a partition just read (the loader's own array, checked finite, often
    column-major). nnpipe's own scalers compute in float64: on a float64 ``A`` their
    ``transform`` maths (so the same bits) run in place, in ``A``'s layout, where
    they stream through memory and need no scaled copy, before the one cast; the
    group is made C-ordered when it is stacked. Anything else goes through
    ``transform``.
    """
    if scaler is None:
        return A if A.dtype == dtype else A.astype(dtype)
    if type(scaler) in (StandardScaler, MinMaxScaler):
        if A.dtype != np.float64:
            return scaler.transform(A, dtype=dtype)
        return scaler._float64_transform()(A, A).astype(dtype, copy=False)
    return np.asarray(scaler.transform(A), dtype=dtype)


def _load(
    dataset: Any,
    subset: str,
    split: TrainValidationSplit | None,
    sides: bool,
    scaling: _Scaling,
    index: int,
):
    """Read, scale and cast partition ``index``: ((X, y), (X_val, y_val) or None)."""
    # Reading straight into float32 saves a float64 copy when nothing is scaled; the
    # scalers work on the float64 values (rounding first would lose their digits).
    scaled = scaling.x_scaler is not None or scaling.y_scaler is not None
    float32 = scaling.dtype == scaling.y_dtype == np.float32
    read = np.float32 if float32 and not scaled else np.float64
    # The datasets hand out arrays of their own for each read, so scaling may overwrite them.
    if sides:
        train, val = dataset.read_partition_sides(index, split, read)
        X_val, y_val = scaling(*val)  # handed to on_validation as they are: C-ordered
        return scaling(*train), (np.ascontiguousarray(X_val), np.ascontiguousarray(y_val))
    return scaling(*dataset.read_partition(index, subset, split, read)), None


def _loader(client: Any, load: Callable) -> Callable[[list[int]], Iterator[Any]]:
    """``load`` over a group's partition indices, in order: here one at a time, or on
    the workers of ``client`` all at once (only the arrays travel back)."""
    if client is None:
        return lambda indices: map(load, indices)

    def on_workers(indices: list[int]) -> Iterator[Any]:
        futures = [client.submit(load, i, pure=False) for i in indices]
        return (f.result() for f in futures)

    return on_workers


# -- one group: stack, shuffle, cut ---------------------------------------------------------


@dataclass
class _Group:
    """One group, ready to slice: its whole batches, the epoch's short tail, validation parts."""

    X: np.ndarray  # (n, n_features), rows in batch order; n a multiple of the batch size
    y: np.ndarray  # (n,) with one target, else (n, n_targets)
    validation: list  # [(partition index, X_val, y_val)] in read order
    tail: tuple[np.ndarray, np.ndarray] | None = None  # last, short batch of the epoch


def _stack(arrays: list[np.ndarray]) -> np.ndarray:
    """``arrays`` joined along axis 0 in one new C-ordered array.

    Reads arrive column-major; in rows, the shuffle gathers whole rows and each
    batch is one contiguous slice.
    """
    first = arrays[0]
    out = np.empty((sum(len(a) for a in arrays), *first.shape[1:]), first.dtype)
    return np.concatenate(arrays, out=out)


def _cut(X: np.ndarray, y: np.ndarray, batch_size: int, rng: np.random.Generator | None):
    """((X, y) of the whole batches, in batch order), ((X, y) of the rows left over).

    With ``rng`` the rows are shuffled by one gather, here off the training thread,
    so batches are slices; without, the batches are views of ``X`` and ``y``.
    """
    n_out = len(X) // batch_size * batch_size
    if rng is None:
        return (X[:n_out], y[:n_out]), (X[n_out:].copy(), y[n_out:].copy())
    perm = rng.permutation(len(X))

    def rows(index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.take(X, index, axis=0), np.take(y, index, axis=0)

    return rows(perm[:n_out]), rows(perm[n_out:])


# -- the background thread ------------------------------------------------------------------


class _Failure:
    """An exception raised while building groups, carried to the consuming thread."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


_END = object()


class _Producer:
    """Build groups on a background thread, at most one finished group ahead of the consumer.

    The consumer takes a group and thereby lets the producer build the next one, so
    memory holds the group being trained on plus the one being built, whatever the
    dataset size. Reads run one at a time on this thread (on a loaded two-core
    machine more reader threads cost the training thread more than they save), or
    on the workers of a ``distributed.Client``. ``then`` runs once the epoch's last
    group has been built (to start reading the next epoch).
    """

    def __init__(self, groups: Iterator[_Group]) -> None:
        self._items: queue.SimpleQueue = queue.SimpleQueue()
        self._slot = threading.Semaphore(1)
        self._stop = threading.Event()
        self.then: Callable[[], None] | None = None  # set before the last group is taken
        self._thread = threading.Thread(
            target=self._run, args=(groups,), daemon=True, name="nnpipe-prefetch"
        )
        self._thread.start()

    def _run(self, groups: Iterator[_Group]) -> None:
        try:
            while True:
                self._slot.acquire()
                if self._stop.is_set():
                    return
                group = next(groups, _END)
                if group is _END:
                    if self.then is not None and not self._stop.is_set():
                        self.then()
                    self._items.put(_END)
                    return
                self._items.put(group)
        except BaseException as exc:  # re-raised on the consuming thread
            self._items.put(_Failure(exc))

    def __iter__(self) -> Iterator[_Group]:
        while True:
            item = self._items.get()
            self._slot.release()  # the producer may build the next group meanwhile
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item

    def close(self) -> None:
        """Stop building (after the group in progress) and wait for the thread."""
        self._stop.set()
        self._slot.release()
        self._thread.join()


# -- the stream -----------------------------------------------------------------------------


def _check_arguments(
    dataset: Any,
    batch_size: int,
    buffer_partitions: int,
    subset: str,
    split: TrainValidationSplit | None,
    random_state: Any,
    scalers: dict[str, Any],
) -> None:
    check_positive("batch_size", batch_size, integer=True)
    check_positive("buffer_partitions", buffer_partitions, integer=True)
    check_subset(subset, split)
    if (
        isinstance(random_state, bool)
        or not isinstance(random_state, (int, np.integer))
        or random_state < 0
    ):
        raise ValueError(f"random_state={random_state!r} is invalid; expected an int >= 0")
    widths = {"x_scaler": dataset.n_features, "y_scaler": dataset.n_targets}
    for name, scaler in scalers.items():
        if scaler is None:
            continue
        if not hasattr(scaler, "n_features_in_"):
            raise ValueError(f"{name} is not fitted; fit it first (e.g. fit_scalers)")
        if scaler.n_features_in_ != widths[name]:
            raise ValueError(
                f"{name} was fitted on {scaler.n_features_in_} columns but the dataset "
                f"has {widths[name]}"
            )


class MinibatchStream:
    """Minibatches of one dataset subset, epoch after epoch (see :func:`iter_minibatches`).

    The partitions ``dataset.read_partition`` / ``read_partition_sides`` return are
    scaled in place, so each read must give arrays of their own (both
    :class:`ParquetDataset` and :class:`ArrayDataset` do).
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int = 256,
        *,
        subset: str = "all",
        split: TrainValidationSplit | None = None,
        random_state: int = 0,
        shuffle: bool = True,
        buffer_partitions: int = 4,
        prefetch: bool = True,
        x_scaler: Any = None,
        y_scaler: Any = None,
        dtype: Any = "float32",
        y_dtype: Any = None,
        drop_last: bool = False,
        client: Any = None,
    ) -> None:
        scalers = {"x_scaler": x_scaler, "y_scaler": y_scaler}
        _check_arguments(
            dataset, batch_size, buffer_partitions, subset, split, random_state, scalers
        )
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.subset, self.split = subset, split
        self.random_state = int(random_state)
        self.shuffle = shuffle
        self.buffer_partitions = int(buffer_partitions)
        self.prefetch = prefetch
        self.x_scaler, self.y_scaler = x_scaler, y_scaler
        self.dtype = resolve_dtype(dtype)
        self.y_dtype = self.dtype if y_dtype is None else np.dtype(y_dtype)
        self.drop_last = drop_last
        self.client = client
        self._ahead: tuple[int, bool, _Producer] | None = None  # next epoch read early

    def partition_order(self, epoch: int) -> np.ndarray:
        """The partition order of ``epoch`` (a seeded permutation when shuffling)."""
        n = self.dataset.n_partitions
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.random_state, epoch, 0]).permutation(n)

    @property
    def scaling(self) -> _Scaling:
        """The transform applied to every partition (scalers, then dtype)."""
        return _Scaling(self.x_scaler, self.y_scaler, self.dtype, self.y_dtype)

    def epoch(
        self,
        epoch: int = 0,
        on_validation: Callable[[int, np.ndarray, np.ndarray], None] | None = None,
        *,
        prefetch_next: bool = False,
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (X, y) batches of one epoch; y is 1-D when there is one target.

        Reading starts at this call, not at the first ``next``.
        ``on_validation(partition_index, X_val, y_val)`` (scaled, subset 'train'
        only) receives each partition's validation rows from the read of its
        training rows, so a training pass can keep them without a second read.
        ``prefetch_next`` (with ``prefetch``): start reading epoch ``epoch + 1``'s
        training rows while this epoch's last group trains. A later
        ``epoch(epoch + 1)`` without ``on_validation`` uses what was read; anything
        else discards it. :meth:`close` drops it.
        """
        sides = on_validation is not None
        if sides and self.subset != "train":
            raise ValueError("on_validation needs subset='train'")
        source = self._take_ahead(epoch, sides)
        if source is None:
            source = self._start(epoch, sides)
        if isinstance(source, _Producer) and prefetch_next:
            source.then = partial(self._start_ahead, epoch + 1, False)
        return self._batches(source, on_validation)

    def close(self) -> None:
        """Stop and drop a next epoch read ahead by ``prefetch_next``, if any."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            ahead[2].close()

    def _take_ahead(self, epoch: int, sides: bool) -> _Producer | None:
        ahead, self._ahead = self._ahead, None
        if ahead is None:
            return None
        if ahead[:2] == (epoch, sides):
            return ahead[2]
        ahead[2].close()
        return None

    def _start_ahead(self, epoch: int, sides: bool) -> None:
        # Runs on the producer thread of the previous epoch, before it signals its end.
        self._ahead = (epoch, sides, self._start(epoch, sides))

    def _start(self, epoch: int, sides: bool) -> _Producer | Iterator[_Group]:
        load = partial(_load, self.dataset, self.subset, self.split, sides, self.scaling)
        groups = self._groups(epoch, _loader(self.client, load))
        return _Producer(groups) if self.prefetch else groups

    def _groups(self, epoch: int, loader: Callable) -> Iterator[_Group]:
        """The epoch's groups in order: read, stack with the carry, shuffle, cut."""
        order = [int(i) for i in self.partition_order(epoch)]
        rng = np.random.default_rng([self.random_state, epoch, 1]) if self.shuffle else None
        size, one_target = self.buffer_partitions, self.dataset.n_targets == 1
        carry: list[tuple[np.ndarray, np.ndarray]] = []  # rows left by the previous group
        for start in range(0, len(order), size):
            indices = order[start : start + size]
            parts, validation = carry, []
            for index, ((X, y), val) in zip(indices, loader(indices), strict=True):
                parts.append((X, y[:, 0] if one_target else y))
                if val is not None and len(val[0]):
                    validation.append((index, *val))
            X, y = _stack([X for X, _ in parts]), _stack([y for _, y in parts])
            (X, y), rest = _cut(X, y, self.batch_size, rng)
            carry = [rest]
            last = start + size >= len(order)
            tail = rest if last and len(rest[0]) and not self.drop_last else None
            yield _Group(X, y, validation, tail)

    def _batches(
        self, source: _Producer | Iterator[_Group], on_validation: Callable | None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        bs = self.batch_size
        try:
            for group in source:
                if on_validation is not None:
                    for index, X_val, y_val in group.validation:
                        on_validation(index, X_val, y_val)
                for s in range(0, len(group.X), bs):
                    yield group.X[s : s + bs], group.y[s : s + bs]
                if group.tail is not None:
                    yield group.tail
        finally:
            if isinstance(source, _Producer):
                source.close()


def iter_minibatches(
    dataset: Any,
    batch_size: int = 256,
    *,
    epoch: int = 0,
    subset: str = "all",
    split: TrainValidationSplit | None = None,
    random_state: int = 0,
    shuffle: bool = True,
    buffer_partitions: int = 4,
    prefetch: bool = True,
    x_scaler: Any = None,
    y_scaler: Any = None,
    dtype: Any = "float32",
    y_dtype: Any = None,
    drop_last: bool = False,
    client: Any = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield shuffled, scaled (X, y) minibatches of one epoch, float32 by default.

    Same ``random_state`` and ``epoch`` give the same batches. ``subset`` is
    'all', or 'train'/'validation' of ``split``. ``y_dtype`` defaults to ``dtype``
    (pass 'int64' for class labels). ``client``: a ``distributed.Client`` to read
    partitions on its workers; default a background thread in this process.
    """
    stream = MinibatchStream(
        dataset,
        batch_size,
        subset=subset,
        split=split,
        random_state=random_state,
        shuffle=shuffle,
        buffer_partitions=buffer_partitions,
        prefetch=prefetch,
        x_scaler=x_scaler,
        y_scaler=y_scaler,
        dtype=dtype,
        y_dtype=y_dtype,
        drop_last=drop_last,
        client=client,
    )
    return stream.epoch(epoch)
