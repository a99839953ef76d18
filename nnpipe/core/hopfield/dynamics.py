"""Recall dynamics of the Hopfield network: exact local fields, async and sync updates.

States are +-1 in a neuron-major float matrix ``S`` (N, n_probes), one probe per
column; fields are ``H = q @ S`` for the integer-valued weights ``q`` of
:mod:`nnpipe.core.hopfield.rules`, so every sum is exact and the result for one
probe never depends on the rest of the batch.

A neuron flips when its field has the opposite sign of its state; on a zero field it
keeps its state. Each flip lowers the energy ``-1/2 s q s`` by ``2 |h_i|`` > 0.

Async recall visits the neurons of each sweep in one order shared by all probes and
processes them in blocks: inside a block a neuron's field is its field at the block
start plus the effect of the flips made earlier in the block; after the block the
fields of the probes that flipped are brought up to date with one matrix product.
The result is exactly that of visiting neurons one at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

# Neurons per block of an async sweep: large enough for an efficient matrix
# product, small enough that the neuron-by-neuron updates inside a block stay cheap.
_BLOCK = 64


@dataclass
class RecallResult:
    """Outcome of recalling a batch of probes.

    Attributes
    ----------
    states : ndarray of int8, shape (n_probes, n_neurons)
        Final states. For a sync 2-cycle, one of the two states of the cycle.
    converged : ndarray of bool, shape (n_probes,)
        True when the final state is a fixed point that recall confirmed.
    n_sweeps : ndarray of int32, shape (n_probes,)
        Async: full sweeps done, the last (confirming) one included. Sync: parallel
        update steps done.
    energy : ndarray of float64, shape (n_probes,)
        ``-1/2 s W s`` of the final state.
    period : ndarray of int8, shape (n_probes,)
        1 = fixed point, 2 = 2-cycle (sync only), 0 = still changing at ``max_iter``.
    """

    states: np.ndarray
    converged: np.ndarray
    n_sweeps: np.ndarray
    energy: np.ndarray
    period: np.ndarray

    def __len__(self) -> int:
        return int(self.states.shape[0])

    @classmethod
    def concatenate(cls, results: Sequence[RecallResult]) -> RecallResult:
        """Join results of consecutive batches, in order."""
        if not results:
            raise ValueError("concatenate needs at least one RecallResult")
        fields = ("states", "converged", "n_sweeps", "energy", "period")
        return cls(**{f: np.concatenate([getattr(r, f) for r in results]) for f in fields})


class DenseFields:
    """Fields kept as the full matrix ``H = q @ S`` (N, n_probes)."""

    def __init__(self, q: np.ndarray, dtype: np.dtype):
        self.q = np.ascontiguousarray(q, dtype=dtype)  # (N, N), symmetric
        self.dtype = self.q.dtype
        self.threads = threading.local()  # per thread: work arrays (thread_scratch)

    def start(self, S: np.ndarray) -> np.ndarray:
        return self.q @ S  # (N, B)

    def fields(self, state: np.ndarray, S: np.ndarray) -> np.ndarray:
        return state

    def block(self, state: np.ndarray, s: np.ndarray, J: np.ndarray, out: np.ndarray, tmp):
        return _take(state, J, 0, out)  # (b, B)

    def coupling(self, J: np.ndarray) -> np.ndarray:
        return self.q[np.ix_(J, J)]  # (b, b)

    def apply(self, state: np.ndarray, cols: np.ndarray, delta: np.ndarray, J: np.ndarray):
        _add_columns(state, cols, self.q[J].T @ delta)  # (N, b) @ (b, m)

    def s_dot_h(self, state: np.ndarray, S: np.ndarray) -> np.ndarray:
        return np.einsum("ij,ij->j", S, state, dtype=np.float64)

    # A neuron flips where h * s < flip_below: here h * s with h = q @ S.
    flip_below = 0

    def flip_scores(self, S: np.ndarray, out: np.ndarray) -> np.ndarray:
        np.matmul(self.q, S, out=out)
        out *= S
        return out


class LowRankFields:
    """Hebbian fields through the overlaps ``M = X @ S`` (P, n_probes).

    ``q = X^T X - P I`` gives ``H = X^T M - P S``; with P << N a flip updates P
    overlaps instead of N fields. Same integers as :class:`DenseFields`.
    """

    def __init__(self, patterns: np.ndarray, dtype: np.dtype):
        self.x = np.ascontiguousarray(patterns, dtype=dtype)  # (P, N)
        self.xt = np.ascontiguousarray(self.x.T)  # (N, P)
        self.n_patterns = patterns.shape[0]
        self.dtype = self.x.dtype
        self.threads = threading.local()  # per thread: work arrays (thread_scratch)

    def start(self, S: np.ndarray) -> np.ndarray:
        return self.x @ S  # (P, B)

    def fields(self, state: np.ndarray, S: np.ndarray) -> np.ndarray:
        H = self.xt @ state  # (N, B)
        H -= self.n_patterns * S
        return H

    def block(self, state: np.ndarray, s: np.ndarray, J: np.ndarray, out: np.ndarray, tmp):
        """Fields of neurons ``J`` (b, B) into ``out``; ``s = S[J]``, ``tmp`` a scratch array."""
        np.matmul(self.xt[J], state, out=out)
        out -= np.multiply(s, self.n_patterns, out=tmp)
        return out

    def coupling(self, J: np.ndarray) -> np.ndarray:
        xj = self.xt[J]  # (b, P)
        c = xj @ xj.T
        np.fill_diagonal(c, 0)
        return c

    def apply(self, state: np.ndarray, cols: np.ndarray, delta: np.ndarray, J: np.ndarray):
        _add_columns(state, cols, self.xt[J].T @ delta)  # (P, b) @ (b, m)

    def s_dot_h(self, state: np.ndarray, S: np.ndarray) -> np.ndarray:
        m = state.astype(np.float64)
        return np.einsum("ij,ij->j", m, m) - self.n_patterns * S.shape[0]

    # h * s = (X^T M) * s - P, as s * s = 1: a neuron flips where (X^T M) * s < P.
    @property
    def flip_below(self) -> int:
        return self.n_patterns

    def flip_scores(self, S: np.ndarray, out: np.ndarray) -> np.ndarray:
        np.matmul(self.xt, self.x @ S, out=out)
        out *= S
        return out


def _add_columns(state: np.ndarray, cols: np.ndarray, update: np.ndarray) -> None:
    if cols.size == state.shape[1]:
        state += update
    else:
        state[:, cols] += update


Fields = DenseFields | LowRankFields


class Scratch:
    """Work arrays reused from block to block, by name.

    A sweep block needs a handful of (block, probes) temporaries. Made afresh for
    every block, each one above glibc's mmap threshold is mapped, faulted in page by
    page and unmapped again; Dask's worker processes fix that threshold at 128 KiB
    (``MALLOC_TRIM_THRESHOLD_``), where this made recall about 3x slower.
    """

    def __init__(self) -> None:
        self._arrays: dict[str, np.ndarray] = {}

    def __call__(self, name: str, shape: tuple[int, int], dtype: np.dtype) -> np.ndarray:
        size = shape[0] * shape[1]
        flat = self._arrays.get(name)
        if flat is None or flat.size < size or flat.dtype != dtype:
            flat = self._arrays[name] = np.empty(size, dtype=dtype)
        return flat[:size].reshape(shape)  # contiguous: the first `size` elements

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self._arrays.values())

    def clear(self) -> None:
        self._arrays.clear()


def _take(a: np.ndarray, indices: np.ndarray, axis: int, out: np.ndarray) -> np.ndarray:
    # mode="raise" would first take into a temporary of out's size, then copy it.
    return np.take(a, indices, axis=axis, out=out, mode="clip")


def thread_scratch(fields: Fields) -> Scratch:
    """The calling thread's work arrays for ``fields``, kept from call to call."""
    scratch = getattr(fields.threads, "scratch", None)
    if scratch is None:
        scratch = fields.threads.scratch = Scratch()
    return scratch


def empty_result(n_probes: int, n_neurons: int) -> RecallResult:
    """A result for ``n_probes`` probes, to be filled in."""
    return RecallResult(
        states=np.empty((n_probes, n_neurons), dtype=np.int8),
        converged=np.zeros(n_probes, dtype=bool),
        n_sweeps=np.zeros(n_probes, dtype=np.int32),
        energy=np.empty(n_probes, dtype=np.float64),
        period=np.zeros(n_probes, dtype=np.int8),
    )


def recall_async(
    fields: Fields,
    probes: np.ndarray,
    order: Callable[[int], np.ndarray],
    max_iter: int,
    scale: float,
    scratch: Scratch | None = None,
) -> RecallResult:
    """Asynchronous recall of ``probes`` (B, N); ``order(t)`` is sweep t's neuron order.

    ``scratch``: work arrays to reuse (one per thread), e.g. across chunks of probes.
    """
    scratch = scratch or Scratch()
    n_probes, n_neurons = probes.shape
    out = empty_result(n_probes, n_neurons)
    S = scratch("S", (n_neurons, n_probes), fields.dtype)  # (N, B): neuron-major
    S[...] = probes.T
    spare = "S'"  # the work array the probes still moving are moved to next
    state = fields.start(S)
    active = np.arange(n_probes)  # rows of `out` still being recalled

    def finish(cols: np.ndarray, converged: bool) -> None:
        idx = active[cols]
        done = _take(S, cols, 1, scratch("done", (n_neurons, cols.size), S.dtype))
        out.states[idx] = done.T
        out.energy[idx] = -0.5 * fields.s_dot_h(state[:, cols], done) / scale
        out.converged[idx] = converged
        out.period[idx] = 1 if converged else 0

    for sweep in range(max_iter):
        perm = order(sweep)
        changed = np.zeros(len(active), dtype=bool)
        for lo in range(0, n_neurons, _BLOCK):
            J = perm[lo : lo + _BLOCK]
            cols = _sweep_block(fields, state, S, J, scratch)
            changed[cols] = True
        out.n_sweeps[active] += 1
        if not changed.all():
            finish(np.flatnonzero(~changed), converged=True)
            keep = np.flatnonzero(changed)
            moving = scratch(spare, (n_neurons, keep.size), S.dtype)
            spare = "S" if spare == "S'" else "S'"
            S, state, active = _take(S, keep, 1, moving), state[:, keep], active[keep]
        if active.size == 0:
            return out
    finish(np.arange(len(active)), converged=False)
    return out


def _sweep_block(
    fields: Fields, state: np.ndarray, S: np.ndarray, J: np.ndarray, scratch: Scratch
) -> np.ndarray:
    """Visit neurons ``J`` in order for every probe; return the probes (columns) that moved."""
    shape = (len(J), S.shape[1])
    s = _take(S, J, 0, scratch("s", shape, S.dtype))  # (b, B) copy
    tmp = scratch("tmp", shape, S.dtype)
    h0 = fields.block(state, s, J, scratch("h0", shape, S.dtype), tmp)  # block-start fields
    c2 = 2 * fields.coupling(J)  # (b, b) symmetric, zero diagonal: a flip moves s_k by 2 s_new
    # (b, B) flips the block-start fields call for
    want = np.less(np.multiply(h0, s, out=tmp), 0, out=scratch("want", shape, np.bool_))
    n_want = int(np.count_nonzero(want))
    if n_want == 0:
        return np.empty(0, dtype=np.intp)
    # Both ways give the same result; which is cheaper depends on how many flips there
    # are per probe (measured: rounds win for a few, neuron by neuron for many).
    s_after = scratch("s_after", shape, S.dtype)
    if n_want <= _ROUNDS_FLIPS_PER_PROBE * s.shape[1]:
        moved = _block_by_rounds(h0, s, c2, want, s_after, scratch)
    else:
        moved = _block_by_neurons(h0, s, c2, s_after, scratch("D", shape, S.dtype))
    cols = np.flatnonzero(moved)
    delta = np.subtract(s_after, s, out=tmp)  # (b, B) in {-2, 0, 2}
    S[J] = s_after
    if 4 * cols.size > s.shape[1]:
        # Scattering into most columns costs more than multiplying the zero ones.
        fields.apply(state, np.arange(s.shape[1]), delta, J)
    elif cols.size:
        fields.apply(state, cols, np.ascontiguousarray(delta[:, cols]), J)
    return cols


# Block-start flips per probe up to which _block_by_rounds is used.
_ROUNDS_FLIPS_PER_PROBE = 3


def _block_by_neurons(h0, s0, c2, s, D):
    """One neuron at a time: ``h_k = h0_k + c2[k, :k] @ D[:k]``, D the flips made so far.

    The states after the block go to ``s``; ``D`` is a work array of the same shape.
    Returns which probes moved.
    """
    s[...] = s0
    D.fill(0)  # (b, B): 0 or s_new
    top = 0  # rows of D below `top` may be nonzero
    for k in range(s.shape[0]):
        h = h0[k] + c2[k, :top] @ D[:top] if top else h0[k]
        flip = (h * s[k] < 0).nonzero()[0]
        if flip.size:
            new = -s[k, flip]
            s[k, flip] = new
            D[k, flip] = new
            top = k + 1
    return D.any(axis=0)


def _block_by_rounds(h0, s, c2, want, s_after, scratch):
    """All probes at once, one flip per probe per round; the states after go to ``s_after``.

    Each round finds, per probe, the first neuron at or after its position whose
    current field disagrees with its state, flips it and updates that probe's block
    fields. The neurons skipped over agree with their fields, as a one-by-one visit
    would find. Rounds = the most flips any probe makes in the block (+1).
    Returns which probes moved.
    """
    h = scratch("h", h0.shape[::-1], h0.dtype)  # (B, b) current block fields
    h[...] = h0.T
    st = scratch("st", s.shape[::-1], s.dtype)  # (B, b) current block states
    st[...] = s.T
    position = np.arange(h.shape[1])
    start = np.zeros(h.shape[0], dtype=np.intp)  # per probe: first neuron not yet visited
    moved = np.zeros(h.shape[0], dtype=bool)
    rows = np.flatnonzero(want.any(axis=0))  # probes that may still flip in this block
    first = True
    while rows.size:
        if first:  # block-start fields: `want` is already known
            hit = want.T[rows]
            first = False
        else:
            hit = h[rows] * st[rows] < 0  # (r, b)
            hit &= position >= start[rows, None]
            has = hit.any(axis=1)
            rows, hit = rows[has], hit[has]
            if rows.size == 0:
                break
        k = hit.argmax(axis=1)  # (r,) first neuron to flip, per probe
        new = -st[rows, k]
        st[rows, k] = new
        h[rows] += new[:, None] * c2[k]  # (r, b)
        start[rows] = k + 1
        moved[rows] = True
    s_after[...] = st.T
    return moved


def recall_sync(fields: Fields, probes: np.ndarray, max_iter: int, scale: float) -> RecallResult:
    """Synchronous recall: every neuron at once; fixed points and 2-cycles detected."""
    n_probes, n_neurons = probes.shape
    out = empty_result(n_probes, n_neurons)
    S = np.array(probes.T, dtype=fields.dtype, order="C")  # (N, B)
    previous = None
    active = np.arange(n_probes)
    H = fields.fields(fields.start(S), S)  # (N, B)
    for _ in range(max_iter):
        # Fields are integers, so adding s/2 keeps their sign and breaks a zero toward s:
        # a neuron with zero field keeps its state.
        new = np.sign(H + 0.5 * S)
        out.n_sweeps[active] += 1
        fixed = (new == S).all(axis=0)
        cycle = (new == previous).all(axis=0) & ~fixed if previous is not None else fixed & False
        done = fixed | cycle
        if done.any():
            idx = active[done]
            out.states[idx] = S[:, done].T
            s_dot_h = np.einsum("ij,ij->j", S[:, done], H[:, done], dtype=np.float64)
            out.energy[idx] = -0.5 * s_dot_h / scale
            out.converged[idx] = fixed[done]
            out.period[idx] = np.where(fixed[done], 1, 2)
            keep = ~done
            if not keep.any():
                return out
            S, new, active = S[:, keep], new[:, keep], active[keep]
        previous, S = S, new
        H = fields.fields(fields.start(S), S)
    # Not settled within max_iter: report the last state reached.
    out.states[active] = S.T
    out.energy[active] = -0.5 * np.einsum("ij,ij->j", S, H, dtype=np.float64) / scale
    return out


# States checked together by flipping(): its work arrays stay below 256 KiB.
_FLIPPING_ELEMENTS = 1 << 16


def flipping(fields: Fields, states: np.ndarray) -> np.ndarray:
    """Per state (row of ``states``), whether some neuron would flip: not a fixed point."""
    n, n_neurons = states.shape
    out = np.zeros(n, dtype=bool)
    scratch = thread_scratch(fields)
    rows = max(1, _FLIPPING_ELEMENTS // max(n_neurons, 1))
    for lo in range(0, n, rows):
        chunk = states[lo : lo + rows]
        shape = (n_neurons, chunk.shape[0])
        S = scratch("S", shape, fields.dtype)
        S[...] = chunk.T
        H = fields.flip_scores(S, scratch("H", shape, fields.dtype))
        flips = np.less(H, fields.flip_below, out=scratch("flips", shape, np.bool_))
        flips.any(axis=0, out=out[lo : lo + rows])
    return out
