"""With its defaults, training on two workers learns as well as one process, epoch for epoch.

Three seeds of single-process training give the spread; the median of three
distributed runs (default H, warm-up and learning-rate scaling) at the same
epoch budget must land in it (widened by a tenth of the mean, as three seeds
give a narrow spread).
"""

from __future__ import annotations

import numpy as np
import pytest

from flows.datasets import write_dataset
from nnpipe.core.mlp import MLPClassifier, MLPRegressor
from nnpipe.data import ParquetDataset, TrainValidationSplit, fit_scalers
from nnpipe.data.scaling import fit_scalers_and_classes
from nnpipe.training import train_distributed, train_out_of_core

EPOCHS = 6


def final_losses(train, estimator, dataset, seeds, **options):
    losses = []
    for seed in seeds:
        model = estimator(hidden_layer_sizes=(32,), batch_size=64, random_state=seed)
        result = train(
            model, dataset, epochs=EPOCHS, random_state=seed, early_stopping=False,
            restore_best=False, split=TrainValidationSplit(0.2), **options,
        )  # fmt: skip
        losses.append(result.history[-1]["val_loss"])
    return losses


@pytest.mark.parametrize("kind", ["regression", "classification"])
def test_two_workers_land_in_the_single_process_spread(kind, tmp_path, two_workers):
    path = write_dataset(kind, tmp_path / kind, n_rows=3_000, n_features=8,
                         rows_per_partition=375)["path"]  # fmt: skip
    split = TrainValidationSplit(0.2)
    if kind == "regression":
        dataset = ParquetDataset(path, targets="y")
        x_scaler, y_scaler = fit_scalers(dataset, subset="train", split=split)
        estimator, scaling = MLPRegressor, {"x_scaler": x_scaler, "y_scaler": y_scaler}
    else:
        dataset = ParquetDataset(path, targets="label", labels=True)
        x_scaler, classes = fit_scalers_and_classes(dataset, split=split)
        estimator = MLPClassifier
        scaling = {"x_scaler": x_scaler, "classes": np.arange(len(classes))}
    single = final_losses(train_out_of_core, estimator, dataset, range(3), **scaling)
    distributed = final_losses(
        train_distributed, estimator, dataset, range(3), workers=2, client=two_workers, **scaling
    )
    margin = 0.1 * np.mean(single)
    assert min(single) - margin <= np.median(distributed) <= max(single) + margin, (
        single,
        distributed,
    )
