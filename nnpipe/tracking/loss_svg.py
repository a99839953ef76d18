"""The loss curve every training run logs, as SVG text drawn without matplotlib.

Importing matplotlib and rendering a PNG took about 0.6 s of each ``nnpipe train``
(``benchmarks/bench_start.py``); this plot is lines, ticks and labels, which SVG
states directly. The MLflow UI shows ``.svg`` artifacts as images.
``plots.loss_curve_figure`` draws the same curve as a matplotlib figure for
callers who want one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape

import numpy as np

WIDTH, HEIGHT = 600, 400
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 40, 50  # margins around the plot area, in px
TRAIN_COLOR, VALIDATION_COLOR, BEST_COLOR = "#1f77b4", "#ff7f0e", "#808080"


def _nice_ticks(low: float, high: float, count: int = 6) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten apart) covering [low, high]."""
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(low / step) * step
    return [first + i * step for i in range(int(math.ceil((high - first) / step)) + 1)]


def _label(value: float) -> str:
    return f"{value:.6g}"


def curves(
    loss_curve: Sequence[float], validation_loss_curve: Sequence[float] | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """The train and (when given and non-empty) validation losses as float arrays.

    Shared with ``plots.loss_curve_figure``; an empty or 2-D train curve is refused.
    """
    train = np.asarray(loss_curve, dtype=np.float64)
    if train.ndim != 1 or train.size == 0:
        raise ValueError(f"loss_curve must be a non-empty 1-D sequence, got shape {train.shape}")
    if validation_loss_curve is None or len(validation_loss_curve) == 0:
        return train, None
    return train, np.asarray(validation_loss_curve, dtype=np.float64)


def wide_range(finite: np.ndarray) -> bool:
    """Whether finite losses call for a log axis: all positive, spanning over 100x."""
    return bool(finite.size > 0 and finite.min() > 0 and finite.max() / finite.min() > 100)


def _y_axis(finite: np.ndarray, log_scale: bool | None) -> tuple[bool, list[float], list[str]]:
    """Whether the y-axis is logarithmic, its ticks (log10 values if so) and their labels."""
    if log_scale is None:
        log_scale = wide_range(finite)
    if finite.size == 0:
        finite = np.array([0.0, 1.0])
    if not (log_scale and finite.min() > 0):
        ticks = _nice_ticks(float(finite.min()), float(finite.max()))
        return False, ticks, [_label(t) for t in ticks]
    low = math.floor(math.log10(finite.min()))
    high = max(math.ceil(math.log10(finite.max())), low + 1)
    ticks = [float(p) for p in range(low, high + 1)]
    return True, ticks, [_label(10**t) for t in ticks]


def loss_curve_svg(
    loss_curve: Sequence[float],
    validation_loss_curve: Sequence[float] | None = None,
    title: str = "Loss per epoch",
    log_scale: bool | None = None,
) -> str:
    """Training (and validation) loss against epoch as an SVG document.

    A log y-axis when all losses are positive and span more than a factor of 100
    (or as ``log_scale`` says); a dotted line marks the best validation epoch.
    Non-finite losses (a diverged epoch) leave a gap in their line.
    """
    train, val = curves(loss_curve, validation_loss_curve)
    lines = [("train loss", TRAIN_COLOR, train)]
    best = None
    if val is not None:
        lines.append(("validation loss", VALIDATION_COLOR, val))
        if np.isfinite(val).any():
            best = int(np.nanargmin(np.where(np.isfinite(val), val, np.nan))) + 1
    finite = np.concatenate([c for _, _, c in lines])
    log_scale, y_ticks, y_labels = _y_axis(finite[np.isfinite(finite)], log_scale)
    y = np.log10 if log_scale else (lambda v: v)
    epochs = max(c.size for _, _, c in lines)
    x_ticks = [t for t in _nice_ticks(1.0, float(epochs)) if 1 <= t <= epochs]
    x_ticks = [t for t in x_ticks if float(t).is_integer()] or [1.0]
    # One epoch sits in the middle of the axis rather than on its edge.
    x_low, x_high = (0.5, 1.5) if epochs == 1 else (1.0, float(epochs))
    y_low, y_high = y_ticks[0], y_ticks[-1]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def px(epoch: float) -> float:
        return LEFT + (epoch - x_low) / (x_high - x_low) * plot_w

    def py(value: float) -> float:
        return TOP + plot_h - (value - y_low) / (y_high - y_low) * plot_h

    out = _frame(title, x_ticks, y_ticks, y_labels, px, py)
    legend = [(name, color, "") for name, color, _ in lines]
    if best is not None:
        x = px(best)
        out.append(
            f'<line class="best" x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{TOP + plot_h}" '
            f'stroke="{BEST_COLOR}" stroke-dasharray="2,3"/>'
        )
        legend.append((f"best epoch {best}", BEST_COLOR, ' stroke-dasharray="2,3"'))
    for name, color, values in lines:
        for run in _finite_runs(values):
            points = [(px(i + 1), py(y(values[i]))) for i in run]
            out.append(
                f'<polyline class="{name.split()[0]}" fill="none" stroke="{color}" '
                f'stroke-width="1.5" points="{" ".join(f"{a:.1f},{b:.1f}" for a, b in points)}"/>'
            )
            if len(points) == 1:  # one epoch: a dot, since a line needs two
                out.append(
                    f'<circle cx="{points[0][0]:.1f}" cy="{points[0][1]:.1f}" r="3" '
                    f'fill="{color}"/>'
                )
    out.extend(_legend(legend))
    out.append("</svg>\n")
    return "\n".join(out)


def _frame(
    title: str,
    x_ticks: list[float],
    y_ticks: list[float],
    y_labels: list[str],
    px: Callable[[float], float],
    py: Callable[[float], float],
) -> list[str]:
    """The document's start: background, title, grid with tick labels, box, axis names."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{WIDTH / 2}" y="{TOP / 2 + 6}" text-anchor="middle" '
        f'font-size="14">{escape(title)}</text>',
    ]
    for tick, label in zip(y_ticks, y_labels, strict=True):
        out.append(
            f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{py(tick):.1f}" y2="{py(tick):.1f}" '
            f'stroke="#ddd"/><text x="{LEFT - 6}" y="{py(tick) + 4:.1f}" '
            f'text-anchor="end">{label}</text>'
        )
    for tick in x_ticks:
        out.append(
            f'<line x1="{px(tick):.1f}" x2="{px(tick):.1f}" y1="{TOP}" y2="{TOP + plot_h}" '
            f'stroke="#ddd"/><text x="{px(tick):.1f}" y="{TOP + plot_h + 16}" '
            f'text-anchor="middle">{int(tick)}</text>'
        )
    out.append(
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" '
        f'stroke="black"/><text x="{LEFT + plot_w / 2}" y="{HEIGHT - 12}" '
        f'text-anchor="middle">epoch</text><text x="16" y="{TOP + plot_h / 2}" '
        f'text-anchor="middle" transform="rotate(-90 16 {TOP + plot_h / 2})">loss</text>'
    )
    return out


def _legend(entries: list[tuple[str, str, str]]) -> list[str]:
    """One row per (name, colour, dash attribute), top right inside the plot."""
    plot_w = WIDTH - LEFT - RIGHT
    out = []
    for row, (name, color, dash) in enumerate(entries):
        ly = TOP + 14 + 16 * row
        out.append(
            f'<line x1="{LEFT + plot_w - 150}" x2="{LEFT + plot_w - 125}" y1="{ly - 4}" '
            f'y2="{ly - 4}" stroke="{color}" stroke-width="1.5"{dash}/>'
            f'<text x="{LEFT + plot_w - 118}" y="{ly}">{escape(name)}</text>'
        )
    return out


def _finite_runs(values: np.ndarray) -> list[range]:
    """Index ranges of consecutive finite values (a line is broken at NaN or inf)."""
    runs, start = [], None
    for i, ok in enumerate(np.isfinite(values)):
        if ok and start is None:
            start = i
        elif not ok and start is not None:
            runs.append(range(start, i))
            start = None
    if start is not None:
        runs.append(range(start, values.size))
    return runs
