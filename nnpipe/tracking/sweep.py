"""What a sweep's parent run holds beyond plain metrics: the leaderboard and its plot.

The leaderboard is a ``log_table`` artifact (``leaderboard.json``, shown as a
table in the MLflow UI) plus the same rows as ``leaderboard.csv``. The best model's
version takes ``@champion`` by the same rule as any training run's
(``nnpipe.tracking.model.promote_if_better``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from . import _store
from .plots import _plain_number


def log_leaderboard(uri: str, run_id: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """The rows (one dict per trial, same keys) as ``leaderboard.json`` (a table) and ``.csv``."""
    columns = list(rows[0]) if rows else []
    table = {name: [_cell(row.get(name)) for row in rows] for name in columns}
    client = _store.client(uri)
    client.log_table(run_id, data=table, artifact_file="leaderboard.json")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows({k: _cell(v) for k, v in row.items()} for row in rows)
    client.log_text(run_id, buffer.getvalue(), "leaderboard.csv")


def _cell(value: Any) -> Any:
    # Lists (hidden_layer_sizes) as text, so every column holds scalars.
    return "x".join(map(str, value)) if isinstance(value, (list, tuple)) else value


def validation_loss_figure(
    rows: Sequence[Mapping[str, Any]], params: Sequence[str], log_scale: Sequence[str] = ()
) -> Figure:
    """Validation loss of every trial against each swept parameter (one panel each).

    ``rows`` are the leaderboard's, best first, each with ``params``, ``val_loss``
    and ``rung``; parameters in ``log_scale`` get a logarithmic axis.
    """
    n = max(1, len(params))
    fig = Figure(figsize=(3.6 * n, 3.4))
    FigureCanvasAgg(fig)
    fig.subplots_adjust(left=0.1, right=0.97, bottom=0.18, top=0.86, wspace=0.35)
    losses = [float(row["val_loss"]) for row in rows]
    best = 0 if losses else None  # rows come best first
    n_rungs = len({int(row.get("rung", 0)) for row in rows})
    for i, name in enumerate(params):
        ax = fig.add_subplot(1, n, i + 1)
        values = [_cell(row["params"][name]) for row in rows]
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        if numeric:
            xs = [float(v) for v in values]
        else:  # categories in order of first appearance
            labels = list(dict.fromkeys(str(v) for v in values))
            xs = [labels.index(str(v)) for v in values]
            ax.set_xticks(range(len(labels)), labels)
        # One colour per rung: a trial stopped early was scored after fewer epochs.
        for rung in sorted({int(row.get("rung", 0)) for row in rows}):
            mine = [j for j, row in enumerate(rows) if int(row.get("rung", 0)) == rung]
            label = f"rung {rung}" if n_rungs > 1 else "trial"
            ax.scatter([xs[j] for j in mine], [losses[j] for j in mine], s=18, label=label)
        if best is not None:
            ax.scatter(
                [xs[best]], [losses[best]], s=70, facecolors="none", edgecolors="red", label="best"
            )
        if numeric and name in log_scale:
            ax.set_xscale("log")
        elif numeric:
            ax.xaxis.set_major_locator(MaxNLocator(4))
            ax.xaxis.set_major_formatter(FuncFormatter(_plain_number))
        if losses and min(losses) > 0 and max(losses) / min(losses) > 20:
            ax.set_yscale("log")
        ax.set_xlabel(name)
        if i == 0:
            ax.set_ylabel("validation loss")
            if best is not None:
                ax.legend(fontsize=8)
    fig.suptitle("Validation loss per trial against each swept parameter")
    return fig
