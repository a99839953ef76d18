"""Read docker/compose.yaml and turn a service into a local command line.

The compose file writes every host, port and directory as ``${NNPIPE_...:-default}``.
Here those variables get loopback addresses, free ports and temporary directories,
with the interpolation rules of Compose itself (the subset the file uses), so the
command a test starts is the command a container would run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker" / "compose.yaml"
DOCKERFILE = ROOT / "docker" / "Dockerfile"

# $$ (a literal $), ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message},
# ${NAME?message}, or $NAME. Defaults here hold no nested ${...}.
_TOKEN = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<invalid>))"
)


class ComposeError(ValueError):
    """The compose file cannot be read or interpolated."""


def interpolate(text: str, variables: dict[str, str], where: str = "compose.yaml") -> str:
    """Substitute ``${NAME:-default}``-style variables in ``text`` as Compose does."""

    def substitute(match: re.Match) -> str:
        if match.group("escaped") is not None:
            return "$"
        if match.group("invalid") is not None:
            raise ComposeError(f"{where}: invalid interpolation at {text[match.start() :]!r}")
        name = match.group("braced") or match.group("named")
        op, arg = match.group("op"), match.group("arg")
        value = variables.get(name)
        unset_or_empty = value is None or (op is not None and op.startswith(":") and value == "")
        if op in (":-", "-") and unset_or_empty:
            return arg
        if op in (":?", "?") and unset_or_empty:
            raise ComposeError(f"{where}: variable {name} is required: {arg}")
        return value if value is not None else ""

    return _TOKEN.sub(substitute, text)


def interpolate_tree(value: Any, variables: dict[str, str], where: str) -> Any:
    """``interpolate`` applied to every string of a parsed YAML value."""
    if isinstance(value, str):
        return interpolate(value, variables, where)
    if isinstance(value, list):
        return [interpolate_tree(v, variables, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: interpolate_tree(v, variables, f"{where}.{k}") for k, v in value.items()}
    return value


def load_compose(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    """The compose file as parsed YAML (anchors and ``<<`` merges resolved), uninterpolated."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ComposeError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("services"), dict):
        raise ComposeError(f"{path} has no 'services' mapping")
    return data


@dataclass(frozen=True)
class ServiceSpec:
    """One compose service, interpolated: what to run, with which environment, how to probe."""

    name: str
    command: list[str]
    environment: dict[str, str]
    healthcheck: list[str] | None


def _as_argv(value: Any, where: str) -> list[str]:
    # Exec form only: a shell string would be split differently by a shell.
    if not isinstance(value, list) or not all(isinstance(v, (str, int)) for v in value):
        raise ComposeError(f"{where} must be a list of arguments (exec form), got {value!r}")
    return [str(v) for v in value]


def _environment(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, list):  # ["NAME=value", ...]
        return dict(item.split("=", 1) for item in value)
    if isinstance(value, dict):
        return {str(k): "" if v is None else str(v) for k, v in value.items()}
    raise ComposeError(f"{where} must be a mapping or a list, got {value!r}")


def service_spec(compose: dict[str, Any], name: str, variables: dict[str, str]) -> ServiceSpec:
    """Service ``name`` of ``compose`` with ``variables`` filled in."""
    services = compose["services"]
    if name not in services:
        raise ComposeError(f"compose.yaml has no service {name!r}; services: {', '.join(services)}")
    raw = services[name]
    where = f"services.{name}"
    if "command" not in raw:
        raise ComposeError(f"{where} has no command")
    command = _as_argv(interpolate_tree(raw["command"], variables, f"{where}.command"), where)
    env = _environment(interpolate_tree(raw.get("environment"), variables, where), where)
    health = None
    test = (raw.get("healthcheck") or {}).get("test")
    if test is not None:
        argv = _as_argv(interpolate_tree(test, variables, f"{where}.healthcheck"), where)
        if argv[0] != "CMD":
            raise ComposeError(f"{where}.healthcheck.test must use the CMD form, got {argv[0]!r}")
        health = argv[1:]
    return ServiceSpec(name=name, command=command, environment=env, healthcheck=health)
