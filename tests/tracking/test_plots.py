"""Figures for runs: they render to PNG, and the numbers behind them are right."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix as sk_confusion_matrix

from nnpipe.core.hopfield import HopfieldNetwork, capacity_curve, energy_trajectories
from nnpipe.tracking.plots import (
    capacity_curve_figure,
    confusion_matrix,
    confusion_matrix_figure,
    energy_trajectory_figure,
    loss_curve_figure,
)


def png_bytes(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def test_loss_curve_plots_train_and_validation_and_marks_best_epoch():
    fig = loss_curve_figure([1.0, 0.5, 0.3, 0.35], [1.1, 0.6, 0.4, 0.45])
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines["train loss"].get_ydata()) == [1.0, 0.5, 0.3, 0.35]
    assert list(lines["validation loss"].get_xdata()) == [1, 2, 3, 4]
    assert "best epoch 3" in lines
    assert png_bytes(fig).startswith(b"\x89PNG")


def test_loss_curve_switches_to_log_scale_for_a_wide_range():
    assert loss_curve_figure(np.geomspace(100, 0.01, 50)).axes[0].get_yscale() == "log"
    assert loss_curve_figure([1.0, 0.8]).axes[0].get_yscale() == "linear"


def test_loss_curve_rejects_empty_input():
    with pytest.raises(ValueError, match="non-empty"):
        loss_curve_figure([])


def test_confusion_matrix_matches_scikit_learn():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 4, 300)
    y_pred = np.where(rng.random(300) < 0.7, y_true, rng.integers(0, 4, 300))
    np.testing.assert_array_equal(
        confusion_matrix(y_true, y_pred), sk_confusion_matrix(y_true, y_pred)
    )
    labels = ["cat", "dog", "eel"]
    t = ["cat", "dog", "dog", "eel"]
    p = ["cat", "cat", "dog", "eel"]
    np.testing.assert_array_equal(
        confusion_matrix(t, p, labels), sk_confusion_matrix(t, p, labels=labels)
    )


def test_confusion_matrix_names_unknown_labels():
    with pytest.raises(ValueError, match=r"labels \[9\]"):
        confusion_matrix([0, 1], [1, 9], labels=[0, 1])


def test_confusion_matrix_figure_writes_counts_in_cells():
    fig = confusion_matrix_figure([0, 0, 1, 1, 1], [0, 1, 1, 1, 0])
    texts = sorted(t.get_text() for t in fig.axes[0].texts)
    assert texts == ["1", "1", "1", "2"]
    assert png_bytes(fig).startswith(b"\x89PNG")


def test_confusion_matrix_figure_keeps_long_labels_inside_the_picture():
    names = ["setosa flower", "versicolor", "virginica with a rather long name", *"abcde"]
    rng = np.random.default_rng(0)
    t = np.array(names)[rng.integers(0, 8, 400)]
    fig = confusion_matrix_figure(t, t[::-1], labels=sorted(names))
    png = png_bytes(fig)  # draws the figure, so the text has its final place
    assert png.startswith(b"\x89PNG")
    ax = fig.axes[0]
    box = fig.bbox
    texts = [*ax.get_xticklabels(), *ax.get_yticklabels(), ax.xaxis.label, ax.yaxis.label]
    for text in texts:
        extent = text.get_window_extent()
        assert box.x0 <= extent.x0 and extent.x1 <= box.x1, text.get_text()
        assert box.y0 <= extent.y0 and extent.y1 <= box.y1, text.get_text()
    shown = [label.get_text() for label in ax.get_yticklabels()]
    assert "virginica with a ra\u2026" in shown and "versicolor" in shown


def test_energy_trajectory_draws_one_line_per_probe():
    fig = energy_trajectory_figure([[-3.0, -8.0, -9.0], [-1.0, -9.0]], labels=["a", "b"])
    lines = fig.axes[0].get_lines()
    assert [line.get_label() for line in lines] == ["a", "b"]
    assert list(lines[1].get_ydata()) == [-1.0, -9.0]
    assert png_bytes(fig).startswith(b"\x89PNG")
    with pytest.raises(ValueError, match="empty"):
        energy_trajectory_figure([])


def test_energy_trajectories_of_real_recall_never_rise():
    rng = np.random.default_rng(0)
    patterns = rng.choice([-1, 1], size=(3, 64)).astype(np.int8)
    net = HopfieldNetwork(random_state=0).fit(patterns)
    probes = patterns.copy()
    probes[:, :12] *= -1
    energies = energy_trajectories(net, probes, max_sweeps=4)
    assert energies.shape == (3, 5)
    np.testing.assert_array_equal(energies[:, 0], net.energy(probes))
    np.testing.assert_array_equal(energies[:, -1], net.recall(probes).energy)
    assert np.all(np.diff(energies, axis=1) <= 1e-9)
    assert net.max_iter == 100  # the caller's network is left as it was
    assert png_bytes(energy_trajectory_figure(energies)).startswith(b"\x89PNG")


def test_capacity_curve_plots_the_core_capacity_table():
    table = capacity_curve(48, [0.05, 0.15, 0.25], [0.0, 0.1], trials=1, random_state=0)
    fig = capacity_curve_figure(table)
    ax = fig.axes[0]
    labels = [line.get_label() for line in ax.get_lines()]
    assert "hebbian, noise 0.1" in labels and "hebbian, noise 0" in labels
    limit = [line for line in ax.get_lines() if "0.138" in line.get_label()]
    assert limit and limit[0].get_xdata()[0] == pytest.approx(0.138)
    solid = next(line for line in ax.get_lines() if line.get_label() == "hebbian, noise 0.1")
    rows = [i for i, nz in enumerate(table["noise"]) if nz == 0.1]
    np.testing.assert_array_equal(solid.get_ydata(), np.asarray(table["exact_recall"])[rows])
    assert "N = 48" in ax.get_title()
    assert png_bytes(fig).startswith(b"\x89PNG")


def test_capacity_curve_names_missing_or_ragged_columns():
    with pytest.raises(ValueError, match="exact_recall"):
        capacity_curve_figure({"load": [0.1]})
    with pytest.raises(ValueError, match="'exact_recall' has 1 rows, not 2"):
        capacity_curve_figure({"load": [0.1, 0.2], "exact_recall": [1.0]})


def test_every_figure_pickles_so_another_process_can_render_it():
    # A figure built on a Dask worker or in a subprocess can be sent back and
    # rendered elsewhere, identically.
    table = capacity_curve(32, [0.05, 0.2], [0.0], trials=1, random_state=0)
    figures = [
        loss_curve_figure(np.geomspace(10.0, 0.01, 50), np.geomspace(12.0, 0.02, 50)),
        loss_curve_figure([1.0, 0.9, 0.8], log_scale=False),
        confusion_matrix_figure([0, 1, 2, 1], [0, 2, 2, 1]),
        energy_trajectory_figure([np.array([-3.0, -5.0, -6.0]), np.array([-2.0, -2.5])]),
        capacity_curve_figure(table),
    ]
    for fig in figures:
        again = pickle.loads(pickle.dumps(fig))
        assert png_bytes(again) == png_bytes(fig)
