"""Short text reports of flow results, printed by the ``nnpipe`` command."""

from __future__ import annotations

import math
from typing import Any


def _pct(x: float) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{100 * x:.2f}%"


def prepare_report(result: dict[str, Any]) -> str:
    """What prepare_data wrote and fitted."""
    s = result["summary"]
    reg, hop, sc = s["regression"], s["hopfield"], s["scalers"]
    verb = {True: "wrote", False: "kept existing"}
    return "\n".join(
        [
            f"prepare_data: {verb[reg['written']]} regression data {reg['path']}, "
            f"{verb[hop['written']]} Hopfield data {hop['path']}",
            f"  {sc['kind']} scalers {'reused, ' if sc.get('reused') else ''}fitted on "
            f"{sc['n_samples_seen']} training rows -> {sc['dir']}",
            f"  MLflow run {result['run_ids']['prepare_data']}",
        ]
    )


def _model_line(s: dict[str, Any]) -> str:
    line = f"  model {s['model_path']}"
    if s.get("registered_model"):
        line += f"  registered as {s['registered_model']}"
        line += " (now @champion)" if s.get("champion") else " (@champion unchanged)"
    return line


def _stop(s: dict[str, Any]) -> str:
    """Why training ended, and on how many Dask workers when more than one."""
    stop = "early stop" if s["stopped_early"] else "max epochs"
    workers = int(s.get("workers", 1))
    return stop if workers == 1 else f"{stop}, {workers} workers"


def classifier_lines(s: dict[str, Any]) -> list[str]:
    """Accuracy (against always answering the commonest class), log-loss, macro F1, classes."""
    stop = _stop(s)
    classes = ", ".join(str(c) for c in s["classes"][:20])
    more = f", ... ({len(s['classes'])} in all)" if len(s["classes"]) > 20 else ""
    return [
        f"  {int(s['epochs'])} epochs ({stop}) in {s['train_seconds']:.1f} s; "
        f"validation rows {int(s['val_rows'])}",
        f"  accuracy {s['accuracy']:.4f} (most frequent class alone "
        f"{s['baseline_accuracy']:.4f})   log-loss {s['log_loss']:.4f}   "
        f"macro F1 {s['f1_macro']:.4f}",
        f"  classes {classes}{more}",
        _model_line(s),
    ]


def train_lines(s: dict[str, Any]) -> list[str]:
    """R2, error and the range of predictions against the range of targets (or a classifier's)."""
    if s.get("task") == "classification":
        return classifier_lines(s)
    stop = _stop(s)
    return [
        f"  {int(s['epochs'])} epochs ({stop}) in {s['train_seconds']:.1f} s; "
        f"validation rows {int(s['val_rows'])}",
        f"  R2 {s['r2']:.4f}   RMSE {s['rmse']:.4f}   MAE {s['mae']:.4f}",
        f"  targets     {s['target_min']:+.3f} .. {s['target_max']:+.3f} "
        f"({_pct(s['negative_target_fraction'])} negative)",
        f"  predictions {s['prediction_min']:+.3f} .. {s['prediction_max']:+.3f} "
        f"({_pct(s['negative_prediction_fraction'])} negative)",
        _model_line(s),
    ]


def train_report(result: dict[str, Any]) -> str:
    """The train_bp result."""
    return "\n".join(
        ["train_bp:", *train_lines(result["summary"])]
        + [f"  MLflow run {result['run_ids']['train_bp']}"]
    )


def recall_lines(s: dict[str, Any]) -> list[str]:
    """Recall rates and what the rerun bookkeeping did."""
    done = f"{s['n_partitions_run']} recalled now"
    if s["n_partitions_skipped"]:
        done += f", {s['n_partitions_skipped']} already done by an earlier run (skipped)"
    rate = f"{s['probes_per_second']:.0f} probes/s" if s["n_partitions_run"] else "no new work"
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(s.get("kinds", {}).items()))
    return [
        f"  {s['n_probes']} probes in {s['n_partitions']} partitions: {done}; {rate}",
        f"  exact recall {_pct(s['exact_recall_rate'])}   mean overlap {s['mean_overlap']:.4f}   "
        f"converged {_pct(s['converged_fraction'])}   spurious {_pct(s['spurious_fraction'])}",
        f"  final states: {kinds}" if kinds else "",
        f"  results {s['output_dir']}",
    ]


def recall_report(result: dict[str, Any]) -> str:
    """The recall_hopfield result."""
    lines = ["recall_hopfield:", *recall_lines(result["summary"])]
    lines.append(f"  MLflow run {result['run_ids']['recall_hopfield']}")
    return "\n".join(line for line in lines if line)


def pipeline_report(result: dict[str, Any], tracking_uri: str | None = None) -> str:
    """All three stages, the MLflow run ids and where to look at them."""
    s = result["summary"]
    ids = result["run_ids"]
    prep = s["prepare_data"]
    written = {True: "written", False: "kept"}
    sc = prep["scalers"]
    kind = "classifier" if s["train_bp"].get("task") == "classification" else "network"
    lines = [
        f"pipeline finished in {s['seconds']:.0f} s",
        f"Data (prepare_data): regression {written[prep['regression']['written']]}, "
        f"Hopfield {written[prep['hopfield']['written']]}; {sc['kind']} scalers "
        f"{'reused' if sc.get('reused') else 'fitted'} ({sc['n_samples_seen']} training rows)",
        f"BP {kind} (train_bp):",
    ]
    lines += train_lines(s["train_bp"])
    lines += ["Hopfield recall (recall_hopfield):", *recall_lines(s["recall_hopfield"])]
    lines.append("MLflow runs" + (f" in {tracking_uri}:" if tracking_uri else ":"))
    if result.get("parent_run_id"):  # the stage runs are nested under it
        lines.append(f"  {'pipeline':<16} {result['parent_run_id']}")
    lines += [f"  {name:<16} {run_id}" for name, run_id in ids.items()]
    return "\n".join(line for line in lines if line)
