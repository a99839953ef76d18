"""Pictures for understanding: a perceptron's decision boundary, Hopfield recall as images.

Same rules as ``plots``: ``matplotlib.figure.Figure`` on the Agg canvas, never
``pyplot``; each function returns the figure and checks its input first, so a bad
shape fails with a message naming the shapes instead of a drawing error. The pixel
size is fixed by the input (figure inches x ``dpi``), never by the drawn content.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .plots import render_png

# Two classes: colour and marker of the points, lighter fill of their side of the line.
_CLASS_STYLE = (("tab:blue", "o", "#dceaf6"), ("tab:orange", "^", "#fde8d2"))
# Colour of the recalled state's frame and caption, by kind (core/hopfield/states.LABELS).
KIND_COLOURS = {
    "stored": "#1a7f37",
    "reversed": "#b35900",
    "mixture": "#6f42c1",
    "spurious": "#cf222e",
    "not_fixed_point": "#57606a",
}
MAX_RECALL_ROWS = 32


def save_png(figure: Figure, path: str | os.PathLike, dpi: int = 100) -> None:
    """Write the figure to ``path`` as a PNG (``dpi`` pixels per figure inch)."""
    with open(path, "wb") as out:
        out.write(render_png(figure, dpi=dpi))


# -- perceptron ----------------------------------------------------------------


def _check_plane_data(model: Any, X: Any, y: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    coef = getattr(model, "coef_", None)
    if coef is None:
        raise ValueError(f"{type(model).__name__} is not fitted (no coef_): call fit first")
    coef = np.asarray(coef, dtype=np.float64)
    if coef.shape != (1, 2):
        raise ValueError(
            "a 2-D decision boundary needs a two-class model on exactly 2 features; "
            f"coef_ has shape {coef.shape} ({coef.shape[0]} weight vector(s) of "
            f"{coef.shape[-1]} features)"
        )
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != 2 or X.shape[0] == 0:
        raise ValueError(f"X must be (n_samples, 2) with n_samples >= 1; got shape {X.shape}")
    if not np.isfinite(X).all():
        row = int(np.flatnonzero(~np.isfinite(X).all(axis=1))[0])
        raise ValueError(f"X must be finite to be plotted; row {row} is {X[row].tolist()}")
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise ValueError(
            f"y must be 1-D with one label per row of X ({X.shape[0]} rows); got shape {y.shape}"
        )
    classes = np.asarray(model.classes_)
    unknown = sorted(set(np.unique(y).tolist()) - set(classes.tolist()))
    if unknown:
        raise ValueError(f"labels {unknown} in y are not among the model's {classes.tolist()}")
    return coef[0], X, y


def _padded_limits(values: np.ndarray) -> tuple[float, float]:
    lo, hi = float(values.min()), float(values.max())
    pad = 0.08 * (hi - lo) if hi > lo else 1.0
    return lo - pad, hi + pad


def _boundary_points(w: np.ndarray, b: float, xlim, ylim) -> tuple[np.ndarray, np.ndarray] | None:
    # Solve w1 x1 + w2 x2 + b = 0 for the coordinate with the larger weight, so a
    # steep (or vertical) line is drawn as accurately as a flat one.
    if w[0] == 0.0 and w[1] == 0.0:
        return None
    if abs(w[1]) >= abs(w[0]):
        x1 = np.array(xlim)
        return x1, -(w[0] * x1 + b) / w[1]
    x2 = np.array(ylim)
    return -(w[1] * x2 + b) / w[0], x2


def _equation(w: np.ndarray, b: float, names: Sequence[str]) -> str:
    terms = f"{w[0]:.3g}·{names[0]} {'-' if w[1] < 0 else '+'} {abs(w[1]):.3g}·{names[1]}"
    bias = f" {'-' if b < 0 else '+'} {abs(b):.3g}" if b != 0 else ""
    return f"{terms}{bias} = 0"


def _training_summary(model: Any) -> str:
    epochs = getattr(model, "n_iter_", None)
    text = type(model).__name__
    if epochs:
        text += f", {epochs} epoch{'s' if epochs != 1 else ''}"
    if getattr(model, "converged_", None) is False:
        text += " (not converged)"
    return text


def decision_boundary_figure(
    model: Any,
    X: Any,
    y: Any,
    feature_names: Sequence[str] = ("x1", "x2"),
    title: str | None = None,
) -> Figure:
    """Points of ``X`` (n, 2) coloured by label ``y``, the line w·x + b = 0, mistakes circled.

    ``model`` is a fitted two-class :class:`~nnpipe.Perceptron` (or any model with
    ``coef_`` (1, 2), ``intercept_``, ``classes_`` and ``predict``). Each side of
    the line is shaded in the colour of the class predicted there. The title gives
    the passes (epochs) of training and the number of points misclassified.
    """
    w, X, y = _check_plane_data(model, X, y)
    if len(feature_names) != 2:
        raise ValueError(f"feature_names needs 2 names; got {list(feature_names)}")
    b = float(np.ravel(model.intercept_)[0])
    classes = np.asarray(model.classes_)
    wrong = np.asarray(model.predict(X)) != y
    fig = Figure(figsize=(6.4, 5.6))
    FigureCanvasAgg(fig)
    # Room below the axes for the legend: inside, it would hide points.
    fig.subplots_adjust(left=0.11, right=0.97, bottom=0.2, top=0.92)
    ax = fig.add_subplot()
    xlim, ylim = _padded_limits(X[:, 0]), _padded_limits(X[:, 1])
    # Shade each half-plane: the sign of w·x + b on a grid (exact for a straight line).
    g1, g2 = np.meshgrid(np.linspace(*xlim, 200), np.linspace(*ylim, 200))
    side = (w[0] * g1 + w[1] * g2 + b > 0).astype(float)  # 1 where the second class is predicted
    ax.contourf(g1, g2, side, levels=[-0.5, 0.5, 1.5], colors=[s[2] for s in _CLASS_STYLE])
    for k, (colour, marker, _) in enumerate(_CLASS_STYLE):
        mine = y == classes[k]
        ax.scatter(
            X[mine, 0], X[mine, 1], c=colour, marker=marker, s=28, edgecolors="white",
            linewidths=0.5, label=f"class {classes[k]!s} ({int(mine.sum())})", zorder=3,
        )  # fmt: skip
    line = _boundary_points(w, b, xlim, ylim)
    if line is None:  # w = 0: no line, w.x + b has the sign of b everywhere
        ax.plot([], [], color="black", linewidth=2, label=f"no boundary: w = 0, b = {b:.3g}")
    else:
        label = "boundary " + _equation(w, b, feature_names)
        if side.min() == side.max():
            label += " (outside this view)"
        ax.plot(*line, color="black", linewidth=2, label=label, zorder=4)
    if wrong.any():
        ax.scatter(
            X[wrong, 0], X[wrong, 1], s=140, facecolors="none", edgecolors="red",
            linewidths=1.8, label=f"misclassified ({int(wrong.sum())})", zorder=5,
        )  # fmt: skip
    ax.set_xlim(xlim)
    ax.set_ylim(ylim)
    ax.set_xlabel(feature_names[0])
    ax.set_ylabel(feature_names[1])
    if title is None:
        title = f"{_training_summary(model)}: {int(wrong.sum())} of {len(y)} misclassified"
    ax.set_title(title)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.11), ncols=2, fontsize="small")
    return fig


# -- Hopfield ------------------------------------------------------------------


def _check_shape(shape: Any, n_values: int, what: str) -> tuple[int, int]:
    try:
        if isinstance(shape, str | bytes):
            raise TypeError
        rows, cols = (int(v) for v in shape)
        ok = rows > 0 and cols > 0 and [rows, cols] == [float(v) for v in shape]
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"shape must be two positive integers [rows, cols]; got {shape!r}")
    if rows * cols != n_values:
        raise ValueError(
            f"shape [{rows}, {cols}] has {rows * cols} cells but {what} have {n_values} values "
            "each; rows * cols must equal the pattern length"
        )
    return rows, cols


def _as_rows(data: Any, name: str) -> np.ndarray:
    arr = np.asarray(data)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[0] == 0 or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(
            f"{name} must be numeric (n, n_neurons) with n >= 1; got shape {arr.shape}, "
            f"dtype {arr.dtype}"
        )
    return arr.astype(np.float64)


def _kind_captions(kinds: Any, n: int, sources: np.ndarray, names: list[str]) -> list[tuple]:
    """(caption, colour) for each recalled state, from a Classification or plain labels."""
    if kinds is None:
        return [("recalled", "black")] * n
    labels = [str(v) for v in np.asarray(getattr(kinds, "labels", kinds)).reshape(-1)]
    if len(labels) != n:
        raise ValueError(f"kinds has {len(labels)} labels but there are {n} recalled states")
    indices = getattr(kinds, "indices", None) or [()] * n
    signs = getattr(kinds, "signs", None) or [(1,) * len(m) for m in indices]
    captions = []
    for label, members, sign, source in zip(labels, indices, signs, sources, strict=True):
        text = label.replace("_", " ")
        if label in ("stored", "reversed") and members:
            text += f" {names[members[0]]}" + ("" if members[0] == source else " (wrong)")
        elif label == "mixture" and members:
            # sign(±x_a ± x_b ± x_c): written H−O+X (the minus sign, not a hyphen)
            terms = "".join(
                ("+" if e > 0 else "\u2212") + names[m] for m, e in zip(members, sign, strict=True)
            )
            text += " " + terms.removeprefix("+")
        captions.append((text, KIND_COLOURS.get(label, "black")))
    return captions


def hopfield_recall_figure(
    patterns: Any,
    probes: Any,
    states: Any,
    shape: Sequence[int],
    sources: Any = None,
    kinds: Any = None,
    pattern_names: Sequence[str] | None = None,
    title: str = "Hopfield recall",
) -> Figure:
    """One row per probe: its stored pattern, the noisy probe, the recalled state and its kind.

    ``patterns`` (P, N) are the stored patterns; ``probes`` and ``states`` (n, N) the
    probes and what recall made of them; ``shape`` = (rows, cols) with rows * cols =
    N draws each as an image (+1 dark, -1 light). ``sources`` (n,) says which
    pattern each probe was made from (default: the one it overlaps most, either sign).
    ``kinds`` is the network's ``classify`` result (or n labels such as
    ``"stored"``, ``"mixture"``); the recalled state is framed in its kind's colour.
    ``pattern_names`` (P,) names the patterns in captions (default ``#0``, ``#1``, ...).
    """
    patterns, probes, states = (
        _as_rows(a, name)
        for a, name in ((patterns, "patterns"), (probes, "probes"), (states, "states"))
    )
    if probes.shape != states.shape or probes.shape[1] != patterns.shape[1]:
        raise ValueError(
            f"shapes disagree: patterns {patterns.shape}, probes {probes.shape}, "
            f"states {states.shape} (need probes and states alike, all with the same N)"
        )
    n = probes.shape[0]
    if n > MAX_RECALL_ROWS:
        raise ValueError(f"{n} probes is too many rows; give at most {MAX_RECALL_ROWS} per picture")
    rows, cols = _check_shape(shape, patterns.shape[1], "the patterns")
    if sources is None:
        # The pattern overlapping most, either sign: an inverted probe comes from x, not -x.
        sources = np.argmax(np.abs(probes @ patterns.T), axis=1)  # (n,)
    sources = np.asarray(sources).reshape(-1)
    if sources.size != n or not np.issubdtype(sources.dtype, np.integer):
        raise ValueError(f"sources must be {n} integer pattern indices; got {sources.tolist()}")
    if sources.min() < 0 or sources.max() >= patterns.shape[0]:
        raise ValueError(f"sources {sources.tolist()} must lie in 0..{patterns.shape[0] - 1}")
    if pattern_names is None:
        names = [f"#{i}" for i in range(patterns.shape[0])]
    else:
        names = [str(name) for name in pattern_names]
    if len(names) != patterns.shape[0]:
        raise ValueError(f"pattern_names has {len(names)} names for {patterns.shape[0]} patterns")
    captions = _kind_captions(kinds, n, sources, names)
    grid = (patterns, probes, states, sources, names)
    return _draw_recall_grid(*grid, (rows, cols), captions, title)


def _draw_recall_grid(patterns, probes, states, sources, names, shape, captions, title) -> Figure:
    rows, cols = shape
    n = probes.shape[0]
    # Panels in inches: a fixed height, width from the pattern's aspect (bounded).
    panel_h = 1.3
    panel_w = min(max(panel_h * cols / rows, 0.9), 2.8)
    gap_w, gap_h, top = 0.35, 0.4, 0.6
    width, height = 3 * panel_w + 4 * gap_w, n * (panel_h + gap_h) + top
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    fig.suptitle(title, y=1 - 0.18 / height, fontsize="large")
    for i in range(n):
        source = int(sources[i])
        distance = int(np.sum(np.sign(probes[i]) != np.sign(patterns[source])))
        cells = [
            (patterns[source], f"stored {names[source]}", "black"),
            (probes[i], f"probe: {distance} of {rows * cols} flipped", "black"),
            (states[i], *captions[i]),
        ]
        bottom = height - top - (i + 1) * (panel_h + gap_h) + gap_h * 0.25
        for j, (image, caption, colour) in enumerate(cells):
            left = gap_w + j * (panel_w + gap_w)
            ax = fig.add_axes((left / width, bottom / height, panel_w / width, panel_h / height))
            ax.imshow(image.reshape(rows, cols), cmap="binary", vmin=-1, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(caption, fontsize="small", color=colour, pad=3)
            for spine in ax.spines.values():
                spine.set_color(colour if j == 2 else "#8c959f")
                spine.set_linewidth(2.5 if j == 2 else 0.8)
    return fig
