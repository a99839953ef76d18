"""Multi-layer perceptrons trained by back-propagation: regression and classification.

- ``estimators``: :class:`MLPRegressor`, :class:`MLPClassifier`, :func:`load_model`;
- ``base``: the network they share (parameters, forward/backward, training loop);
- ``flat``: the one flat weight vector, its per-layer views and batch buffers;
- ``activations``, ``losses``, ``optimizers``, ``initializers``: the plain functions
  and tables the network is built from;
- ``io``: model files (one ``.npz``, no pickle).
"""

from .base import DivergenceError
from .estimators import MLPClassifier, MLPRegressor, load_model, network_from_arrays

__all__ = ["DivergenceError", "MLPClassifier", "MLPRegressor", "load_model", "network_from_arrays"]
