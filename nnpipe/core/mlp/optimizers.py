"""Gradient-descent optimizers over one flat parameter vector.

The network keeps every weight and bias in one contiguous array (the layer
matrices are views into it), so an optimizer step is a handful of in-place
vector operations with no per-layer Python loop and no allocation. ``update``
is the template method: bookkeeping here, the maths in each ``_apply``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

# Elements per block when a step is applied block-wise (5 arrays x 64 KiB stay in L2).
BLOCK = 16_384
# Below this the adaptive schedule gives up (scikit-learn's threshold).
MIN_ADAPTIVE_LR = 1e-6
ADAPTIVE_DIVISOR = 5.0


class Optimizer:
    """Shared state: learning rate, step count, scratch buffer, save/restore."""

    _state_arrays: tuple[str, ...] = ()

    def __init__(self, n_params: int, dtype: np.dtype, learning_rate_init: float):
        self.learning_rate_init = float(learning_rate_init)
        self.learning_rate = float(learning_rate_init)
        self.t = 0
        self._tmp = np.zeros(n_params, dtype=dtype)

    def update(self, params: np.ndarray, grads: np.ndarray) -> None:
        """Apply one step to ``params`` in place, given ``grads`` (same shape)."""
        self.t += 1
        n = params.shape[0]
        if n < 4 * BLOCK:
            self._apply(params, grads, slice(None))
            return
        # Large vectors go block by block, so the several passes of one step over a
        # block hit the CPU cache instead of main memory.
        for start in range(0, n, BLOCK):
            block = slice(start, start + BLOCK)
            self._apply(params[block], grads[block], block)

    def _apply(self, params: np.ndarray, grads: np.ndarray, block: slice) -> None:
        """Update ``params`` (the ``block`` of the full vector) given ``grads``."""
        raise NotImplementedError

    def epoch_end(self, samples_seen: int) -> None:
        """Hook for per-epoch schedules (``invscaling``)."""

    def on_plateau(self) -> bool:
        """Called when the loss stopped improving; return True when training should stop."""
        return True

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Arrays and scalars needed to resume exactly."""
        arrays = {name: getattr(self, name) for name in self._state_arrays}
        return arrays, {"t": self.t, "learning_rate": self.learning_rate}

    def load_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        """Restore what :meth:`state` returned (arrays copied into the existing buffers)."""
        for name in self._state_arrays:
            getattr(self, name)[...] = arrays[name]
        self.t = int(meta["t"])
        self.learning_rate = float(meta["learning_rate"])


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum and LR schedules.

    ``v = momentum * v - lr * g``; then ``p += v`` (classical) or
    ``p += momentum * v - lr * g`` (Nesterov), as in scikit-learn.
    """

    _state_arrays = ("velocity",)

    def __init__(
        self,
        n_params: int,
        dtype: np.dtype,
        learning_rate_init: float = 0.1,
        learning_rate: str = "constant",
        momentum: float = 0.9,
        nesterov: bool = True,
        power_t: float = 0.5,
    ):
        super().__init__(n_params, dtype, learning_rate_init)
        self.schedule = learning_rate
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self.power_t = float(power_t)
        self.velocity = np.zeros(n_params, dtype=dtype)

    def _apply(self, params: np.ndarray, grads: np.ndarray, block: slice) -> None:
        lr, mu, v, tmp = self.learning_rate, self.momentum, self.velocity[block], self._tmp[block]
        np.multiply(grads, lr, out=tmp)  # lr * g
        if mu == 0.0:
            params -= tmp
            return
        v *= mu
        v -= tmp
        if self.nesterov:
            params -= tmp
            np.multiply(v, mu, out=tmp)
            params += tmp
        else:
            params += v

    def epoch_end(self, samples_seen: int) -> None:
        if self.schedule == "invscaling":
            self.learning_rate = self.learning_rate_init / (samples_seen + 1) ** self.power_t

    def on_plateau(self) -> bool:
        if self.schedule != "adaptive" or self.learning_rate <= MIN_ADAPTIVE_LR:
            return True
        self.learning_rate /= ADAPTIVE_DIVISOR
        return False


class Adam(Optimizer):
    """Adam (Kingma & Ba) with the bias correction folded into the step size.

    ``m = b1 m + (1-b1) g``; ``v = b2 v + (1-b2) g^2``;
    ``p -= lr * sqrt(1-b2^t)/(1-b1^t) * m / (sqrt(v) + eps)``.

    The buffers hold ``m / (1-b1)`` and ``v / (1-b2)`` so that each moment update is
    two or three passes (``m' = b1 m' + g``); the constants go into the step, which
    is the same update with fewer passes over the parameters.
    """

    _state_arrays = ("m", "v")

    def __init__(
        self,
        n_params: int,
        dtype: np.dtype,
        learning_rate_init: float = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
    ):
        super().__init__(n_params, dtype, learning_rate_init)
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)
        self.m = np.zeros(n_params, dtype=dtype)  # first moment / (1 - beta_1)
        self.v = np.zeros(n_params, dtype=dtype)  # second moment / (1 - beta_2)

    def _apply(self, params: np.ndarray, grads: np.ndarray, block: slice) -> None:
        b1, b2 = self.beta_1, self.beta_2
        m, v, tmp = self.m[block], self.v[block], self._tmp[block]
        # Python floats, not NumPy float64 scalars: those would promote the float32
        # operations below to float64 loops with casting.
        step = self.learning_rate * math.sqrt(1.0 - b2**self.t) / (1.0 - b1**self.t)
        root = math.sqrt(1.0 - b2)
        m *= b1
        m += grads
        np.multiply(grads, grads, out=tmp)
        v *= b2
        v += tmp
        # m / (sqrt(v) + eps) with the stored (scaled) moments:
        np.sqrt(v, out=tmp)
        tmp += self.epsilon / root
        np.divide(m, tmp, out=tmp)
        tmp *= step * (1.0 - b1) / root
        params -= tmp

    @property
    def first_moment(self) -> np.ndarray:
        """The running mean of gradients, m."""
        return self.m * (1.0 - self.beta_1)

    @property
    def second_moment(self) -> np.ndarray:
        """The running mean of squared gradients, v."""
        return self.v * (1.0 - self.beta_2)


OPTIMIZERS = {"sgd": SGD, "adam": Adam}
