"""`nnpipe predict` answers alike for a model file, runs:/ and models:/."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from nnpipe.cli import EXIT_OK
from tests import test_cli

# The module-scoped fixtures from tests/test_cli.py run again here; `nnpipe` is in conftest.
data, trained = test_cli.data, test_cli.trained
assert_clean_error = test_cli.assert_clean_error

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_predict_one_row_says_one_prediction(nnpipe, trained, data, tmp_path):
    model = next(trained[0].glob("models/*/model.npz"))
    pd.read_parquet(next((data / "reg").glob("*.parquet"))).head(1).to_csv(
        tmp_path / "one.csv", index=False
    )
    code, out, err = nnpipe("predict", model, tmp_path / "one.csv", tmp_path / "one-out.csv")
    assert code == EXIT_OK, err
    assert out.startswith("wrote 1 prediction to ")


@pytest.fixture
def model_sources(trained):
    """The one trained model four ways: its .npz file, runs:/, models:/ and @champion URIs."""
    npz = next(trained[0].glob("models/*/model.npz"))
    registered = re.search(
        r"registered as (models:/\S+) \((?:now @champion|@champion unchanged)\)", trained[1]
    ).group(1)
    name, version = registered.removeprefix("models:/").split("/")
    # Earlier tests of the session may hold a better champion: point it at this version.
    from mlflow import MlflowClient

    MlflowClient().set_registered_model_alias(name, "champion", version)
    alias = f"models:/{name}@champion"
    return {
        "npz": str(npz),
        "runs": f"runs:/{npz.parent.name}/model",
        "models": registered,
        "champion": alias,
    }


@pytest.mark.parametrize("source", ["npz", "runs", "models", "champion"])
def test_predict_answers_bad_input_the_same_for_every_model_source(
    nnpipe, model_sources, data, tmp_path, source
):
    model = model_sources[source]
    frame = pd.read_parquet(next((data / "reg").glob("*.parquet"))).head(4)  # x0..x2, y
    frame.drop(columns="x2").to_csv(tmp_path / "missing.csv", index=False)
    code, _, err = nnpipe("predict", model, tmp_path / "missing.csv", tmp_path / "o.csv")
    assert_clean_error(code, err, "missing feature columns ['x2']")
    assert len(err.strip().splitlines()) == 1
    bad = frame.astype({"x2": object})
    bad.loc[2, "x2"] = "abc"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    code, _, err = nnpipe("predict", model, tmp_path / "bad.csv", tmp_path / "o.csv")
    assert_clean_error(code, err, "feature column 'x2' is not numeric: row 3 of", "'abc'")
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "o.csv").exists()
    # Extra columns are carried to the output; whole numbers are numbers (MLflow's
    # schema alone refuses int64 for a double input).
    frame.assign(note="kept", x0=frame["x0"].round()).astype({"x0": "int64"}).to_csv(
        tmp_path / "extra.csv", index=False
    )
    code, out, err = nnpipe("predict", model, tmp_path / "extra.csv", tmp_path / "o.csv")
    assert code == EXIT_OK, err
    written = pd.read_csv(tmp_path / "o.csv")
    assert list(written.columns) == ["x0", "x1", "x2", "y", "note", "prediction"]
    from nnpipe.core.trained_model import TrainedModel

    expected = TrainedModel.load(model_sources["npz"]).predict(written.astype({"x0": float}))
    np.testing.assert_allclose(written["prediction"], np.ravel(expected), rtol=1e-5)
