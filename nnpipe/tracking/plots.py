"""Figures logged with runs: loss curve, confusion matrix, Hopfield energy and capacity.

Built on ``matplotlib.figure.Figure`` (rendered by the Agg canvas), never
``pyplot``: no global figure state, no GUI backend, safe from worker threads.
Each function returns the figure; ``MlflowTracker.log_figure`` stores it as PNG
(``render_png``).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullLocator

from .loss_svg import curves, wide_range


def _figure(width: float = 6.0, height: float = 4.0) -> tuple[Figure, Any]:
    # Fixed margins instead of a layout engine: constrained layout cost ~4x the drawing
    # itself on these small plots, and tracking overhead is measured per run.
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    fig.subplots_adjust(left=0.13, right=0.96, bottom=0.13, top=0.91)
    return fig, fig.add_subplot()


def _plain_number(value: float, _position: Any) -> str:
    # A module-level function, not a lambda: the figure stays picklable (it can be
    # sent to another process, e.g. a Dask worker, and rendered there).
    return f"{value:g}"


def render_png(figure: Figure, dpi: int = 100) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, dpi=dpi, format="png")
    return buffer.getvalue()


def loss_curve_figure(
    loss_curve: Sequence[float],
    validation_loss_curve: Sequence[float] | None = None,
    title: str = "Loss per epoch",
    log_scale: bool | None = None,
) -> Figure:
    """Training (and validation) loss against epoch; log y-axis when the range is wide."""
    train, val = curves(loss_curve, validation_loss_curve)
    fig, ax = _figure()
    epochs = np.arange(1, train.size + 1)
    ax.plot(epochs, train, label="train loss")
    values = [train]
    if val is not None:
        ax.plot(np.arange(1, val.size + 1), val, label="validation loss")
        values.append(val)
        best = int(np.nanargmin(val))
        ax.axvline(best + 1, color="grey", linestyle=":", label=f"best epoch {best + 1}")
    finite = np.concatenate(values)
    finite = finite[np.isfinite(finite)]
    if log_scale is None:
        log_scale = wide_range(finite)
    if log_scale:
        ax.set_yscale("log")
        # Plain "0.01" labels: the default 10^k mathtext labels cost more than the plot.
        ax.yaxis.set_major_formatter(FuncFormatter(_plain_number))
        ax.yaxis.set_minor_locator(NullLocator())  # minor log ticks: most of the drawing time
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend()
    ax.grid(True, alpha=0.3)
    return fig


def confusion_matrix(y_true: Any, y_pred: Any, labels: Sequence[Any] | None = None) -> np.ndarray:
    """Counts ``C[i, j]`` of samples with true label ``labels[i]`` predicted ``labels[j]``."""
    y_true = np.asarray(y_true).reshape(-1)
    y_pred = np.asarray(y_pred).reshape(-1)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has {y_true.size} labels but y_pred has {y_pred.size}")
    labels = np.unique(np.concatenate([y_true, y_pred])) if labels is None else np.asarray(labels)
    index = {label: i for i, label in enumerate(labels.tolist())}
    unknown = sorted({v for v in np.concatenate([y_true, y_pred]).tolist() if v not in index})
    if unknown:
        raise ValueError(f"labels {unknown} are not in labels={labels.tolist()}")
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)  # (n_classes, n_classes)
    rows = np.fromiter((index[v] for v in y_true.tolist()), dtype=np.int64, count=y_true.size)
    cols = np.fromiter((index[v] for v in y_pred.tolist()), dtype=np.int64, count=y_pred.size)
    np.add.at(matrix, (rows, cols), 1)
    return matrix


def _short(label: Any, limit: int = 20) -> str:
    text = str(label)
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def confusion_matrix_figure(
    y_true: Any, y_pred: Any, labels: Sequence[Any] | None = None, title: str = "Confusion matrix"
) -> Figure:
    """Heat map of :func:`confusion_matrix` with the count in each cell.

    The figure grows with the number of classes and leaves room for the longest
    label (labels longer than 20 characters are shortened with an ellipsis).
    """
    if labels is None:
        labels = np.unique(np.concatenate([np.asarray(y_true).ravel(), np.asarray(y_pred).ravel()]))
    matrix = confusion_matrix(y_true, y_pred, labels)
    n = len(labels)
    names = [_short(label) for label in labels]
    longest = max(len(name) for name in names)
    rotate = n > 6 or n * longest > 36  # horizontal tick labels would run into each other
    # Sizes in inches: the matrix, then margins for tick labels, title and colour bar.
    side = max(3.0, 0.55 * n)
    left = 0.6 + 0.08 * longest
    bottom = 0.6 + (0.06 * longest + 0.1 if rotate else 0.2)
    width, height = left + side + 1.1, bottom + side + 0.5
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    ax = fig.add_axes((left / width, bottom / height, side / width, side / height))
    image = ax.imshow(matrix, cmap="Blues")
    bar = fig.add_axes(((left + side + 0.2) / width, bottom / height, 0.18 / width, side / height))
    fig.colorbar(image, cax=bar)
    ticks = np.arange(n)
    if rotate:
        ax.set_xticks(ticks, names, rotation=45, ha="right", rotation_mode="anchor")
    else:
        ax.set_xticks(ticks, names)
    ax.set_yticks(ticks, names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    threshold = matrix.max() / 2 if matrix.size else 0
    if n <= 30:
        for i in range(n):
            for j in range(n):
                colour = "white" if matrix[i, j] > threshold else "black"
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center", color=colour)
    return fig


def energy_trajectory_figure(
    trajectories: Sequence[Sequence[float]],
    labels: Sequence[str] | None = None,
    title: str = "Hopfield energy during recall",
) -> Figure:
    """Energy after each sweep, one line per probe (energy never rises under async updates)."""
    if len(trajectories) == 0:
        raise ValueError("trajectories is empty: give at least one energy sequence")
    fig, ax = _figure()
    for k, energies in enumerate(trajectories):
        e = np.asarray(energies, dtype=np.float64).reshape(-1)
        if labels is not None:
            label = labels[k]
        else:
            label = f"probe {k}" if len(trajectories) <= 10 else None
        ax.plot(np.arange(e.size), e, marker="o" if e.size <= 20 else None, label=label)
    ax.set_xlabel("sweep")
    ax.set_ylabel("energy")
    ax.set_title(title)
    if labels is not None or len(trajectories) <= 10:
        ax.legend(fontsize="small")
    ax.grid(True, alpha=0.3)
    return fig


def capacity_curve_figure(
    table: Mapping[str, Sequence[Any]], title: str = "Hopfield capacity"
) -> Figure:
    """Exact-recall fraction (solid) and mean overlap (dashed) against load P/N.

    ``table`` is the columnar dict of ``nnpipe.core.hopfield.capacity_curve`` (needs
    ``load`` and ``exact_recall``; uses ``mean_overlap``, ``noise``, ``rule`` and
    ``n_neurons`` when present): one line per (rule, noise level), and the Hebbian
    limit 0.138 marked.
    """
    missing = [c for c in ("load", "exact_recall") if c not in table]
    if missing:
        raise ValueError(f"capacity table lacks columns {missing}; has {sorted(table)}")
    load = np.asarray(table["load"], dtype=np.float64)
    n = load.size
    if n == 0:
        raise ValueError("capacity table is empty")
    for name, column in table.items():
        if len(column) != n:
            raise ValueError(f"capacity table column {name!r} has {len(column)} rows, not {n}")
    noise = list(table.get("noise", [None] * n))
    rule = list(table.get("rule", [None] * n))
    fig, ax = _figure()
    groups: dict[tuple[Any, Any], list[int]] = {}
    for i in range(n):
        groups.setdefault((rule[i], noise[i]), []).append(i)
    for (r, nz), rows in groups.items():
        rows = sorted(rows, key=lambda i: load[i])
        parts = [str(r)] if r is not None else []
        if nz is not None:
            parts.append(f"noise {nz:g}")
        label = ", ".join(parts) or "exact recall"
        line = ax.plot(load[rows], np.asarray(table["exact_recall"])[rows], marker="o", label=label)
        if "mean_overlap" in table:
            overlap = np.asarray(table["mean_overlap"], dtype=np.float64)[rows]
            ax.plot(load[rows], overlap, linestyle="--", color=line[0].get_color())
    if "hebbian" in rule or rule == [None] * n:
        ax.axvline(0.138, color="red", linestyle=":", label="0.138 (Hebbian limit)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("load P / N")
    ax.set_ylabel("exact recall (solid), mean overlap (dashed)")
    sizes = sorted(set(table.get("n_neurons", [])))
    ax.set_title(f"{title} (N = {', '.join(map(str, sizes))})" if sizes else title)
    ax.legend(fontsize="small")
    ax.grid(True, alpha=0.3)
    return fig
