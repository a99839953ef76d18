"""scikit-learn's parameter protocol, shared by every nnpipe estimator and scaler."""

from __future__ import annotations

import functools
import inspect
from typing import Any


@functools.cache
def init_parameter_names(cls: type) -> tuple[str, ...]:
    """Names of ``cls.__init__``'s parameters, in signature order (self, *args, **kwargs excluded).

    The signature is the one list of parameters, as in scikit-learn: ``get_params``,
    ``set_params`` and ``clone`` all read it, so a new constructor argument needs no
    second list to be kept in step.
    """
    if cls.__init__ is object.__init__:
        return ()
    skipped = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]  # drop self
    return tuple(p.name for p in parameters if p.kind not in skipped)


class Params:
    """``get_params`` / ``set_params`` / ``repr`` over the parameters of ``__init__``.

    ``__init__`` stores each constructor argument under its own name, so
    ``sklearn.base.clone`` and grid searches work without nnpipe importing sklearn.
    """

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor parameters (scikit-learn convention)."""
        return {k: getattr(self, k) for k in init_parameter_names(type(self))}

    def set_params(self, **params: Any):
        """Set constructor parameters; an unknown name is a ValueError naming the allowed ones."""
        names = init_parameter_names(type(self))
        for key in params:
            if key not in names:
                allowed = ", ".join(repr(name) for name in names)
                raise ValueError(
                    f"{type(self).__name__} has no parameter {key!r}; allowed: {allowed}"
                )
        for key, value in params.items():
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"
