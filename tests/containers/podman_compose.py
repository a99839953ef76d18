"""Run the services of docker/compose.yaml as podman containers on the host network.

What compose would do, with what this machine allows: every service runs the image
with its own command, environment, working directory, named volumes and
healthcheck, read from the compose file. The containers share the host's network
(each server listens on the port the file declares, filled in with free ports so
parallel runs do not meet), and every service name resolves to 127.0.0.1 inside
them, as compose's own DNS would resolve it to the service. Healthchecks run
through ``podman healthcheck run`` (no systemd timers here), polled at the file's
``start_interval``. Containers and volumes carry a label with the run's id, so that
teardown (here, and the shell script's trap) removes exactly what this run made.
"""

from __future__ import annotations

import shlex
import socket
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

from tests.system.compose import interpolate, interpolate_tree, load_compose, service_spec
from tests.system.processes import PER_SERVICE_PORTS, ServiceFailed, free_port, s3_variables

LABEL = "nnpipe.container-test"


class CommandFailed(AssertionError):
    pass


def podman(
    *args: str, check: bool = True, timeout: float = 120, **kw
) -> subprocess.CompletedProcess:
    """Run ``podman ARGS`` (runtime and containers.conf come from the environment)."""
    done = subprocess.run(
        ["podman", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        **kw,
    )
    if check and done.returncode != 0:
        raise CommandFailed(
            f"podman {' '.join(args[:3])} ... exited {done.returncode}: {done.stderr[-2000:]}"
        )
    return done


def _seconds(value: str | None, default: str) -> str:
    # Compose durations ("15s", "1m30s") are Go durations, which podman reads as they are.
    return str(value or default)


class PodmanCompose:
    """The compose services as containers of one run (``run_id``), from one image."""

    def __init__(self, root: Path, image: str, run_id: str, compose: dict | None = None):
        self.root = Path(root)
        self.image = image
        self.run_id = run_id
        self.compose = compose if compose is not None else load_compose()
        self.logs = self.root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.volumes: dict[str, str] = {}  # compose volume name -> podman volume name
        self.variables = {
            # Listen on loopback only: compose publishes every port on 127.0.0.1.
            "NNPIPE_BIND_HOST": "127.0.0.1",
            "NNPIPE_DASK_PORT": str(free_port()),
            "NNPIPE_DASK_DASHBOARD_PORT": str(free_port()),
            "NNPIPE_MLFLOW_PORT": str(free_port()),
            "NNPIPE_PREFECT_PORT": str(free_port()),
            # Two cores shared with everything else on this machine.
            "NNPIPE_WORKER_THREADS": "1",
            "NNPIPE_MLFLOW_WORKERS": "1",
            # The host network: the tests on the host reach the store where the
            # containers do.
            **s3_variables("127.0.0.1"),
        }
        self.service_variables: dict[str, dict[str, str]] = {}
        self.started: list[str] = []
        self._create_volumes()

    # -- addresses for clients on the host -------------------------------------------

    @property
    def dask_address(self) -> str:
        return f"tcp://127.0.0.1:{self.variables['NNPIPE_DASK_PORT']}"

    @property
    def runner_dask_address(self) -> str:
        """The scheduler's address as the runner container names it (its service name)."""
        return f"tcp://dask-scheduler:{self.variables['NNPIPE_DASK_PORT']}"

    @property
    def mlflow_uri(self) -> str:
        return f"http://127.0.0.1:{self.variables['NNPIPE_MLFLOW_PORT']}"

    @property
    def prefect_api_url(self) -> str:
        return f"http://127.0.0.1:{self.variables['NNPIPE_PREFECT_PORT']}/api"

    # -- volumes ---------------------------------------------------------------------

    def _create_volumes(self) -> None:
        for name in self.compose.get("volumes") or {}:
            volume = f"{self.run_id}-{name}"
            podman("volume", "create", "--label", f"{LABEL}={self.run_id}", volume)
            self.volumes[name] = volume

    # -- services --------------------------------------------------------------------

    def variables_for(self, name: str) -> dict[str, str]:
        """The variables service ``name`` is interpolated with (per-service ports fixed once)."""
        if name not in self.service_variables:
            # One network for all: each server needs its own port, as in tests/system.
            own = {key: str(free_port()) for key in PER_SERVICE_PORTS}
            self.service_variables[name] = {**self.variables, **own}
        return self.service_variables[name]

    def container(self, name: str) -> str:
        return f"{self.run_id}-{name}"

    def run_args(self, name: str) -> list[str]:
        """The ``podman run`` arguments for service ``name``, from its compose entry."""
        variables = self.variables_for(name)
        spec = service_spec(self.compose, name, variables)
        raw = interpolate_tree(self.compose["services"][name], variables, f"services.{name}")
        args = ["run", "--detach", "--name", self.container(name), "--network", "host"]
        args += [
            "--label",
            f"{LABEL}={self.run_id}",
            "--label",
            f"com.docker.compose.service={name}",
        ]
        for other in self.compose["services"]:
            args += ["--add-host", f"{other}:127.0.0.1"]
        for key, value in spec.environment.items():
            args += ["--env", f"{key}={value}"]
        for mount in raw.get("volumes") or []:
            source, _, target = str(mount).partition(":")
            args += ["--volume", f"{self.volumes[source]}:{target}"]
        if raw.get("working_dir"):
            args += ["--workdir", raw["working_dir"]]
        for port in raw.get("ports") or []:
            _, host, target = str(port).split(":")
            if host != target:  # one network: a server can only be reached on its own port
                raise CommandFailed(
                    f"services.{name} publishes {port}: host and container ports differ"
                )
        health = raw.get("healthcheck") or {}
        if spec.healthcheck:
            # No timer (no systemd here): wait_healthy runs the check itself. Podman 4.3
            # splits a JSON array at blanks, so the argv goes through sh, quoted.
            args += [
                "--health-cmd",
                shlex.join(spec.healthcheck),
                "--health-interval",
                "disable",
            ]
            args += ["--health-timeout", _seconds(health.get("timeout"), "30s")]
            args += ["--health-retries", str(health.get("retries", 3))]
            args += ["--health-start-period", _seconds(health.get("start_period"), "0s")]
        return [*args, self.image, *spec.command]

    def start(self, names: Iterable[str]) -> None:
        for name in names:
            podman(*self.run_args(name))
            self.started.append(name)

    def status(self, name: str) -> str:
        done = podman("inspect", "--format", "{{.State.Status}}", self.container(name), check=False)
        return done.stdout.strip() if done.returncode == 0 else "missing"

    def log_tail(self, name: str, n_lines: int = 30) -> str:
        done = podman("logs", "--tail", str(n_lines), self.container(name), check=False)
        return (done.stdout + done.stderr).strip()

    def _interval(self, name: str) -> float:
        health = self.compose["services"][name].get("healthcheck") or {}
        text = str(health.get("start_interval") or health.get("interval") or "2s")
        return float(text.rstrip("s")) if text.endswith("s") and text[:-1].isdigit() else 2.0

    def run_to_completion(self, name: str, timeout: float = 120.0) -> None:
        """Start a one-shot service (``restart: "no"``) and wait for it to exit 0."""
        self.start([name])
        done = podman("wait", self.container(name), timeout=timeout)
        if done.stdout.strip() != "0":
            raise ServiceFailed(
                f"{name} exited with code {done.stdout.strip()}:\n{self.log_tail(name)}"
            )

    def wait_healthy(self, names: Iterable[str], timeout: float = 240.0) -> dict[str, float]:
        """Run each service's own healthcheck until it passes; seconds each took from now."""
        pending = {name: 0.0 for name in names}  # name -> when to probe next
        start = time.monotonic()
        took: dict[str, float] = {}
        while pending:
            for name, due in list(pending.items()):
                if time.monotonic() < due:
                    continue
                state = self.status(name)
                if state != "running":
                    raise ServiceFailed(f"container of {name} is {state}:\n{self.log_tail(name)}")
                check = podman("healthcheck", "run", self.container(name), check=False, timeout=60)
                if check.returncode == 0:
                    took[name] = time.monotonic() - start
                    del pending[name]
                else:
                    pending[name] = time.monotonic() + self._interval(name)
            if pending and time.monotonic() - start > timeout:
                tails = "\n".join(f"--- {n}:\n{self.log_tail(n)}" for n in pending)
                raise ServiceFailed(
                    f"not healthy after {timeout:.0f} s: {sorted(pending)}\n{tails}"
                )
            time.sleep(0.5)
        return took

    def published_ports(self, name: str) -> list[int]:
        """The host ports service ``name`` publishes, as compose would publish them."""
        raw = interpolate_tree(self.compose["services"][name], self.variables_for(name), name)
        return [int(str(p).split(":")[1]) for p in raw.get("ports") or []]

    def port_open(self, port: int) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2):
                return True
        except OSError:
            return False

    def file_for_runner(self, path: Path) -> str:
        """Copy a file the tests wrote into the runner container; its path there."""
        inside = f"/tmp/{path.name}"
        podman("cp", str(path), f"{self.container('runner')}:{inside}")
        return inside

    def run_nnpipe(self, args: list[str], timeout: float = 300) -> str:
        """``nnpipe ARGS`` inside the runner container (its environment and working dir)."""
        done = podman(
            "exec", self.container("runner"), "nnpipe", *args, check=False, timeout=timeout
        )
        if done.returncode != 0:
            raise CommandFailed(
                f"nnpipe {args[0]} in the runner exited {done.returncode}\n{done.stderr[-3000:]}"
            )
        return done.stdout

    def exec(self, name: str, *argv: str) -> str:
        return podman("exec", self.container(name), *argv).stdout

    def kill(self, name: str) -> None:
        """SIGKILL the service's container, as a machine failure would (no clean shutdown)."""
        podman("kill", "--signal", "KILL", self.container(name))
        podman("wait", self.container(name), check=False)

    def stop(self, name: str) -> None:
        podman("rm", "--force", "--time", "5", self.container(name), check=False)

    def ensure_running(self, names: Iterable[str]) -> None:
        """Start again (and wait for) any of ``names`` that has stopped, e.g. after a kill."""
        stopped = [n for n in names if self.status(n) != "running"]
        for name in stopped:
            self.stop(name)
        if stopped:
            self.start(stopped)
            self.wait_healthy(stopped)

    def save_logs(self) -> None:
        for name in self.started:
            done = podman("logs", self.container(name), check=False)
            (self.logs / f"{name}.log").write_text(done.stdout + done.stderr)

    def close(self) -> None:
        """Remove this run's containers and volumes (and nothing else)."""
        self.save_logs()
        flt = f"label={LABEL}={self.run_id}"
        done = podman("rm", "--force", "--time", "5", "--filter", flt, check=False)
        # Once, a container of a run outlived this call with nothing said about it on
        # the console: say what podman answered, and try once more by name.
        left = podman("ps", "--all", "--filter", flt, "--format", "{{.Names}}").stdout.split()
        if left:
            (self.logs / "podman-rm.log").write_text(done.stdout + done.stderr)
            for name in left:
                again = podman("rm", "--force", "--time", "5", name, check=False)
                if again.returncode != 0:
                    print(f"podman rm {name}: {again.stderr.strip()}")
        for volume in self.volumes.values():
            podman("volume", "rm", "--force", volume, check=False)

    def remaining(self) -> list[str]:
        """Containers and volumes of this run that still exist (after ``close``: none)."""
        flt = f"label={LABEL}={self.run_id}"
        ps = podman("ps", "--all", "--filter", flt, "--format", "{{.Names}}").stdout.split()
        vols = podman("volume", "ls", "--filter", flt, "--format", "{{.Name}}").stdout.split()
        return ps + vols

    def spec_value(self, name: str, text: str) -> str:
        return interpolate(text, self.variables_for(name), f"services.{name}")
