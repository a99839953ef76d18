"""Real MLflow services on 127.0.0.1, started and always stopped here.

Both processes start together (each spends seconds importing MLflow): an
``mlflow server`` that the tracker logs to over HTTP, and ``mlflow models serve``
serving the pyfunc of a real nnpipe regressor; a classifier is served on its own.

The regressor is served with MLflow's default environment manager, as a user
outside nnpipe's environment would: MLflow builds a virtualenv from the model's
requirements alone (no nnpipe installed there), so the model must bring nnpipe's
code itself. Building it the first time on a machine takes about two minutes
(pip installing mlflow-skinny, numpy, pandas); later runs reuse it.
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient

from nnpipe.core.mlp import MLPRegressor
from nnpipe.tracking import MlflowTracker, loss_curve_figure
from nnpipe.tracking.tracker import ERROR_TAG, TRACEBACK_ARTIFACT

from .conftest import (
    FEATURES,
    launch_model_server,
    launch_tracking_server,
    stop,
    wait_for_http,
)

pytestmark = [pytest.mark.service, pytest.mark.slow]


@pytest.fixture(scope="module")
def services(tmp_path_factory, empty_store_file, logged_regressor, model_store):
    """URLs of a tracking server and a model server; both processes stopped afterwards."""
    root = tmp_path_factory.mktemp("services")
    _, _, logged = logged_regressor
    _, store_uri = model_store
    started = []
    try:
        started.append(launch_tracking_server(root / "tracking", empty_store_file))
        started.append(
            launch_model_server(logged.model_uri, store_uri, root / "model", env_manager=None)
        )
        tracking, model = started
        wait_for_http(f"{tracking[1]}/health", tracking[0], timeout=150, log=tracking[2])
        wait_for_http(f"{model[1]}/ping", model[0], timeout=420, log=model[2])
        yield {"tracking": tracking[1], "model": model[1]}
    finally:
        for proc, _, _ in started:
            stop(proc)


def train(model, X, y, epochs, callback, corrupt_at=None):
    """A small streaming loop: minibatch partial_fit, record_epoch, one callback per epoch."""
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        for start in range(0, len(X), 32):
            xb = X[start : start + 32]
            if epoch == corrupt_at:
                xb = xb[:, :2]  # a partition with a column missing
            model.partial_fit(xb, y[start : start + 32])
        train_loss = model.data_loss(X, y)
        model.record_epoch(train_loss)
        callback(
            {
                "epoch": epoch,
                "train_loss": train_loss,
                "learning_rate": model.learning_rate_,
                "epoch_seconds": time.perf_counter() - t0,
            }
        )


def test_runs_params_metrics_artifacts_and_failure_through_a_server(services):
    url = services["tracking"]
    rng = np.random.default_rng(0)
    X = rng.normal(size=(128, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) - 3.0
    tracker = MlflowTracker("nnpipe-train", tracking_uri=url)

    with tracker.run("ok") as ok_id:
        tracker.log_params({"model": {"hidden_layer_sizes": [8]}, "seed": 0})
        model = MLPRegressor(hidden_layer_sizes=(8,), random_state=0)
        train(model, X, y, 5, tracker.epoch_callback())
        tracker.log_dict({"epochs": 5}, "config.json")
        tracker.log_figure(loss_curve_figure(model.loss_curve_), "plots/loss_curve.png")

    with pytest.raises(ValueError):
        with tracker.run("breaks") as bad_id:
            model = MLPRegressor(hidden_layer_sizes=(8,), random_state=0)
            train(model, X, y, 5, tracker.epoch_callback(), corrupt_at=3)

    client = MlflowClient(tracking_uri=url)
    ok = client.get_run(ok_id)
    assert ok.info.status == "FINISHED"
    assert ok.data.params["model.hidden_layer_sizes"] == "[8]"
    steps = [m.step for m in client.get_metric_history(ok_id, "train_loss")]
    assert steps == [1, 2, 3, 4, 5]
    config = Path(client.download_artifacts(ok_id, "config.json"))
    assert json.loads(config.read_text()) == {"epochs": 5}
    png = Path(client.download_artifacts(ok_id, "plots/loss_curve.png")).read_bytes()
    assert png.startswith(b"\x89PNG")

    bad = client.get_run(bad_id)
    assert bad.info.status == "FAILED"
    assert bad.data.tags[ERROR_TAG].startswith("ValueError")
    # The two epochs finished before the failure are kept.
    assert [m.step for m in client.get_metric_history(bad_id, "train_loss")] == [1, 2]
    trace = Path(client.download_artifacts(bad_id, TRACEBACK_ARTIFACT)).read_text()
    assert "partial_fit" in trace


def test_served_model_answers_invocations_with_nnpipe_predictions(services, regressor_files):
    _, _, X, net, scaler = regressor_files
    rows = X[:20]
    body = json.dumps({"dataframe_split": {"columns": FEATURES, "data": rows.tolist()}}).encode()
    request = urllib.request.Request(
        f"{services['model']}/invocations",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        answer = json.loads(response.read())
    served = np.asarray(answer["predictions"], dtype=np.float64)
    want = net.predict(scaler.transform(rows))
    # float32 predictions survive JSON exactly (float32 -> float64 is exact).
    np.testing.assert_array_equal(served.astype(want.dtype).reshape(want.shape), want)
    assert want.min() < 0  # original target units


def test_served_classifier_answers_labels_or_probabilities_by_param(model_store, tmp_path_factory):
    from nnpipe.core.mlp import MLPClassifier
    from nnpipe.core.trained_model import TrainedModel

    rng = np.random.default_rng(5)
    X = rng.normal(size=(200, 2))
    labels = np.where(X[:, 0] > X[:, 1], "left", "right")
    net = MLPClassifier(hidden_layer_sizes=(6,), max_iter=30, random_state=0).fit(X, labels)
    root = tmp_path_factory.mktemp("served-classifier")
    TrainedModel(net, None, ["u", "v"]).save(root / "model.npz")
    tracker = MlflowTracker("nnpipe-serve-classifier")
    with tracker.run():
        logged = tracker.log_model(root / "model.npz", input_example=X[:2])
    proc, url, log = launch_model_server(logged.model_uri, model_store[1], root / "serve")
    try:
        wait_for_http(f"{url}/ping", proc, timeout=150, log=log)

        def invoke(**extra):
            frame = {"columns": ["u", "v"], "data": X[:10].tolist()}
            body = json.dumps({"dataframe_split": frame, **extra}).encode()
            request = urllib.request.Request(
                f"{url}/invocations", data=body, headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.loads(response.read())["predictions"]

        assert invoke() == net.predict(X[:10]).tolist()
        proba = invoke(params={"predict_proba": True})
        assert [sorted(row) for row in proba] == [["proba_left", "proba_right"]] * 10
        got = np.array([[row["proba_left"], row["proba_right"]] for row in proba])
        np.testing.assert_allclose(got, net.predict_proba(X[:10]), rtol=1e-6)
    finally:
        stop(proc)
