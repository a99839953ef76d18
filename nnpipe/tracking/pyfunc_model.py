"""The MLflow pyfunc for nnpipe models (models-from-code: this file is the model's code).

MLflow copies this file into each logged model and runs it on load; the model
itself is one TrainedModel ``.npz`` artifact (network, feature scaler and column
names; no pickle). ``predict(df)`` returns exactly ``TrainedModel.predict``:
nnpipe's own prediction in the original target units, or a classifier's labels;
``predict(df, params={"predict_proba": True})`` a classifier's probabilities.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from mlflow.models import set_model
from mlflow.pyfunc import PythonModel
from mlflow.pyfunc.model import PythonModelContext

# Imported from nnpipe.tracking.model, not core: logged models keep this copy of the
# file, so the names it imports must stay where they are.
from nnpipe.tracking.model import (
    MODEL_ARTIFACT,
    PREDICT_PROBA,
    TrainedModel,
    probability_frame,
)


class NnpipePyfuncModel(PythonModel):
    """Feature columns in, nnpipe predictions out."""

    def load_context(self, context: PythonModelContext) -> None:
        """Read the TrainedModel file bundled with the model."""
        self.model = TrainedModel.load(context.artifacts[MODEL_ARTIFACT])

    # A DataFrame hint: MLflow derives no schema from it and keeps the logged signature
    # (named float64 columns) as the schema.
    def predict(
        self, context: PythonModelContext, model_input: pd.DataFrame, params: dict | None = None
    ) -> np.ndarray | pd.DataFrame:
        """Predictions for the rows of ``model_input`` (DataFrame with the feature columns).

        A classifier gives class labels; with ``params={"predict_proba": True}`` a
        DataFrame of class probabilities, one ``proba_<label>`` column per class.
        """
        if params and params.get(PREDICT_PROBA):
            return probability_frame(self.model, model_input)
        return self.model.predict(model_input)


set_model(NnpipePyfuncModel())
