"""Model files for the MLPs: one .npz with weights, optimizer and RNG state, no pickle.

Everything needed to continue training exactly is saved: the flat parameter
vector, the best-epoch copy, the optimizer's moment buffers and step count, the
loss curves and early-stopping counters, the target encoding and the shuffling
generator's state. Train, save, load and train on gives the same weights, bit for
bit, as training without the break.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..serialization import ModelFileError, NpzFileMixin, params_from_json, params_to_json, require
from ..validation import check_is_fitted


class MLPFileMixin(NpzFileMixin):
    """``save`` / ``load`` for BaseMLP; subclasses add their target state via the hooks."""

    def to_arrays(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """What :meth:`save` writes, as (arrays, JSON-able meta): weights, optimizer, RNG."""
        check_is_fitted(self, "_params")
        opt_arrays, opt_meta = self._optimizer.state()
        arrays = {"params": self._params, "best_params": self._best_params}
        arrays.update({f"opt_{k}": v for k, v in opt_arrays.items()})
        meta = {
            "kind": type(self).__name__,
            "params": params_to_json(self.get_params(), type(self).__name__),
            "layer_sizes": self._layer_sizes,
            "optimizer": opt_meta,
            "rng": _jsonable_state(self._rng.bit_generator.state),
            "n_iter_": self.n_iter_,
            "t_": self.t_,
            "loss_curve_": self.loss_curve_,
            "validation_loss_curve_": self.validation_loss_curve_,
            "validation_scores_": self.validation_scores_,
            "best_loss_": None if not np.isfinite(self.best_loss_) else self.best_loss_,
            "best_epoch_": self.best_epoch_,
            "no_improvement_count": self._no_improvement_count,
        }
        self._save_extra(arrays, meta)
        return arrays, meta

    @classmethod
    def from_arrays(
        cls, arrays: dict[str, np.ndarray], meta: dict[str, Any], path: Any = "<memory>"
    ):
        """Rebuild a model from :meth:`to_arrays` output; ``path`` names the source in errors."""
        try:
            model = cls(**params_from_json(meta["params"]))
            model._validate_params()
            sizes = [int(s) for s in meta["layer_sizes"]]
            if sizes[1:-1] != model._hidden:
                raise ModelFileError(f"{str(path)!r}: layer sizes {sizes} contradict parameters")
            model._load_extra(arrays, meta, path)  # classes_ decide the output activation
            model._initialize(sizes[0], sizes[-1])
            n_total = model._params.shape[0]
            model._params[...] = require(arrays, "params", (n_total,), path)
            model._best_params[...] = require(arrays, "best_params", (n_total,), path)
            opt_arrays = {
                k: require(arrays, f"opt_{k}", (n_total,), path)
                for k in model._optimizer._state_arrays
            }
            model._optimizer.load_state(opt_arrays, meta["optimizer"])
            model._rng = _rng_from_state(meta["rng"])
            model.n_iter_ = int(meta["n_iter_"])
            model.t_ = int(meta["t_"])
            model.loss_curve_ = [float(v) for v in meta["loss_curve_"]]
            model.validation_loss_curve_ = [float(v) for v in meta["validation_loss_curve_"]]
            model.validation_scores_ = [float(v) for v in meta["validation_scores_"]]
            best = meta["best_loss_"]
            model.best_loss_ = np.inf if best is None else float(best)
            model.best_epoch_ = int(meta["best_epoch_"])
            model._no_improvement_count = int(meta["no_improvement_count"])
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, ModelFileError):
                raise
            raise ModelFileError(
                f"{str(path)!r} is not a valid {cls.__name__} file: {exc}"
            ) from exc
        return model

    def _save_extra(self, arrays: dict, meta: dict) -> None:
        """Subclass hook: add target encoding state."""

    def _load_extra(self, arrays: dict, meta: dict, path: Any) -> None:
        """Subclass hook: restore target encoding state."""


def _jsonable_state(state: Any) -> Any:
    if isinstance(state, dict):
        return {k: _jsonable_state(v) for k, v in state.items()}
    if isinstance(state, np.ndarray):
        return {"__array__": state.tolist(), "dtype": state.dtype.name}
    if isinstance(state, np.integer):
        return int(state)
    return state


def _state_from_json(state: Any) -> Any:
    if isinstance(state, dict):
        if "__array__" in state:
            return np.asarray(state["__array__"], dtype=state["dtype"])
        return {k: _state_from_json(v) for k, v in state.items()}
    return state


def _rng_from_state(state: dict) -> np.random.Generator:
    state = _state_from_json(state)
    name = state["bit_generator"]
    bit_generator = getattr(np.random, name, None)
    if bit_generator is None or not isinstance(bit_generator, type):
        raise ValueError(f"unknown bit generator {name!r}")
    bg = bit_generator()
    bg.state = state
    return np.random.Generator(bg)
