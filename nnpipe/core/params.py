"""scikit-learn's parameter protocol, shared by every nnpipe estimator and scaler."""

from __future__ import annotations

from typing import Any


class Params:
    """``get_params`` / ``set_params`` / ``repr`` over the names in ``_param_names``.

    ``__init__`` stores each constructor argument under its own name, so
    ``sklearn.base.clone`` and grid searches work without nnpipe importing sklearn.
    """

    _param_names: tuple[str, ...] = ()

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor parameters (scikit-learn convention)."""
        return {k: getattr(self, k) for k in self._param_names}

    def set_params(self, **params: Any):
        """Set constructor parameters; an unknown name is a ValueError naming the allowed ones."""
        for key in params:
            if key not in self._param_names:
                allowed = ", ".join(repr(name) for name in self._param_names)
                raise ValueError(
                    f"{type(self).__name__} has no parameter {key!r}; allowed: {allowed}"
                )
        for key, value in params.items():
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"
