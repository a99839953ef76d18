"""The pyfunc code that models logged by earlier nnpipe versions carry (code verbatim).

Such a model holds its own copy of this file, with "network" and "feature_scaler"
artifacts; test_model.py checks that it still loads and predicts with today's nnpipe.
Not collected by pytest; MLflow runs it when the test loads the model.

Original docstring: the MLflow pyfunc for nnpipe networks (models-from-code: this
file is the model's code).

MLflow copies this file into each logged model and runs it on load; the network
and feature scaler come from the model's ``.npz`` artifacts (no pickle).
``predict(df)`` returns exactly ``network.predict(scaler.transform(X))``: nnpipe's
own prediction in the original target units.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from mlflow.models import set_model
from mlflow.pyfunc import PythonModel
from mlflow.pyfunc.model import PythonModelContext

from nnpipe.tracking.model import (
    NETWORK_ARTIFACT,
    SCALER_ARTIFACT,
    default_feature_names,
    load_network,
    load_scaler,
    predict_frame,
)


class NnpipePyfuncModel(PythonModel):
    """Feature columns in, nnpipe predictions out."""

    def load_context(self, context: PythonModelContext) -> None:
        """Read the network and scaler files bundled with the model."""
        self.network = load_network(context.artifacts[NETWORK_ARTIFACT])
        scaler_file = context.artifacts.get(SCALER_ARTIFACT)
        self.scaler = load_scaler(scaler_file) if scaler_file else None
        config = context.model_config or {}
        self.feature_names = list(
            config.get("feature_names") or default_feature_names(self.network.n_features_in_)
        )

    # A DataFrame hint: MLflow derives no schema from it and keeps the logged signature
    # (named float64 columns) as the schema.
    def predict(
        self, context: PythonModelContext, model_input: pd.DataFrame, params: dict | None = None
    ) -> np.ndarray:
        """Predictions for the rows of ``model_input`` (DataFrame with the feature columns)."""
        return predict_frame(self.network, self.scaler, self.feature_names, model_input)


set_model(NnpipePyfuncModel())
