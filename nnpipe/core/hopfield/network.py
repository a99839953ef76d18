"""Hopfield associative memory (Hopfield 1982): store bipolar patterns, recall noisy ones.

One fully connected layer of +-1 neurons, every neuron both input and output, with
symmetric weights and a zero diagonal. Recall lowers the energy ``-1/2 s W s``
until no neuron wants to flip (a fixed point: a stored pattern, its reverse, or a
spurious state such as a 3-mixture). See :mod:`nnpipe.core.hopfield.rules` for the
learning rules and the exact weight grid, :mod:`nnpipe.core.hopfield.dynamics` for
recall and :mod:`nnpipe.core.hopfield.states` for the energy and classifying states.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np

from ..params import Params
from ..serialization import (
    ModelFileError,
    load_npz,
    params_from_json,
    params_to_json,
    require,
    save_npz,
)
from ..threads import blas_threads, choose_n_threads
from ..validation import check_is_fitted, check_option, check_positive, check_rng
from .dynamics import (
    DenseFields,
    Fields,
    LowRankFields,
    RecallResult,
    empty_result,
    flipping,
    recall_async,
    recall_sync,
    thread_scratch,
)
from .rules import RULES, LearningRule, to_grid
from .states import (
    Classification,
    check_bipolar,
    classify_states,
    energy,
)

__all__ = ["HEBBIAN_CAPACITY", "UPDATES", "CapacityWarning", "HopfieldNetwork"]

UPDATES = ("async", "sync")

# Critical load of Hebbian storage for random patterns, alpha_c = P / N ~ 0.138
# (Amit, Gutfreund & Sompolinsky 1985); past it retrieval states disappear.
HEBBIAN_CAPACITY = 0.138

# Largest |integer| float32 adds exactly is 2**24; keep a factor 4 of headroom for
# the partial sums of the block updates.
_FLOAT32_EXACT = 2**22

# Probe rows recalled together: bounds the (rows, N) working matrices to ~64 MB.
_CHUNK_ELEMENTS = 1 << 24
# Work arrays of async recall up to this size stay with the thread for its next call.
_KEEP_SCRATCH_BYTES = 8 << 20


class CapacityWarning(UserWarning):
    """More patterns are stored than the learning rule can recall reliably."""

    # Named by the package users import it from, as warnings and reprs show it.
    __module__ = "nnpipe.core.hopfield"


class HopfieldNetwork(Params):
    """Hopfield network with Hebbian, Storkey or pseudo-inverse learning.

    Parameters
    ----------
    rule : {'hebbian', 'storkey', 'pseudoinverse'}, default 'hebbian'
        Learning rule, see :data:`RULES`.
    update : {'async', 'sync'}, default 'async'
        Async: one neuron at a time, each sweep in a seeded random order shared by all
        probes; energy never rises and recall ends in a fixed point. Sync: all neurons
        at once; may end in a 2-cycle, which is detected.
    max_iter : int, default 100
        Most sweeps (async) or parallel steps (sync) per probe.
    random_state : None, int or numpy.random.Generator
        Seeds the sweep orders (drawn once in ``fit`` and saved with the model).
    n_threads : int, optional
        BLAS threads for recall. Default: one for async recall (many small products,
        which extra threads slow down), and for sync recall more only when its
        products are large and cores are idle (:func:`nnpipe.core.threads.choose_n_threads`).

    Attributes
    ----------
    weights_ : ndarray of float64, shape (n_neurons, n_neurons)
        Symmetric, zero diagonal; equal to ``weights_q_ / weights_scale_``.
    weights_q_ : ndarray of float64, shape (n_neurons, n_neurons)
        Integer-valued weights used for exact fields.
    weights_scale_ : float
    patterns_ : ndarray of int8, shape (n_patterns, n_neurons)
        Stored patterns, in order.
    n_neurons_, n_features_in_ : int
    order_seed_ : int
        Seed of the sweep orders, see :meth:`sweep_orders`.
    """

    def __init__(
        self,
        rule: str = "hebbian",
        update: str = "async",
        max_iter: int = 100,
        random_state: Any = None,
        n_threads: int | None = None,
    ):
        self.rule = rule
        self.update = update
        self.max_iter = max_iter
        self.random_state = random_state
        self.n_threads = n_threads

    # -- parameters --------------------------------------------------------------
    def _check_params(self) -> None:
        check_option("rule", self.rule, RULES)
        check_option("update", self.update, UPDATES)
        check_positive("max_iter", self.max_iter, integer=True)
        if self.n_threads is not None:
            check_positive("n_threads", self.n_threads, integer=True)

    # -- learning ----------------------------------------------------------------
    def fit(self, patterns: Any) -> HopfieldNetwork:
        """Forget everything, then store ``patterns`` (n_patterns, n_neurons) in {-1, +1}."""
        self._fit(patterns)
        self._warn_capacity()
        return self

    def partial_fit(self, patterns: Any) -> HopfieldNetwork:
        """Store more patterns (Hebbian and Storkey update; pseudo-inverse recomputes)."""
        self._check_params()
        self._learn(check_bipolar(patterns, "patterns"))
        self._warn_capacity()
        return self

    def _fit(self, patterns: Any) -> HopfieldNetwork:
        """fit without the capacity warning (capacity_curve overloads on purpose)."""
        self._check_params()
        X = check_bipolar(patterns, "patterns")  # before forgetting: bad input loses nothing
        for attr in (*self._fitted_attrs, "_fields", "_weights"):
            self.__dict__.pop(attr, None)
        return self._learn(X)

    _fitted_attrs = (
        "weights_q_",
        "weights_scale_",
        "patterns_",
        "rule_",
        "n_neurons_",
        "n_features_in_",
        "order_seed_",
    )

    def _learn(self, X: np.ndarray) -> HopfieldNetwork:
        """Add checked patterns X (P_new, N) with the current rule."""
        fitted = hasattr(self, "weights_q_")
        if fitted:
            self._check_neurons(X, "patterns")
            if self.rule_ is None:
                raise ValueError(
                    "this network was built from weights (rule None): it has no learning rule "
                    "to add patterns with; call fit to learn them from scratch"
                )
            if self.rule_ != self.rule:
                raise ValueError(
                    f"this network holds weights of rule {self.rule_!r}, not {self.rule!r}; "
                    "call fit to relearn all patterns with the new rule"
                )
            stored = np.concatenate([self.patterns_, X])
        else:
            stored = X
        rule: LearningRule = RULES[self.rule]
        if fitted and rule.incremental:
            q, scale = rule.learn(self.weights_q_, self.weights_scale_, X, stored)
        else:
            q, scale = rule.learn(None, None, stored, stored)
        if not fitted:
            seed = check_rng(self.random_state).integers(2**63)
            self.order_seed_ = int(seed)
        self._set_state(q, scale, stored, self.rule)
        return self

    def _set_state(self, q: np.ndarray, scale: float, patterns: np.ndarray, rule) -> None:
        self.weights_q_ = q
        self.weights_scale_ = float(scale)
        self.patterns_ = patterns
        self.rule_ = rule
        self.n_neurons_ = self.n_features_in_ = int(q.shape[0])
        self._fields: Fields | None = None
        self._weights: np.ndarray | None = None

    def _warn_capacity(self) -> None:
        n_patterns, n = self.patterns_.shape
        load = n_patterns / n
        if self.rule_ == "hebbian" and load > HEBBIAN_CAPACITY:
            message = (
                f"{n_patterns} patterns in {n} neurons is a load of {load:.3f}, past the "
                f"Hebbian capacity of about {HEBBIAN_CAPACITY} N ({int(HEBBIAN_CAPACITY * n)} "
                "patterns): recall will degrade. Use rule='storkey' or rule='pseudoinverse' "
                "to store more."
            )
        elif self.rule_ == "pseudoinverse" and n_patterns >= n:
            message = (
                f"{n_patterns} patterns in {n} neurons: the pseudo-inverse rule needs fewer "
                "patterns than neurons; with as many, every state is a fixed point"
            )
        else:
            return
        # Attributed to the line that called fit / partial_fit.
        warnings.warn(CapacityWarning(message), stacklevel=3)

    @classmethod
    def from_weights(
        cls, weights: Any, patterns: Any = None, *, update: str = "async", **params: Any
    ) -> HopfieldNetwork:
        """A network with given symmetric, zero-diagonal ``weights`` (N, N).

        ``patterns`` (optional) are the stored patterns :meth:`classify` compares with.
        Such a network has no learning rule, so ``partial_fit`` refuses it.
        """
        W = np.asarray(weights, dtype=np.float64)
        if W.ndim != 2 or W.shape[0] != W.shape[1] or W.shape[0] < 1:
            raise ValueError(f"weights must be a square (N, N) matrix; got shape {W.shape}")
        if not np.isfinite(W).all():
            i, j = np.argwhere(~np.isfinite(W))[0]
            raise ValueError(f"weights[{i}, {j}] is {W[i, j].item()!r}; weights must be finite")
        _check_symmetric_zero_diagonal(W, "weights")
        net = cls(update=update, **params)
        net._check_params()
        n = W.shape[0]
        X = np.zeros((0, n), np.int8) if patterns is None else check_bipolar(patterns)
        if X.shape[1] != n:
            raise ValueError(f"patterns have {X.shape[1]} neurons, weights have {n}")
        q, scale = to_grid(W)
        net.order_seed_ = int(check_rng(net.random_state).integers(2**63))
        net._set_state(q, scale, X, None)
        return net

    # -- recall ------------------------------------------------------------------
    @property
    def weights_(self) -> np.ndarray:
        """Weight matrix (n_neurons, n_neurons), float64."""
        check_is_fitted(self, "weights_q_")
        if getattr(self, "_weights", None) is None:
            self._weights = self.weights_q_ / self.weights_scale_
            self._weights.flags.writeable = False  # a copy of the state, not a handle on it
        return self._weights

    @property
    def n_patterns_(self) -> int:
        check_is_fitted(self, "patterns_")
        return int(self.patterns_.shape[0])

    def _check_neurons(self, X: np.ndarray, name: str) -> None:
        if X.shape[1] != self.n_neurons_:
            raise ValueError(
                f"{name} have {X.shape[1]} neurons (columns), but this network has "
                f"{self.n_neurons_}"
            )

    def _engine(self) -> Fields:
        if getattr(self, "_fields", None) is None:
            n_patterns, n = self.patterns_.shape
            if self.rule_ is not None and RULES[self.rule_].low_rank and 2 * n_patterns < n:
                dtype = np.float32 if n * n_patterns <= _FLOAT32_EXACT else np.float64
                self._fields = LowRankFields(self.patterns_, dtype)
            else:
                bound = n * float(np.max(np.abs(self.weights_q_)))
                dtype = np.float32 if bound <= _FLOAT32_EXACT else np.float64
                self._fields = DenseFields(self.weights_q_, dtype)
        return self._fields

    def _check_states(self, states: Any, name: str) -> np.ndarray:
        check_is_fitted(self, "weights_q_")
        if isinstance(states, RecallResult):
            states = states.states
        # Zero rows are fine: an empty partition of a dataset recalls to an empty result.
        S = check_bipolar(states, name, allow_empty=True)
        self._check_neurons(S, name)
        return S

    def sweep_orders(self, n_sweeps: int) -> np.ndarray:
        """Neuron visiting order of the first ``n_sweeps`` async sweeps (n_sweeps, N)."""
        check_is_fitted(self, "order_seed_")
        rng = np.random.default_rng(self.order_seed_)
        return np.stack([rng.permutation(self.n_neurons_) for _ in range(n_sweeps)])

    def recall(self, probes: Any, *, batch_size: int | None = None) -> RecallResult:
        """Run the dynamics from each probe (n_probes, n_neurons) in {-1, +1}.

        ``batch_size`` only bounds memory: a probe's result never depends on it.
        """
        self._check_params()
        S = self._check_states(probes, "probes")  # (n_probes, N)
        if batch_size is not None:
            check_positive("batch_size", batch_size, integer=True)
        rows = batch_size or max(1, _CHUNK_ELEMENTS // self.n_neurons_)
        fields = self._engine()
        scratch = thread_scratch(fields)
        orders: list[np.ndarray] = []
        rng = np.random.default_rng(self.order_seed_)

        def order(sweep: int) -> np.ndarray:
            while len(orders) <= sweep:
                orders.append(rng.permutation(self.n_neurons_))
            return orders[sweep]

        parts = []
        with blas_threads(self._recall_threads(fields, min(rows, S.shape[0]))):
            for lo in range(0, S.shape[0], rows):
                chunk = S[lo : lo + rows]
                if self.update == "async":
                    part = recall_async(
                        fields, chunk, order, self.max_iter, self.weights_scale_, scratch
                    )
                else:
                    part = recall_sync(fields, chunk, self.max_iter, self.weights_scale_)
                parts.append(part)
        if scratch.nbytes > _KEEP_SCRATCH_BYTES:  # made for a large batch: not kept
            scratch.clear()
        if not parts:
            return empty_result(0, self.n_neurons_)
        return parts[0] if len(parts) == 1 else RecallResult.concatenate(parts)

    def _recall_threads(self, fields: Fields, n_rows: int) -> int:
        if self.n_threads is not None:
            return self.n_threads
        if self.update == "async" or n_rows == 0:
            return 1
        # One sync step is a product of (N, N) or (N, P) and (P, N) by (N, n_rows).
        inner = fields.n_patterns if isinstance(fields, LowRankFields) else self.n_neurons_
        return choose_n_threads([self.n_neurons_, inner], n_rows)

    def energy(self, states: Any) -> np.ndarray:
        """Energy ``-1/2 s W s`` of each state (n_states, n_neurons), computed exactly."""
        S = self._check_states(states, "states")
        # On the integer grid the products are exact; one division by the scale.
        return energy(S, self.weights_q_) / self.weights_scale_

    def is_fixed_point(self, states: Any) -> np.ndarray:
        """Per state: True when no neuron would flip (a zero field keeps the state)."""
        S = self._check_states(states, "states")
        return ~flipping(self._engine(), S)

    def classify(self, states: Any, *, max_hamming: int = 0, max_order: int = 7) -> Classification:
        """Say which kind of state each one is: see :data:`LABELS`.

        ``states`` is (n_states, n_neurons) or a :class:`RecallResult`. A fixed point
        within ``max_hamming`` bits of a stored pattern, a reversed one or an odd
        mixture of up to ``max_order`` patterns counts as that kind.
        """
        S = self._check_states(states, "states")
        check_positive("max_hamming", max_hamming, integer=True, allow_zero=True)
        check_positive("max_order", max_order, integer=True)
        moving = flipping(self._engine(), S)
        return classify_states(
            S, self.patterns_, moving, max_hamming=max_hamming, max_order=max_order
        )

    # -- persistence -------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        # Caches are rebuilt on demand; keep pickles (e.g. to Dask workers) small.
        state = self.__dict__.copy()
        state.pop("_fields", None)
        state.pop("_weights", None)
        return state

    def save(self, path: str | os.PathLike) -> None:
        """Write the network to a ``.npz`` file atomically (no pickle)."""
        check_is_fitted(self, "weights_q_")
        meta = {
            "kind": type(self).__name__,
            # A Generator random_state is saved as None: order_seed_ keeps recall identical.
            "params": params_to_json(self.get_params(), type(self).__name__),
            "rule_": self.rule_,
            "weights_scale": self.weights_scale_,
            "order_seed": self.order_seed_,
        }
        save_npz(path, {"weights_q": self.weights_q_, "patterns": self.patterns_}, meta)

    @classmethod
    def load(cls, path: str | os.PathLike) -> HopfieldNetwork:
        """Read a network written by :meth:`save`; every array is checked."""
        arrays, meta = load_npz(path, kind=cls.__name__)
        q = require(arrays, "weights_q", (None, None), path).astype(np.float64)
        n = q.shape[0]
        patterns = require(arrays, "patterns", (None, n), path)
        try:
            net = cls(**params_from_json(meta.get("params", {})))
            net._check_params()
            rule_ = meta.get("rule_")
            if rule_ is not None:
                check_option("rule_", rule_, RULES)
            scale = float(meta["weights_scale"])
            seed = int(meta["order_seed"])
            if q.shape != (n, n) or not np.isfinite(q).all() or (q != np.rint(q)).any():
                raise ValueError("weights_q must be a square matrix of finite integers")
            _check_symmetric_zero_diagonal(q, "weights_q")
            patterns = check_bipolar(patterns, "patterns") if len(patterns) else patterns
            if not (np.isfinite(scale) and scale > 0 and 0 <= seed < 2**63):
                raise ValueError(f"weights_scale={scale} or order_seed={seed} out of range")
            if rule_ == "hebbian":
                counts, _ = RULES["hebbian"].learn(None, None, patterns, patterns)
                if not np.array_equal(counts, q):
                    raise ValueError("Hebbian weights do not match the stored patterns")
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(f"{str(path)!r} is not a valid HopfieldNetwork: {exc}") from exc
        net.order_seed_ = seed
        net._set_state(q, scale, patterns.astype(np.int8), rule_)
        return net


def _check_symmetric_zero_diagonal(W: np.ndarray, name: str) -> None:
    diagonal = np.flatnonzero(np.diagonal(W))
    if diagonal.size:
        i = int(diagonal[0])
        raise ValueError(f"{name}[{i}, {i}] is {W[i, i].item()!r}; the diagonal must be zero")
    asymmetric = np.argwhere(W != W.T)
    if asymmetric.size:
        i, j = (int(v) for v in asymmetric[0])
        raise ValueError(
            f"{name} must be symmetric: [{i}, {j}] is {W[i, j].item()!r} "
            f"but [{j}, {i}] is {W[j, i].item()!r}"
        )
