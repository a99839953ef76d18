"""docker/Dockerfile, docker/compose.yaml and docker/requirements.txt are well formed and agree.

No Docker engine is needed: the files are parsed and checked against each other,
against pyproject.toml and against the command lines' own parsers. Each check is a
function returning the problems it found, and is also run on a broken copy to
show it can fail.
"""

from __future__ import annotations

import copy
import re
import sys
import tomllib
from urllib.parse import urlsplit

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.system.compose import (
    COMPOSE_FILE,
    DOCKERFILE,
    ROOT,
    ComposeError,
    interpolate,
    interpolate_tree,
    load_compose,
    service_spec,
)
from tests.system.processes import PER_SERVICE_PORTS, LocalCompose

REQUIREMENTS = ROOT / "docker" / "requirements.txt"
DOCKERIGNORE = ROOT / "docker" / "Dockerfile.dockerignore"
NNPIPE_SERVICES = ("runner", "dask-scheduler", "dask-worker-1", "dask-worker-2")
WORKERS = ("dask-worker-1", "dask-worker-2")
# Services that run once and exit (compose's service_completed_successfully).
ONE_SHOT = ("s3-bucket",)


@pytest.fixture(scope="module")
def compose():
    return load_compose()


@pytest.fixture(scope="module")
def defaults(compose):
    """Every service as `docker compose` would run it (no variables set: the defaults)."""
    return interpolate_tree(compose, {}, "compose.yaml")


# -- Dockerfile ------------------------------------------------------------------------


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    out = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def dockerfile_problems(text: str) -> list[str]:
    problems = []
    steps = dockerfile_instructions(text)
    users = [args for word, args in steps if word == "USER"]
    if not users or users[-1].split(":")[0] in ("root", "0"):
        problems.append("the image must end as a non-root USER")
    # Every stage starts from the one base image, by default the official Python one.
    froms = [args.split()[0] for word, args in steps if word == "FROM"]
    if not froms or set(froms) != {"${BASE_IMAGE}"}:
        problems.append(f"every stage must start FROM ${{BASE_IMAGE}}, got {froms}")
    if "ARG BASE_IMAGE=python:${PYTHON_VERSION}-slim" not in text:
        problems.append("the base image must default to python:${PYTHON_VERSION}-slim")
    version = re.search(r"ARG PYTHON_VERSION=(\S+)", text)
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    if not version or version.group(1) != running:
        problems.append(f"PYTHON_VERSION must be the tested Python {running}")
    runs = " ".join(args for word, args in steps if word == "RUN")
    copies = [args for word, args in steps if word == "COPY"]
    if not any(a.startswith("docker/requirements.txt ") for a in copies) or (
        "--requirement /opt/wheels/requirements.txt" not in runs
    ):
        problems.append("dependencies must be installed from docker/requirements.txt")
    if not re.search(r"pip install [^&;]*--no-deps \.", runs):
        problems.append("nnpipe itself must be installed with --no-deps (versions are pinned)")
    for word, args in steps:
        if word in ("ADD", "COPY") and not args.startswith("--from="):
            *sources, _dest = args.split()
            # A pattern (docker/wheel[s]: the optional wheel directory) may match nothing.
            for source in (s for s in sources if not re.search(r"[*?[]", s)):
                if not (ROOT / source).exists():
                    problems.append(f"{word} source {source} does not exist")
    return problems


def ignored_by_dockerignore(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; '!' re-includes."""
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern[1:] if negate else pattern
        pattern = pattern.rstrip("/")
        regex = re.escape(pattern).replace(r"\*\*/", "(.*/)?").replace(r"\*", "[^/]*")
        if re.fullmatch(regex + "(/.*)?", path):
            ignored = not negate
    return ignored


def test_dockerfile_is_non_root_pinned_and_on_the_tested_python():
    assert dockerfile_problems(DOCKERFILE.read_text()) == []


def test_dockerfile_check_catches_a_root_image():
    broken = DOCKERFILE.read_text().replace("USER nnpipe:nnpipe", "USER root")
    assert "the image must end as a non-root USER" in dockerfile_problems(broken)


def test_build_context_sends_what_the_image_copies_and_not_the_venv():
    patterns = [
        ln.strip()
        for ln in DOCKERIGNORE.read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    copied = [
        re.sub(r"\[(.)\]", r"\1", source)  # docker/wheel[s] copies docker/wheels
        for word, args in dockerfile_instructions(DOCKERFILE.read_text())
        if word == "COPY" and not args.startswith("--from=")
        for source in args.split()[:-1]
    ]
    assert copied, "the Dockerfile copies nothing"
    assert [s for s in copied if ignored_by_dockerignore(s, patterns)] == []
    assert ignored_by_dockerignore("nnpipe/core/scalers.py", patterns) is False
    for heavy in (".venv/bin/python", "nnpipe-work/demo.npz", ".git/HEAD", "mlflow.db"):
        assert ignored_by_dockerignore(heavy, patterns), heavy
    assert ignored_by_dockerignore("nnpipe/__pycache__/cli.pyc", patterns)


# -- requirements.txt ------------------------------------------------------------------


def pinned_requirements(text: str) -> dict[str, str]:
    pins = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        specs = list(req.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", f"not an exact pin: {line}"
        name = canonicalize_name(req.name)
        assert name not in pins, f"{req.name} pinned twice"
        pins[name] = specs[0].version
    return pins


def pin_problems(pyproject: dict, pins: dict[str, str]) -> list[str]:
    problems = []
    for line in pyproject["project"]["dependencies"]:
        req = Requirement(line)
        version = pins.get(canonicalize_name(req.name))
        if version is None:
            problems.append(f"{req.name} is a dependency but is not pinned")
        elif not req.specifier.contains(version, prereleases=True):
            problems.append(f"{req.name}=={version} is outside pyproject's {req.specifier}")
    if "nnpipe" in pins:
        problems.append("nnpipe itself must not be pinned (the image installs the source)")
    return problems


def test_requirements_pin_every_runtime_dependency_within_pyproject_ranges():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pins = pinned_requirements(REQUIREMENTS.read_text())
    assert pin_problems(pyproject, pins) == []
    # Dev tools stay out of the image.
    assert not {"pytest", "hypothesis", "ruff"} & set(pins)


def test_pin_check_catches_a_version_outside_the_range():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pins = pinned_requirements(REQUIREMENTS.read_text())
    pins["numpy"] = "1.26.4"
    del pins["prefect"]
    problems = pin_problems(pyproject, pins)
    assert any(p.startswith("numpy==1.26.4 is outside") for p in problems)
    assert "prefect is a dependency but is not pinned" in problems


# -- compose.yaml ----------------------------------------------------------------------


def published_port_problems(services: dict) -> list[str]:
    problems = []
    for name, service in services.items():
        for port in service.get("ports", []):
            if isinstance(port, dict):
                host_ip, target = port.get("host_ip"), str(port.get("target"))
            else:
                parts = str(port).split(":")
                host_ip = parts[0] if len(parts) == 3 else None
                target = parts[-1]
            if host_ip != "127.0.0.1":
                problems.append(f"{name} publishes {port} beyond 127.0.0.1")
            listens = service["command"] + [
                str(v) for v in (service.get("environment") or {}).values()
            ]
            if not any(arg == target or arg.endswith(":" + target) for arg in listens):
                problems.append(f"{name} publishes {target}, which its command does not use")
    return problems


def test_compose_has_the_topology(compose):
    assert set(compose["services"]) == {
        "dask-scheduler",
        "dask-worker-1",
        "dask-worker-2",
        "mlflow",
        "prefect",
        "runner",
        "s3",
        "s3-bucket",
    }
    # The servers' own stores only: no volume is shared between services.
    assert set(compose["volumes"]) == {"mlflow-store", "prefect-store"}


def test_every_service_runs_the_one_nnpipe_image(defaults):
    services = defaults["services"]
    images = {(s["image"], repr(s.get("build"))) for s in services.values()}
    assert len(images) == 1, images
    [(image, _)] = images
    assert image.startswith("nnpipe:")
    for name in NNPIPE_SERVICES:
        assert services[name]["build"]["dockerfile"] == "docker/Dockerfile", name
    assert (COMPOSE_FILE.parent / services["runner"]["build"]["context"]).resolve() == ROOT


def test_ports_are_published_on_loopback_only(defaults):
    assert published_port_problems(defaults["services"]) == []
    published = {s for s, svc in defaults["services"].items() if svc.get("ports")}
    assert published == {"dask-scheduler", "mlflow", "prefect", "s3"}


def test_port_check_catches_a_port_open_to_every_interface(defaults):
    services = copy.deepcopy(defaults["services"])
    services["mlflow"]["ports"] = ["5000:5000"]
    services["prefect"]["ports"] = [{"target": 4200, "published": 4200}]
    problems = published_port_problems(services)
    assert "mlflow publishes 5000:5000 beyond 127.0.0.1" in problems
    assert any(p.startswith("prefect publishes") for p in problems)


def test_every_service_has_a_healthcheck_probing_its_own_port(defaults):
    for name, service in defaults["services"].items():
        if name in ONE_SHOT:
            assert service["restart"] == "no" and "healthcheck" not in service, name
            continue
        health = service.get("healthcheck")
        assert health and health["test"][0] == "CMD", f"{name} has no CMD healthcheck"
        url = re.search(r"https?://[^'\"]+", " ".join(health["test"]))
        assert url, f"{name}'s healthcheck probes no URL"
        port = str(urlsplit(url.group(0)).port)
        listens = service["command"] + [str(v) for v in (service.get("environment") or {}).values()]
        assert any(arg.endswith(port) for arg in listens), (
            f"{name}'s healthcheck probes port {port}, which the service does not listen on"
        )
        assert {"interval", "timeout", "retries", "start_period"} <= set(health), name


def test_clients_reach_servers_by_service_name_and_port(defaults):
    services = defaults["services"]
    scheduler_port = services["dask-scheduler"]["command"][
        services["dask-scheduler"]["command"].index("--port") + 1
    ]
    mlflow_cmd = services["mlflow"]["command"]
    mlflow_port = mlflow_cmd[mlflow_cmd.index("--port") + 1]
    prefect_cmd = services["prefect"]["command"]
    prefect_port = prefect_cmd[prefect_cmd.index("--port") + 1]
    for name in (*WORKERS, "runner"):
        env = services[name]["environment"]
        assert env["MLFLOW_TRACKING_URI"] == f"http://mlflow:{mlflow_port}", name
        assert env["PREFECT_API_URL"] == f"http://prefect:{prefect_port}/api", name
        assert f"tcp://dask-scheduler:{scheduler_port}" in services[name]["command"], name


def test_mlflow_allows_its_service_name_and_keeps_its_store_on_a_volume(defaults):
    mlflow = defaults["services"]["mlflow"]
    command = mlflow["command"]
    allowed = command[command.index("--allowed-hosts") + 1].split(",")
    assert "mlflow" in allowed and "mlflow:*" in allowed
    assert "*" not in allowed
    [volume] = mlflow["volumes"]
    name, mount = volume.split(":")
    assert name == "mlflow-store"
    assert command[command.index("--backend-store-uri") + 1] == f"sqlite:///{mount}/mlflow.db"
    # Artifacts go to the bucket, through the server: its clients need no credentials.
    assert command[command.index("--artifacts-destination") + 1] == "s3://nnpipe/mlflow-artifacts"
    assert "--serve-artifacts" in command
    assert mlflow["environment"]["AWS_ENDPOINT_URL"] == "http://s3:9000"
    assert mlflow["depends_on"] == {"s3-bucket": {"condition": "service_completed_successfully"}}


def test_the_bucket_is_made_on_the_s3_service_with_the_servers_credentials(defaults):
    services = defaults["services"]
    s3 = services["s3"]["command"]
    assert s3[0] == "moto_server" and s3[s3.index("--port") + 1] == "9000"
    bucket = services["s3-bucket"]
    assert bucket["depends_on"] == {"s3": {"condition": "service_healthy"}}
    assert 'bucket = "nnpipe"' in bucket["command"][-1]
    assert bucket["environment"].items() <= services["mlflow"]["environment"].items()
    # MLflow's clients get no credentials: only the processes that touch the bucket do.
    for name in ("dask-scheduler", "prefect"):
        assert not any(k.startswith("AWS_") for k in services[name].get("environment", {}))


def test_prefect_keeps_its_database_on_a_volume(defaults):
    prefect = defaults["services"]["prefect"]
    [volume] = prefect["volumes"]
    name, mount = volume.split(":")
    assert name == "prefect-store"
    assert prefect["environment"]["PREFECT_HOME"] == mount
    assert prefect["environment"]["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"


def test_runner_and_workers_use_the_bucket_and_share_no_volume(defaults):
    services = defaults["services"]
    s3_env = services["s3-bucket"]["environment"]
    assert s3_env == {
        "AWS_ENDPOINT_URL": "http://s3:9000",
        "AWS_ACCESS_KEY_ID": "nnpipe",
        "AWS_SECRET_ACCESS_KEY": "nnpipe-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    for name in (*WORKERS, "runner"):
        assert "volumes" not in services[name] and "working_dir" not in services[name], name
        assert s3_env.items() <= services[name]["environment"].items(), name
    # The runner's deployments work under the bucket; the workers get the paths from it.
    command = services["runner"]["command"]
    assert command[command.index("--workdir") + 1] == "s3://nnpipe/nnpipe-work"


def test_services_start_in_dependency_order(defaults):
    services = defaults["services"]
    for name in WORKERS:
        assert services[name]["depends_on"] == {"dask-scheduler": {"condition": "service_healthy"}}
    runner = services["runner"]["depends_on"]
    assert set(runner) == set(services) - {"runner"}
    for name, condition in runner.items():
        wanted = "service_completed_successfully" if name in ONE_SHOT else "service_healthy"
        assert condition == {"condition": wanted}, name


def test_workers_differ_only_by_name(defaults):
    one, two = (copy.deepcopy(defaults["services"][n]) for n in WORKERS)
    assert one["command"][one["command"].index("--name") + 1] == "dask-worker-1"
    assert two["command"][two["command"].index("--name") + 1] == "dask-worker-2"
    for svc in (one, two):
        svc["command"][svc["command"].index("--name") + 1] = "NAME"
    assert one == two


def test_runner_command_is_accepted_by_the_nnpipe_parser(defaults):
    from nnpipe.cli import build_parser

    command = defaults["services"]["runner"]["command"]
    assert command[:2] == ["nnpipe", "serve"]
    args = build_parser().parse_args(command[1:])
    assert args.command == "serve"
    assert args.dask_address == "tcp://dask-scheduler:8786"
    assert args.workdir == "s3://nnpipe/nnpipe-work"


def test_every_variable_is_documented_and_known_to_the_test_harness(compose, tmp_path):
    text = COMPOSE_FILE.read_text()
    header = text.split("\nname:", 1)[0]
    used = set(re.findall(r"\$\{(NNPIPE_[A-Z0-9_]+)", text))
    documented = set(re.findall(r"NNPIPE_[A-Z0-9_]+", header))
    # The header abbreviates pairs as NNPIPE_DASK_HOST/_PORT.
    for pair in re.findall(r"(NNPIPE_[A-Z0-9]+(?:_[A-Z0-9]+)*?)_HOST/_PORT", header):
        documented |= {f"{pair}_HOST", f"{pair}_PORT"}
    assert used - documented == set()
    local = LocalCompose(tmp_path)
    try:
        known = set(local.variables) | set(PER_SERVICE_PORTS)
    finally:
        local.close()
    assert used - known == set(), "variables the system tests would leave at container defaults"
    assert known - used == set(), "variables the system tests set but compose.yaml never reads"


def test_defaults_leave_no_placeholder_behind(defaults):
    for name in defaults["services"]:
        spec = service_spec(defaults, name, {})
        text = " ".join(spec.command + list(spec.environment.values()) + (spec.healthcheck or []))
        assert "$" not in text, name


@pytest.mark.parametrize(
    ("text", "variables", "expected"),
    [
        ("${A:-x}", {}, "x"),
        ("${A:-x}", {"A": ""}, "x"),
        ("${A-x}", {"A": ""}, ""),
        ("${A:-x}", {"A": "y"}, "y"),
        ("$A/${B}", {"A": "1", "B": "2"}, "1/2"),
        ("cost $$5", {}, "cost $5"),
        ("tcp://${H:-dask-scheduler}:${P:-8786}", {"P": "1234"}, "tcp://dask-scheduler:1234"),
    ],
)
def test_interpolation_follows_compose_rules(text, variables, expected):
    assert interpolate(text, variables) == expected


def test_interpolation_refuses_a_missing_required_variable_and_bad_syntax():
    with pytest.raises(ComposeError, match="variable A is required: set it"):
        interpolate("${A:?set it}", {})
    with pytest.raises(ComposeError, match="invalid interpolation"):
        interpolate("price: $ 5", {})


def test_a_shell_form_command_is_refused(compose):
    broken = copy.deepcopy(compose)
    broken["services"]["mlflow"]["command"] = "mlflow server --port 5000"
    with pytest.raises(ComposeError, match="exec form"):
        service_spec(broken, "mlflow", {})
