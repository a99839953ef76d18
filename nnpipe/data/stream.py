"""Shuffled, prefetched minibatches from a partitioned dataset.

Per epoch: the partition order is a seeded permutation; partitions are taken
``buffer_partitions`` at a time, scaled, pooled with the rows left over from the
previous group and shuffled together; full batches are cut from the pool and
the remainder carries over, so only the epoch's last batch can be short and each
row is yielded exactly once. While one group is being consumed the next group's
partitions load in the background (a thread here, or the workers of a
``distributed.Client``), so reading overlaps training and memory stays at about
two groups of partitions whatever the dataset size.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
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
    """``scaler.transform(A)`` as C-ordered ``dtype``, in two passes when possible.

    The blocks are already checked finite and may be column-major; for nnpipe's
    own scalers the same float operations as their ``transform`` (so the same
    bits) are written straight into a C-ordered output, skipping transform's
    extra copies and checks. Anything else goes through ``transform``.
    """
    if scaler is None:
        return np.ascontiguousarray(A, dtype=dtype)
    if np.dtype(getattr(scaler, "dtype", None) or "float64") != dtype or A.dtype != dtype:
        return np.ascontiguousarray(scaler.transform(A), dtype=dtype)
    out = np.empty(A.shape, dtype=dtype)  # C order
    if type(scaler) is StandardScaler:
        if scaler.with_mean:
            np.subtract(A, scaler.mean_.astype(dtype), out=out)
        else:
            out[...] = A
        if scaler.with_std:
            np.divide(out, scaler.scale_.astype(dtype), out=out)
        return out
    if type(scaler) is MinMaxScaler:
        np.multiply(A, scaler.scale_.astype(dtype), out=out)
        np.add(out, scaler.min_.astype(dtype), out=out)
        return out
    return np.ascontiguousarray(scaler.transform(A), dtype=dtype)


def _load(
    dataset: Any,
    index: int,
    subset: str,
    split: TrainValidationSplit | None,
    sides: bool,
    scaling: _Scaling,
):
    """Read, scale and cast partition ``index``: ((X, y), (X_val, y_val) or None)."""
    # Reading straight into float32 saves a float64 copy; the values are the same
    # as rounding float64 later, which is what the scalers' float32 transform does.
    read = np.float32 if scaling.dtype == scaling.y_dtype == np.float32 else np.float64
    if sides:
        train, val = dataset.read_partition_sides(index, split, read)
        return scaling(*train), scaling(*val)
    return scaling(*dataset.read_partition(index, subset, split, read)), None


class _Prefetcher:
    """Yield ``load(i)`` for ``indices`` in order, keeping ``depth`` loads in flight."""

    def __init__(self, load: Callable, args: tuple, indices: list[int], depth: int, client: Any):
        self._load, self._args, self._indices, self._depth = load, args, indices, depth
        self._client = client

    def __iter__(self) -> Iterator[Any]:
        if self._depth == 0 and self._client is None:
            for i in self._indices:
                yield self._load(self._args[0], i, *self._args[1:])
            return
        if self._client is not None:
            submit = self._submit_client
            closer = None
        else:
            pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nnpipe-prefetch")
            submit = lambda i: pool.submit(self._load, self._args[0], i, *self._args[1:])  # noqa: E731
            closer = pool
        pending: deque = deque()
        todo = iter(self._indices)
        try:
            for i in todo:
                pending.append(submit(i))
                if len(pending) > self._depth:
                    break
            while pending:
                result = pending.popleft().result()
                nxt = next(todo, None)
                if nxt is not None:
                    pending.append(submit(nxt))
                yield result
        finally:
            for fut in pending:
                fut.cancel()
            if closer is not None:
                closer.shutdown(wait=True, cancel_futures=True)

    def _submit_client(self, i: int):
        # Partitions are read on the workers; only the arrays travel back.
        return self._client.submit(self._load, self._args[0], i, *self._args[1:], pure=False)


class MinibatchStream:
    """Minibatches of one dataset subset, epoch after epoch (see :func:`iter_minibatches`)."""

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
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (X, y) batches of one epoch; y is 1-D when there is one target.

        ``on_validation(partition_index, X_val, y_val)`` (scaled, subset 'train'
        only) receives each partition's validation rows from the read of its
        training rows, so a training pass can keep them without a second read.
        """
        sides = on_validation is not None
        if sides and self.subset != "train":
            raise ValueError("on_validation needs subset='train'")
        order = [int(i) for i in self.partition_order(epoch)]
        depth = self.buffer_partitions if self.prefetch else 0
        loads = iter(
            _Prefetcher(
                _load,
                (self.dataset, self.subset, self.split, sides, self.scaling),
                order,
                depth,
                self.client,
            )
        )
        rng = np.random.default_rng([self.random_state, epoch, 1])
        bs = self.batch_size
        carry_X = carry_y = None
        one_target = self.dataset.n_targets == 1
        for start in range(0, len(order), self.buffer_partitions):
            Xs, ys = [], []
            if carry_X is not None and len(carry_X):
                Xs.append(carry_X)
                ys.append(carry_y)
            for index in order[start : start + self.buffer_partitions]:
                (X, y), val = next(loads)
                if sides and len(val[0]):
                    on_validation(index, *val)
                if len(X):
                    Xs.append(X)
                    ys.append(y)
            if not Xs:
                continue
            X = np.concatenate(Xs) if len(Xs) > 1 else Xs[0]  # (pool, n_features)
            y = np.concatenate(ys) if len(ys) > 1 else ys[0]
            n_full = (len(X) // bs) * bs
            if self.shuffle:
                # Gather batch by batch: no second full copy of the pool.
                perm = rng.permutation(len(X))
                for s in range(0, n_full, bs):
                    yb = y[perm[s : s + bs]]
                    yield X[perm[s : s + bs]], (yb[:, 0] if one_target else yb)
                carry_X, carry_y = X[perm[n_full:]], y[perm[n_full:]]
            else:
                for s in range(0, n_full, bs):
                    yb = y[s : s + bs]
                    yield X[s : s + bs], (yb[:, 0] if one_target else yb)
                carry_X, carry_y = X[n_full:], y[n_full:]
        if carry_X is not None and len(carry_X) and not self.drop_last:
            yield carry_X, (carry_y[:, 0] if one_target else carry_y)


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
