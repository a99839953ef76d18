"""Pictures for learners: valid PNGs of the promised size, the right content, clear refusals."""

from __future__ import annotations

import pickle
import struct
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from nnpipe import HopfieldNetwork, Perceptron
from nnpipe.tracking.pictures import (
    KIND_COLOURS,
    decision_boundary_figure,
    hopfield_recall_figure,
    save_png,
)
from nnpipe.tracking.plots import render_png

ROOT = Path(__file__).resolve().parents[2]


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk, after checking the signature."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG signature"
    assert data[12:16] == b"IHDR", "first chunk is not IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def separable():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(200, 2))
    y = (X[:, 0] + 2 * X[:, 1] > 0.3).astype(int)
    return Perceptron(random_state=0).fit(X, y), X, y


@pytest.fixture(scope="module")
def xor():
    X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = np.array([0, 1, 1, 0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # XOR never converges: that is the point
        return Perceptron(max_iter=20, random_state=0).fit(X, y), X, y


def test_decision_boundary_png_has_the_figure_size(separable, tmp_path):
    model, X, y = separable
    path = tmp_path / "boundary.png"
    save_png(decision_boundary_figure(model, X, y), path)
    assert png_size(path.read_bytes()) == (640, 560)
    save_png(decision_boundary_figure(model, X, y), path, dpi=50)
    assert png_size(path.read_bytes()) == (320, 280)


def test_decision_boundary_line_is_w_dot_x_plus_b_equals_zero(separable):
    model, X, y = separable
    ax = decision_boundary_figure(model, X, y).axes[0]
    (line,) = [ln for ln in ax.get_lines() if ln.get_label().startswith("boundary")]
    points = np.column_stack([line.get_xdata(), line.get_ydata()])
    np.testing.assert_allclose(points @ model.coef_[0] + model.intercept_[0], 0, atol=1e-9)
    # The line spans the whole view, and the view holds every point.
    assert points[:, 0].min() <= X[:, 0].min() and points[:, 0].max() >= X[:, 0].max()
    assert ax.get_xlim()[0] < X[:, 0].min() and ax.get_ylim()[1] > X[:, 1].max()
    assert ax.get_xlabel() == "x1" and ax.get_ylabel() == "x2"


def test_decision_boundary_title_gives_epochs_and_errors(separable, xor):
    model, X, y = separable
    title = decision_boundary_figure(model, X, y).axes[0].get_title()
    assert title == f"Perceptron, {model.n_iter_} epochs: 0 of 200 misclassified"
    model, X, y = xor
    wrong = int((model.predict(X) != y).sum())
    title = decision_boundary_figure(model, X, y).axes[0].get_title()
    assert title == f"Perceptron, 20 epochs (not converged): {wrong} of 4 misclassified"


def test_decision_boundary_marks_exactly_the_misclassified_points(xor):
    model, X, y = xor
    wrong = model.predict(X) != y
    assert wrong.any()
    ax = decision_boundary_figure(model, X, y).axes[0]
    marked = [c for c in ax.collections if c.get_label().startswith("misclassified")]
    assert [c.get_label() for c in marked] == [f"misclassified ({int(wrong.sum())})"]
    np.testing.assert_array_equal(marked[0].get_offsets(), X[wrong])
    by_class = {c.get_label(): c for c in ax.collections if c.get_label().startswith("class")}
    np.testing.assert_array_equal(by_class["class 1 (2)"].get_offsets(), X[y == 1])


def test_decision_boundary_draws_a_vertical_line():
    X = np.array([[-1.0, 0.0], [-1.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = np.array([0, 0, 1, 1])
    model = Perceptron(shuffle=False).fit(X, y)
    assert model.coef_[0, 1] == 0.0  # the case a slope-intercept line cannot draw
    ax = decision_boundary_figure(model, X, y).axes[0]
    (line,) = [ln for ln in ax.get_lines() if ln.get_label().startswith("boundary")]
    x1 = -model.intercept_[0] / model.coef_[0, 0]
    np.testing.assert_allclose(line.get_xdata(), [x1, x1])
    np.testing.assert_allclose(line.get_ydata(), ax.get_ylim())


def test_decision_boundary_says_when_there_is_no_line():
    X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = np.array([0, 1, 1, 0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = Perceptron(max_iter=100, random_state=0).fit(X, y)
    assert not model.coef_.any()  # XOR left this run with w = 0: no line to draw
    ax = decision_boundary_figure(model, X, y).axes[0]
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert f"no boundary: w = 0, b = {model.intercept_[0]:g}" in labels
    assert "misclassified (2)" in labels


def test_decision_boundary_rejects_what_it_cannot_draw(separable):
    model, X, y = separable
    three = Perceptron(random_state=0).fit(np.c_[X, X[:, 0]], y)
    with pytest.raises(ValueError, match=r"exactly 2 features; coef_ has shape \(1, 3\)"):
        decision_boundary_figure(three, np.c_[X, X[:, 0]], y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the middle class is not separable one-vs-rest
        multi = Perceptron(max_iter=5, random_state=0).fit(X, np.digitize(X[:, 0], [-0.3, 0.3]))
    with pytest.raises(ValueError, match=r"two-class model.*shape \(3, 2\)"):
        decision_boundary_figure(multi, X, y)
    with pytest.raises(ValueError, match=r"X must be \(n_samples, 2\).*\(200, 3\)"):
        decision_boundary_figure(model, np.c_[X, X[:, 0]], y)
    with pytest.raises(
        ValueError, match=r"one label per row of X \(200 rows\); got shape \(199,\)"
    ):
        decision_boundary_figure(model, X, y[:-1])
    with pytest.raises(ValueError, match=r"labels \[7\] in y are not among the model's \[0, 1\]"):
        decision_boundary_figure(model, X, np.where(y == 1, 7, 0))
    with pytest.raises(ValueError, match=r"finite to be plotted; row 1 is \[nan, 0.5\]"):
        decision_boundary_figure(model, [[0.0, 0.0], [np.nan, 0.5]], [0, 1])
    with pytest.raises(ValueError, match="not fitted"):
        decision_boundary_figure(Perceptron(), X, y)
    with pytest.raises(ValueError, match="feature_names needs 2 names"):
        decision_boundary_figure(model, X, y, feature_names=["a"])


@pytest.fixture(scope="module")
def letters():
    """Three 5x5 letters, a network storing them, and probes ending stored/reversed/mixture."""
    art = {
        "L": ["#....", "#....", "#....", "#....", "#####"],
        "T": ["#####", "..#..", "..#..", "..#..", "..#.."],
        "X": ["#...#", ".#.#.", "..#..", ".#.#.", "#...#"],
    }
    patterns = np.array([[1 if c == "#" else -1 for c in "".join(v)] for v in art.values()])
    net = HopfieldNetwork(rule="pseudoinverse", random_state=0).fit(patterns)
    probes = np.array([patterns[0], -patterns[1], np.sign(patterns.sum(axis=0))])
    probes[0, :3] *= -1  # L with 3 pixels flipped
    result = net.recall(probes)
    return patterns, probes, result, net.classify(result), net


def test_hopfield_grid_png_has_the_promised_size(letters, tmp_path):
    patterns, probes, result, kinds, _ = letters
    path = tmp_path / "grid.png"
    save_png(hopfield_recall_figure(patterns, probes, result.states, (5, 5), kinds=kinds), path)
    # 3 panels of 1.3 in + 4 gaps of 0.35 in wide; 3 rows of 1.3 + 0.4 in plus 0.6 in on top.
    assert png_size(path.read_bytes()) == (530, 570)
    wide = hopfield_recall_figure(patterns[:, :20], probes[:1, :20], probes[:1, :20], [2, 10])
    # A 2x10 image would want panels 6.5 in wide: capped at 2.8 in.
    assert png_size(render_png(wide)) == (3 * 280 + 4 * 35, 170 + 60)


def test_hopfield_grid_shows_pattern_probe_and_state_with_the_kind(letters):
    patterns, probes, result, kinds, _ = letters
    assert list(kinds.labels) == ["stored", "reversed", "mixture"]
    fig = hopfield_recall_figure(
        patterns, probes, result.states, (5, 5), kinds=kinds, pattern_names=["L", "T", "X"]
    )
    assert len(fig.axes) == 9
    captions = [ax.get_title() for ax in fig.axes]
    assert captions[:3] == ["stored L", "probe: 3 of 25 flipped", "stored L"]
    assert captions[3:6] == ["stored T", "probe: 25 of 25 flipped", "reversed T"]
    assert captions[8] == "mixture L+T+X"
    for k, ax in enumerate(fig.axes):
        row, col = divmod(k, 3)
        shown = [patterns[kinds.nearest[row]], probes[row], result.states[row]][col]
        np.testing.assert_array_equal(ax.images[0].get_array(), shown.reshape(5, 5))
    colours = [fig.axes[k].title.get_color() for k in (2, 5, 8)]
    assert colours == [KIND_COLOURS[label] for label in kinds.labels]


def test_hopfield_grid_says_when_recall_found_another_pattern(letters):
    patterns, probes, result, _, net = letters
    fig = hopfield_recall_figure(patterns, probes[:1], result.states[:1], (5, 5), [2], ["stored"])
    assert [ax.get_title() for ax in fig.axes] == [
        "stored #2",
        f"probe: {int((probes[0] != patterns[2]).sum())} of 25 flipped",
        "stored",  # plain labels carry no pattern index
    ]
    kinds = net.classify(result.states[:1])
    fig = hopfield_recall_figure(patterns, probes[:1], result.states[:1], (5, 5), [2], kinds)
    assert fig.axes[2].get_title() == "stored #0 (wrong)"


def test_hopfield_grid_rejects_bad_shapes(letters):
    patterns, probes, result, kinds, _ = letters
    states = result.states
    with pytest.raises(ValueError, match=r"shape \[5, 6\] has 30 cells but the patterns have 25"):
        hopfield_recall_figure(patterns, probes, states, (5, 6))
    for shape in [(5, 5, 1), (0, 25), (-5, -5), "55", (2.5, 10), None]:
        with pytest.raises(ValueError, match="two positive integers"):
            hopfield_recall_figure(patterns, probes, states, shape)
    with pytest.raises(ValueError, match=r"probes \(3, 25\), states \(2, 25\)"):
        hopfield_recall_figure(patterns, probes, states[:2], (5, 5))
    with pytest.raises(ValueError, match=r"patterns \(3, 24\)"):
        hopfield_recall_figure(patterns[:, :24], probes, states, (5, 5))
    with pytest.raises(ValueError, match=r"sources \[0, 1, 3\] must lie in 0..2"):
        hopfield_recall_figure(patterns, probes, states, (5, 5), sources=[0, 1, 3])
    with pytest.raises(ValueError, match="sources must be 3 integer"):
        hopfield_recall_figure(patterns, probes, states, (5, 5), sources=[0, 1])
    with pytest.raises(ValueError, match="kinds has 2 labels but there are 3"):
        hopfield_recall_figure(patterns, probes, states, (5, 5), kinds=["stored"] * 2)
    with pytest.raises(ValueError, match="pattern_names has 2 names for 3 patterns"):
        hopfield_recall_figure(patterns, probes, states, (5, 5), pattern_names=["a", "b"])
    many = np.repeat(probes, 11, axis=0)
    with pytest.raises(ValueError, match="33 probes is too many rows; give at most 32 per picture"):
        hopfield_recall_figure(patterns, many, many, (5, 5))
    with pytest.raises(ValueError, match="must be numeric"):
        hopfield_recall_figure(patterns, [["a"] * 25], [["a"] * 25], (5, 5))


def test_pictures_pickle_so_another_process_can_render_them(separable, letters):
    model, X, y = separable
    patterns, probes, result, kinds, _ = letters
    for fig in (
        decision_boundary_figure(model, X, y),
        hopfield_recall_figure(patterns, probes, result.states, (5, 5), kinds=kinds),
    ):
        assert render_png(pickle.loads(pickle.dumps(fig))) == render_png(fig)


def test_hopfield_example_writes_the_letters_picture(tmp_path):
    path = tmp_path / "letters.png"
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "hopfield_recall.py"), "--grid", str(path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    ).stdout
    # Four damaged letters, an inverted T, then a mixture and a spurious random start.
    assert f"7 probes drawn to {path}: stored, stored, stored, stored, reversed, mixture, " in out
    assert png_size(path.read_bytes()) == (530, 7 * 170 + 60)
