"""A sweep in MLflow: one child run per trial under the parent, logged from the driver.

The driver (the flow) is the only process writing to the tracking store: trials on
the workers return their per-epoch history, and the child runs are written from
it as results arrive. An SQLite store written from many processes at once can
lock; one writer cannot.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flows.sweep_trials import Trial
from nnpipe.tracking import MlflowTracker

# Evaluation metrics a trial result may carry that go to its child run.
# (val_loss per epoch is the history's; the one a trial is ranked by is best_val_loss.)
_SUMMARY = ("epochs", "budget", "train_seconds")


def short_params(params: dict[str, Any]) -> str:
    """``lr=0.001 hidden=64x64``-style text of a trial's values."""
    shown = []
    for name, value in params.items():
        if isinstance(value, list):
            value = "x".join(map(str, value))
        elif isinstance(value, float):
            value = f"{value:.4g}"
        shown.append(f"{name}={value}")
    return " ".join(shown)


class ChildRuns:
    """The trials' child runs of one parent run: created on a trial's first result."""

    def __init__(self, experiment: str, parent_run_id: str, tracking_uri: str) -> None:
        # A tracker of its own: starting a run makes it the tracker's current one,
        # and the parent's tracker must keep pointing at the parent.
        self.tracker = MlflowTracker(experiment, tracking_uri=tracking_uri, log_environment=False)
        self.parent = parent_run_id
        self.run_ids: dict[str, str] = {}
        self._epochs_logged: dict[str, int] = {}

    def log(self, trial: Trial, result: dict[str, Any], rung: int) -> None:
        """Log a trial's result at ``rung``: params once, the epochs not yet logged, the rung."""
        run_id = self.run_ids.get(trial.trial_id)
        if run_id is None:
            run_id = self.tracker.start_run(
                run_name=f"trial {trial.number} ({short_params(trial.params)})",
                tags={
                    "nnpipe.flow": "sweep_bp",
                    "nnpipe.sweep.trial": trial.trial_id,
                    "nnpipe.sweep.reused": str(bool(result.get("reused"))).lower(),
                },
                parent_run_id=self.parent,
            )
            self.run_ids[trial.trial_id] = run_id
            self._epochs_logged[trial.trial_id] = 0
            params = {k: _param(v) for k, v in trial.params.items()}
            self.tracker.log_params(
                {
                    **params,
                    "trial_id": trial.trial_id,
                    "config": trial.config.model_dump(mode="json"),
                },
                run_id=run_id,
            )
        callback = self.tracker.epoch_callback(run_id)
        for row in result["history"][self._epochs_logged[trial.trial_id] :]:
            callback(row, step=int(row["epoch"]))
        callback.flush()
        self._epochs_logged[trial.trial_id] = len(result["history"])
        metrics = {**result["metrics"], **{k: result.get(k) for k in _SUMMARY}, "rung": rung}
        metrics["best_val_loss"] = result["val_loss"]
        self.tracker.log_metrics(metrics, step=int(result["epochs"]), run_id=run_id)

    def end(self, status: str = "FINISHED") -> None:
        """Mark every child run ``status``."""
        for run_id in self.run_ids.values():
            self.tracker.end_run(status, run_id=run_id)


def _param(value: Any) -> Any:
    return "x".join(map(str, value)) if isinstance(value, list) else value


def leaderboard_rows(
    trials: Sequence[Trial], results: dict[str, dict[str, Any]], run_ids: dict[str, str]
) -> list[dict[str, Any]]:
    """One row per trial, best first: furthest rung, then lowest validation loss."""
    rows = []
    for trial in trials:
        r = results[trial.trial_id]
        rows.append(
            {
                "trial": trial.number,
                "trial_id": trial.trial_id,
                "params": trial.params,
                "val_loss": r["val_loss"],
                "rung": r["rung"],
                "epochs": r["epochs"],
                "metrics": r["metrics"],
                "reused": bool(r.get("reused")),
                "run_id": run_ids.get(trial.trial_id),
                "model_path": r["model_path"],
            }
        )
    rows.sort(key=lambda row: (-row["rung"], _sortable(row["val_loss"]), row["trial"]))
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
    return rows


def _sortable(value: float) -> float:
    return value if value == value else float("inf")  # NaN last


def table_rows(rows: Sequence[dict[str, Any]], metric_names: Sequence[str]) -> list[dict]:
    """The leaderboard flattened to scalar columns, for the table artifact."""
    flat = []
    for row in rows:
        item = {"rank": row["rank"], "trial": row["trial"], "trial_id": row["trial_id"]}
        item.update({name: _param(value) for name, value in row["params"].items()})
        item.update({"val_loss": row["val_loss"], "rung": row["rung"], "epochs": row["epochs"]})
        item.update({name: row["metrics"].get(name) for name in metric_names})
        item.update({"reused": row["reused"], "run_id": row["run_id"]})
        flat.append(item)
    return flat


def sweep_report(result: dict[str, Any]) -> str:
    """The sweep_bp result as a few lines for the terminal."""
    s = result["summary"]
    head = (
        f"sweep_bp: {s['n_trials']} trials ({s['strategy']}, epoch budgets "
        f"{', '.join(map(str, s['budgets']))}) in {s['seconds']:.1f} s on "
        f"{s['n_workers']} Dask workers; {s['trials_reused']} reused, "
        f"{s['epochs_total']} epochs in all trials"
    )
    lines = [head, "  rank  val_loss    rung  epochs  params"]
    for row in s["leaderboard"][:10]:
        lines.append(
            f"  {row['rank']:>4}  {row['val_loss']:<10.5g}  {row['rung']:>4}  "
            f"{row['epochs']:>6}  {short_params(row['params'])}"
        )
    if len(s["leaderboard"]) > 10:
        lines.append(f"  ... {len(s['leaderboard']) - 10} more in the leaderboard artifact")
    lines.append(f"  best config {s['best_config']}")
    champion = s.get("champion")
    if s.get("registered_model"):
        if champion and champion["moved"]:
            was = champion["previous_value"]
            beaten = f" (beats {champion['metric']} {was:.5g})" if was is not None else ""
            note = f"@champion moved to this version{beaten}"
        elif champion:
            note = (
                f"@champion stays on version {champion['champion']} "
                f"({champion['metric']} {champion['previous_value']:.5g})"
            )
        else:
            note = ""
        lines.append(f"  model registered as {s['registered_model']}; {note}")
    lines.append(f"  MLflow run {result['run_ids']['sweep_bp']}")
    return "\n".join(lines)
