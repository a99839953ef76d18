"""Shuffled, prefetched minibatches from a partitioned dataset.

Per epoch: the partition order is a seeded permutation; partitions are taken
``buffer_partitions`` at a time, scaled, pooled with the rows left over from the
previous group and shuffled together; full batches are cut from the pool and
the remainder carries over, so only the epoch's last batch can be short and each
row is yielded exactly once. The epoch's first group ramps up: each of its
partitions, as it arrives, lets a fixed share of the pool so far out as batches,
so training starts after one read instead of a whole group's (the share depends
on row counts only, so batches stay the same run after run).

A background thread builds each group (reads, scaling, the shuffle gather) while
the previous one trains (with a ``distributed.Client`` the reads run on its
workers, a group's partitions at once), staying at most one group ahead, so
memory stays at about two groups of partitions whatever the dataset size. The
training thread only slices batches. On request the next epoch's first group is
read while the current epoch's last one trains.

That thread shares the machine with training, so it touches as little new memory
as it can: each read is scaled in place and copied into a pool buffer kept from
cut to cut (and epoch to epoch); only the reads and the gathered batches are new
arrays.
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
    column-major). For nnpipe's own scalers the same float operations as their
    ``transform`` (so the same bits) run in place, in ``A``'s layout, where they
    stream through memory and need no new pages; the group builder makes the rows
    C-ordered when it pools them. Anything else goes through ``transform``.
    """
    if scaler is None:
        return A if A.dtype == dtype else A.astype(dtype)
    if np.dtype(getattr(scaler, "dtype", None) or "float64") != dtype or A.dtype != dtype:
        return np.asarray(scaler.transform(A), dtype=dtype)
    if type(scaler) is StandardScaler:
        if scaler.with_mean:
            np.subtract(A, scaler.mean_.astype(dtype), out=A)
        if scaler.with_std:
            np.divide(A, scaler.scale_.astype(dtype), out=A)
        return A
    if type(scaler) is MinMaxScaler:
        np.multiply(A, scaler.scale_.astype(dtype), out=A)
        np.add(A, scaler.min_.astype(dtype), out=A)
        return A
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
    # Reading straight into float32 saves a float64 copy; the values are the same
    # as rounding float64 later, which is what the scalers' float32 transform does.
    read = np.float32 if scaling.dtype == scaling.y_dtype == np.float32 else np.float64
    # The datasets hand out arrays of their own for each read, so scaling may overwrite them.
    if sides:
        train, val = dataset.read_partition_sides(index, split, read)
        X_val, y_val = scaling(*val)  # handed to on_validation as they are: C-ordered
        return scaling(*train), (np.ascontiguousarray(X_val), np.ascontiguousarray(y_val))
    return scaling(*dataset.read_partition(index, subset, split, read)), None


@dataclass
class _Group:
    """One shuffled group, ready to cut: full batches, the epoch's short tail, validation parts."""

    # [(X (n, n_features), y (n,) or (n, n_targets))]: rows in batch order, in pieces
    # of whole batches
    pieces: list[tuple[np.ndarray, np.ndarray]]
    validation: list  # [(partition index, X_val, y_val)] in read order
    tail: tuple[np.ndarray, np.ndarray] | None = None  # last, short batch of the epoch


# Rows of a group are gathered into pieces of about this many bytes. A whole group
# in one array (tens of MB) is mapped fresh from the OS every time, and faulting its
# pages in cost about half as much as the gather itself; pieces this size are served
# from the allocator's heap, which can hand out memory of groups already trained on
# (measured here: a fifth of the kernel time per group).
_PIECE_BYTES = 8 * 2**20


def _gather(A: np.ndarray, index: np.ndarray, rows: int) -> list[np.ndarray]:
    """``A[index]`` (rows along axis 0) in pieces of ``rows`` rows."""
    return [np.take(A, index[s : s + rows], axis=0) for s in range(0, len(index), rows)]


class _Pool:
    """Rows gathered in one C-ordered array as they arrive: the pool a cut is taken from.

    Each partition is copied in (and so made row-major) as soon as it is read. With
    ``reuse`` the same buffer serves cut after cut (grown when too small), so
    building a group touches no new pages; a cut's rows are then overwritten by
    the next cut's, so only a caller that is done with them may reuse.
    """

    def __init__(self, reuse: bool) -> None:
        self.reuse = reuse
        self.n = 0  # rows added since the last take
        self._buffer: np.ndarray | None = None

    def add(self, parts: list[np.ndarray], more: int = 0) -> None:
        """Append the rows of ``parts``; a new buffer gets room for ``more`` rows after them."""
        first = parts[0]
        end = self.n + sum(len(p) for p in parts)
        buffer = self._buffer
        if (
            buffer is None
            or len(buffer) < end
            or buffer.shape[1:] != first.shape[1:]
            or buffer.dtype != first.dtype
        ):
            buffer = np.empty((end + more, *first.shape[1:]), dtype=first.dtype)
            if self.n:
                buffer[: self.n] = self._buffer[: self.n]
            self._buffer = buffer
        np.concatenate(parts, out=buffer[self.n : end])
        self.n = end

    def take(self) -> np.ndarray:
        """The rows added since the last take; the pool is empty again."""
        rows = self._buffer[: self.n]
        self.n = 0
        if not self.reuse:
            self._buffer = None
        return rows


class _Failure:
    """An exception raised while building groups, carried to the consuming thread."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


_END = object()


def _inline_loader(load: Callable) -> Callable[[list[int]], Iterator[Any]]:
    return lambda indices: (load(i) for i in indices)


def _client_loader(client: Any, load: Callable) -> Callable[[list[int]], Iterator[Any]]:
    def loader(indices: list[int]) -> Iterator[Any]:
        # Partitions are read on the workers, all of a group at once; only arrays travel back.
        futures = [client.submit(load, i, pure=False) for i in indices]
        return (f.result() for f in futures)

    return loader


class _Producer:
    """Build groups on a background thread, at most one finished group ahead of the consumer.

    The consumer takes a group and thereby lets the producer build the next one, so
    memory holds the group being trained on plus the one being read, whatever the
    dataset size. Reads run one at a time on this thread (on a loaded two-core
    machine more reader threads cost the training thread more than they save), or
    on the workers of a ``distributed.Client``. ``then`` runs once the epoch's last
    group has been taken (to start reading the next epoch).
    """

    def __init__(
        self,
        groups: Callable[[Callable], Iterator[_Group]],
        load: Callable,
        client: Any,
    ) -> None:
        self._items: queue.SimpleQueue = queue.SimpleQueue()
        self._slot = threading.Semaphore(1)
        self._stop = threading.Event()
        self.then: Callable[[], None] | None = None  # set before the last group is taken
        self._thread = threading.Thread(
            target=self._run,
            args=(groups, load, client),
            daemon=True,
            name="nnpipe-prefetch",
        )
        self._thread.start()

    def _run(self, groups: Callable, load: Callable, client: Any) -> None:
        try:
            loader = _inline_loader(load) if client is None else _client_loader(client, load)
            it = groups(loader)
            while True:
                self._slot.acquire()
                if self._stop.is_set():
                    return
                group = next(it, _END)
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
        check_positive("batch_size", batch_size, integer=True)
        check_positive("buffer_partitions", buffer_partitions, integer=True)
        check_subset(subset, split)
        if isinstance(random_state, bool) or not isinstance(random_state, (int, np.integer)):
            raise ValueError(f"random_state={random_state!r} is invalid; expected an int >= 0")
        if random_state < 0:
            raise ValueError(f"random_state={random_state!r} is invalid; expected an int >= 0")
        for name, scaler, width in (
            ("x_scaler", x_scaler, dataset.n_features),
            ("y_scaler", y_scaler, dataset.n_targets),
        ):
            if scaler is None:
                continue
            if not hasattr(scaler, "n_features_in_"):
                raise ValueError(f"{name} is not fitted; fit it first (e.g. fit_scalers)")
            if scaler.n_features_in_ != width:
                raise ValueError(
                    f"{name} was fitted on {scaler.n_features_in_} columns but the dataset "
                    f"has {width}"
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
        self._spare_pools: list[tuple[_Pool, _Pool]] = []  # left by the last epoch, reused

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
        prefetch_next: bool | None = None,
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (X, y) batches of one epoch; y is 1-D when there is one target.

        Reading starts at this call, not at the first ``next``.
        ``on_validation(partition_index, X_val, y_val)`` (scaled, subset 'train'
        only) receives each partition's validation rows from the read of its
        training rows, so a training pass can keep them without a second read.
        ``prefetch_next`` (with ``prefetch``): start reading epoch ``epoch + 1``
        while this epoch's last group trains; True if that epoch will be asked for
        with ``on_validation``. A later ``epoch(epoch + 1)`` with the same setting
        uses what was read; anything else discards it. :meth:`close` drops it.
        """
        sides = on_validation is not None
        if sides and self.subset != "train":
            raise ValueError("on_validation needs subset='train'")
        source = self._take_ahead(epoch, sides)
        if source is None:
            source = self._start(epoch, sides)
        if isinstance(source, _Producer) and prefetch_next is not None:
            source.then = partial(self._start_ahead, epoch + 1, bool(prefetch_next))
        return self._batches(source, on_validation)

    def close(self) -> None:
        """Stop and drop a next epoch read ahead by ``prefetch_next``, if any."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            ahead[2].close()
        self._spare_pools.clear()

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
        groups = partial(self._groups, epoch)
        if self.prefetch:
            return _Producer(groups, load, self.client)
        return groups(_client_loader(self.client, load) if self.client else _inline_loader(load))

    def _groups(self, epoch: int, loader: Callable) -> Iterator[_Group]:
        """The epoch's groups in order: read, pool with the carry, shuffle, cut."""
        order = [int(i) for i in self.partition_order(epoch)]
        rng = np.random.default_rng([self.random_state, epoch, 1])
        bs = self.batch_size
        row_bytes = self.dtype.itemsize * max(1, self.dataset.n_features)
        piece = bs * max(1, _PIECE_BYTES // (bs * row_bytes))  # rows per gathered piece
        # Shuffled, the pool is only read by the gather, so one buffer serves every
        # cut, and the next epoch takes it over; unshuffled, batches are slices of it,
        # so each cut gets its own.
        pools = self._take_pools()
        try:
            yield from self._cut(order, rng, loader, pools, piece)
        finally:
            if self.shuffle:
                self._spare_pools.append(pools)

    def _take_pools(self) -> tuple[_Pool, _Pool]:
        # Epochs read ahead run on their own threads: each takes the spare pools or
        # makes new ones, so two producers never share one.
        try:
            return self._spare_pools.pop() if self.shuffle else (_Pool(False), _Pool(False))
        except IndexError:
            return _Pool(True), _Pool(True)

    def _cut(
        self,
        order: list[int],
        rng: np.random.Generator,
        loader: Callable,
        pools: tuple[_Pool, _Pool],
        piece: int,
    ) -> Iterator[_Group]:
        """Read, pool with the carry, shuffle, cut (see :meth:`_groups`)."""
        bs, size = self.batch_size, self.buffer_partitions
        one_target = self.dataset.n_targets == 1
        pool_X, pool_y = pools
        carry: tuple[np.ndarray, np.ndarray] | None = None
        for start in range(0, len(order), size):
            last_group = start + size >= len(order)
            indices = order[start : start + size]
            # The epoch's first group ramps up: training starts from the first
            # partition while the others load, each partition letting out a fixed
            # share of rows, in whole batches, from the pool so far: 1/buffer_partitions
            # of its own rows for the first (those batches hold one partition only),
            # half for the next ones (the pool is mixed by then, and training that
            # many rows takes about as long as reading the next partition). The share
            # depends on row counts only, never on timing, so the batches stay
            # deterministic. Without shuffling every partition can be cut at once:
            # the batches are the same as for the whole group.
            ramp = start == 0 or not self.shuffle
            validation = []
            pending = [carry] if carry is not None and len(carry[0]) else []
            carry = None
            for k, (index, ((X, y), val)) in enumerate(zip(indices, loader(indices), strict=True)):
                if val is not None and len(val[0]):
                    validation.append((index, *val))
                if len(X):
                    pending.append((X, y[:, 0] if one_target else y))
                if pending:
                    # Pooled at once, so the next read may reuse this one's memory. A new
                    # pool gets room for the rest of the group (partitions of about this
                    # one's size) and the next group's carry, so it is allocated once.
                    more = (len(indices) - k - 1) * len(X) + bs
                    pool_X.add([p[0] for p in pending], more)
                    pool_y.add([p[1] for p in pending], more)
                    pending = []
                final = k == len(indices) - 1
                if final or not self.shuffle:
                    n_out = None  # every whole batch
                elif ramp:
                    n_out = bs * (len(X) // ((size if k == 0 else 2) * bs))
                    if n_out == 0:
                        continue
                else:
                    continue
                if not pool_X.n:
                    if validation:
                        yield _Group([], validation)
                        validation = []
                    continue
                X, y = pool_X.take(), pool_y.take()  # (pool, n_features), (pool, ...)
                if n_out is None:
                    n_out = (len(X) // bs) * bs
                if self.shuffle:
                    # One gather into batch order, here off the training thread, so
                    # batches are slices; the pool is then free for the next cut.
                    perm = rng.permutation(len(X))
                    carry = (np.take(X, perm[n_out:], axis=0), np.take(y, perm[n_out:], axis=0))
                    out = perm[:n_out]
                    pieces = list(zip(_gather(X, out, piece), _gather(y, out, piece), strict=True))
                else:
                    carry = (X[n_out:].copy(), y[n_out:].copy())
                    pieces = [(X[:n_out], y[:n_out])]
                tail = None
                if final and last_group and len(carry[0]) and not self.drop_last:
                    tail = carry
                elif not final:
                    if len(carry[0]):
                        pending.append(carry)
                    carry = None
                yield _Group(pieces, validation, tail)
                validation = []

    def _batches(
        self, source: _Producer | Iterator[_Group], on_validation: Callable | None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        bs = self.batch_size
        try:
            for group in source:
                if on_validation is not None:
                    for index, X_val, y_val in group.validation:
                        on_validation(index, X_val, y_val)
                for X, y in group.pieces:  # each a whole number of batches
                    for s in range(0, len(X), bs):
                        yield X[s : s + bs], y[s : s + bs]
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
