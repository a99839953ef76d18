"""What a sweep's parent run holds beyond plain metrics: the leaderboard, its plot, the champion.

The leaderboard is a ``log_table`` artifact (``leaderboard.json``, shown as a
table in the MLflow UI) plus the same rows as ``leaderboard.csv``. The champion
is a registry alias (``@champion``) that moves to a new model version only when
that version's validation metric beats the one recorded on the current champion
(lower is better: a validation loss).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from . import _store
from .plots import _plain_number

CHAMPION_ALIAS = "champion"
# The model version tag holding the validation metric the champion is judged by.
METRIC_TAG = "nnpipe.val_loss"


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


def _recorded_loss(client: Any, version: Any) -> float:
    # The tag a sweep set, else the best_loss its training run logged (train_bp's),
    # else nothing to beat.
    if METRIC_TAG in version.tags:
        return float(version.tags[METRIC_TAG])
    if version.run_id:
        metric = client.get_run(version.run_id).data.metrics.get("best_loss")
        if metric is not None:
            return float(metric)
    return math.inf


def promote_champion(uri: str, name: str, version: str, val_loss: float) -> dict[str, Any]:
    """Record ``val_loss`` on the version; move ``@champion`` to it only if it beats the holder.

    Returns ``{"moved": bool, "champion": version now holding the alias,
    "previous": version before (None), "previous_val_loss": its metric}``.
    """
    from mlflow.exceptions import MlflowException

    client = _store.client(uri)
    client.set_model_version_tag(name, version, METRIC_TAG, repr(float(val_loss)))
    try:
        holder = client.get_model_version_by_alias(name, CHAMPION_ALIAS)
    except MlflowException:
        holder = None  # no champion yet
    previous = None if holder is None else str(holder.version)
    held = math.inf if holder is None else _recorded_loss(client, holder)
    moved = float(val_loss) < held
    if moved:
        client.set_registered_model_alias(name, CHAMPION_ALIAS, version)
    return {
        "moved": moved,
        "champion": version if moved else previous,
        "previous": previous,
        "previous_val_loss": None if math.isinf(held) else held,
    }
