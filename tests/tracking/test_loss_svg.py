"""The loss curve logged with every training run: an SVG drawn without matplotlib."""

from __future__ import annotations

import subprocess
import sys
from xml.etree import ElementTree

import numpy as np
import pytest

from nnpipe.tracking import loss_curve_svg

SVG = "{http://www.w3.org/2000/svg}"


def parse(text: str) -> ElementTree.Element:
    return ElementTree.fromstring(text)


def points(line: ElementTree.Element) -> np.ndarray:
    return np.array([[float(v) for v in p.split(",")] for p in line.get("points").split()])


def tick_labels(root: ElementTree.Element) -> list[str]:
    return [t.text for t in root.iter(f"{SVG}text") if t.get("text-anchor") == "end"]


def test_train_and_validation_lines_with_the_best_epoch_marked():
    root = parse(loss_curve_svg([1.0, 0.6, 0.5, 0.45], [1.1, 0.7, 0.8, 0.9], title="Loss & co"))
    train, val = root.iter(f"{SVG}polyline")
    assert (train.get("class"), val.get("class")) == ("train", "validation")
    xy = points(train)
    assert xy.shape == (4, 2)
    assert np.all(np.diff(xy[:, 0]) > 0)  # epochs left to right
    assert np.all(np.diff(xy[:, 1]) > 0)  # falling loss: lower on the page (larger y)
    best = next(line for line in root.iter(f"{SVG}line") if line.get("class") == "best")
    assert float(best.get("x1")) == pytest.approx(points(val)[1, 0])  # epoch 2
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "Loss & co" in texts and "best epoch 2" in texts


def test_a_wide_positive_range_gets_a_log_axis_a_narrow_one_a_linear_axis():
    wide = tick_labels(parse(loss_curve_svg([10.0, 1.0, 0.01])))
    assert wide == ["0.01", "0.1", "1", "10"]
    narrow = [float(v) for v in tick_labels(parse(loss_curve_svg([0.31, 0.3, 0.29])))]
    assert narrow[0] <= 0.29 and narrow[-1] >= 0.31 and len(narrow) >= 3
    # The drawn points lie within the axis (between the first and last tick).
    root = parse(loss_curve_svg([0.31, 0.3, 0.29]))
    ys = points(next(root.iter(f"{SVG}polyline")))[:, 1]
    grid = [float(g.get("y1")) for g in root.iter(f"{SVG}line") if g.get("stroke") == "#ddd"]
    assert min(grid) <= ys.min() and ys.max() <= max(grid)


def test_a_diverged_epoch_breaks_the_line_and_one_epoch_is_a_dot():
    root = parse(loss_curve_svg([0.5, 0.4, float("nan"), 0.3, 0.2]))
    assert [len(points(line)) for line in root.iter(f"{SVG}polyline")] == [2, 2]
    one = parse(loss_curve_svg([0.3], [0.25]))
    assert len(list(one.iter(f"{SVG}circle"))) == 2


def test_an_empty_or_two_dimensional_curve_is_refused():
    with pytest.raises(ValueError, match="non-empty 1-D"):
        loss_curve_svg([])
    with pytest.raises(ValueError, match="non-empty 1-D"):
        loss_curve_svg([[0.1, 0.2]])


def test_drawing_it_imports_no_matplotlib():
    code = (
        "import sys; from nnpipe.tracking import loss_curve_svg; loss_curve_svg([1.0, 0.5]);"
        "import flows.train_bp; print('matplotlib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
