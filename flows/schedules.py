"""``nnpipe serve``: the flows as Prefect deployments with cron schedules from a YAML file.

Schedules only fire when a Prefect server with its scheduler runs
(``prefect server start``; ``PREFECT_API_URL`` pointing at it): Prefect's
temporary server, started when ``PREFECT_API_URL`` is unset, schedules nothing.
"""

from __future__ import annotations

import asyncio
import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from prefect.runner import Runner
from prefect.schedules import Cron
from prefect.types.entrypoint import EntrypointType

from flows.config import ConfigError, load_config, parse_config
from flows.locations import credential_keys

DEFAULT_SCHEDULES = Path(__file__).with_name("schedules.yaml")

# flow name -> "module:attribute" of the Prefect flow object.
FLOWS = {
    "prepare_data": "flows.prepare_data:prepare_data",
    "train_bp": "flows.train_bp:train_bp",
    "recall_hopfield": "flows.recall_hopfield:recall_hopfield",
    "pipeline": "flows.pipeline:pipeline",
}
_ENTRY_KEYS = {"name", "flow", "cron", "timezone", "paused", "description", "parameters", "tags"}


@dataclass(frozen=True)
class ScheduleSpec:
    """One deployment: a flow, its cron schedule and its parameter overrides."""

    name: str
    flow: str
    cron: str
    timezone: str = "UTC"
    paused: bool = False
    description: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()


def load_flow(name: str):
    """The Prefect flow object called ``name``."""
    if name not in FLOWS:
        raise ValueError(f"unknown flow {name!r}; allowed: {', '.join(FLOWS)}")
    module, attr = FLOWS[name].split(":")
    return getattr(importlib.import_module(module), attr)


def load_schedules(path: str | Path | None = None) -> list[ScheduleSpec]:
    """Read and check a schedules YAML file (default: the packaged ``flows/schedules.yaml``)."""
    path = Path(path) if path is not None else DEFAULT_SCHEDULES
    if not path.is_file():
        raise ConfigError(f"schedules file {str(path)!r} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"schedules file {str(path)!r} is not valid YAML: {exc}") from exc
    entries = data.get("deployments") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ConfigError(
            f"schedules file {str(path)!r} needs a non-empty 'deployments:' list of entries"
        )
    specs, names = [], set()
    for i, entry in enumerate(entries):
        where = f"{path}: deployments[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} must be a mapping, got {type(entry).__name__}")
        unknown = sorted(set(entry) - _ENTRY_KEYS)
        if unknown:
            raise ConfigError(
                f"{where}: unknown key {unknown[0]!r}; allowed: {', '.join(sorted(_ENTRY_KEYS))}"
            )
        for key in ("name", "flow", "cron"):
            if not isinstance(entry.get(key), str) or not entry[key].strip():
                raise ConfigError(f"{where}: {key!r} is required (a string)")
        if entry["flow"] not in FLOWS:
            raise ConfigError(
                f"{where}: flow {entry['flow']!r} is unknown; allowed: {', '.join(FLOWS)}"
            )
        key = (entry["flow"], entry["name"])
        if key in names:
            raise ConfigError(f"{where}: deployment {entry['flow']}/{entry['name']} is repeated")
        names.add(key)
        timezone = entry.get("timezone") or "UTC"
        try:
            Cron(entry["cron"], timezone=timezone)  # validates the cron string and timezone
        except ValueError as exc:
            raise ConfigError(f"{where}: invalid schedule {entry['cron']!r}: {exc}") from exc
        params = entry.get("parameters") or {}
        if not isinstance(params, dict):
            raise ConfigError(f"{where}: parameters must be a mapping of config keys")
        specs.append(
            ScheduleSpec(
                name=entry["name"],
                flow=entry["flow"],
                cron=entry["cron"],
                timezone=timezone,
                paused=bool(entry.get("paused", False)),
                description=entry.get("description"),
                parameters=params,
                tags=tuple(entry.get("tags") or ()),
            )
        )
    return specs


def deployment_parameters(
    spec: ScheduleSpec,
    config_path: str | Path | None,
    dask_address: str | None,
    workdir: str | None = None,
) -> dict[str, Any]:
    """The flow's ``config`` parameter: config file, then the entry's overrides, validated."""
    base = load_config(config_path, spec.flow, dask_address=dask_address, workdir=workdir)
    merged = _merge(base.model_dump(mode="json", exclude_unset=True), spec.parameters)
    config = parse_config(merged, spec.flow, source=f"deployment {spec.flow}/{spec.name}")
    # A deployment's parameters are stored in Prefect (and shown in its UI), where
    # credentials are masked: a served run would get "***". They must come from the
    # runner's environment instead.
    sections = [("", config)] + [
        (f"{name}.", getattr(config, name)) for name in ("data", "train", "recall")
        if hasattr(config, name)
    ]  # fmt: skip
    secrets = [
        key for where, section in sections
        for key in credential_keys(section.storage_options, f"{where}storage_options.")
    ]  # fmt: skip
    if secrets:
        raise ConfigError(
            f"deployment {spec.flow}/{spec.name}: {', '.join(secrets)} cannot be served "
            "(deployment parameters are stored in Prefect); give the credentials to the runner "
            "and workers as AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY instead"
        )
    return {"config": config.model_dump(mode="json", exclude_unset=True)}


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def build_deployments(
    specs: list[ScheduleSpec],
    config_path: str | Path | None = None,
    dask_address: str | None = None,
    workdir: str | None = None,
) -> list[Any]:
    """One Prefect ``RunnerDeployment`` per spec, its flow loaded by module path."""
    deployments = []
    for spec in specs:
        flow = load_flow(spec.flow)
        deployments.append(
            flow.to_deployment(
                name=spec.name,
                schedules=[Cron(spec.cron, timezone=spec.timezone)],
                paused=spec.paused,
                parameters=deployment_parameters(spec, config_path, dask_address, workdir),
                description=spec.description,
                tags=["nnpipe", *spec.tags],
                entrypoint_type=EntrypointType.MODULE_PATH,
            )
        )
    return deployments


def api_url() -> str | None:
    """The Prefect server in use (``PREFECT_API_URL``), or None for a temporary one."""
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value() or None


def serve_deployments(
    deployments: list[Any],
    *,
    run_once: bool = False,
    limit: int | None = 1,
    require_server: bool = True,
) -> None:
    """Register the deployments and run their scheduled flow runs (until Ctrl-C)."""
    if require_server and api_url() is None:
        raise ValueError(
            "schedules need a Prefect server: run `prefect server start` and set "
            "PREFECT_API_URL=http://127.0.0.1:4200/api (the temporary server schedules nothing)"
        )
    asyncio.run(_serve(deployments, run_once=run_once, limit=limit))


async def _serve(deployments: list[Any], run_once: bool, limit: int | None) -> None:
    # pause_on_shutdown: schedules stop with the process that runs them.
    runner = Runner(name="nnpipe", limit=limit, pause_on_shutdown=not run_once)
    for deployment in deployments:
        await runner.aadd_deployment(deployment)
    await runner.start(run_once=run_once)
