"""Run compose services as local processes on 127.0.0.1, and always stop them.

Each service runs in its own session (so its own process group): stopping it
signals the whole group, which takes the server's own children (uvicorn workers,
a Dask nanny's worker process) with it. Three layers make sure nothing outlives
the tests: ``LocalCompose.close()`` from the fixture's finalizer, an ``atexit``
hook, and a watchdog process that kills every group it was told about once the
test process is gone (even when that process was killed with SIGKILL).
"""

from __future__ import annotations

import atexit
import importlib.metadata
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

import psutil

from tests.system.compose import (
    DOCKERFILE,
    ServiceSpec,
    interpolate,
    load_compose,
    service_spec,
)

VENV_BIN = Path(sys.executable).parent

# Resolved per service: each container has its own network namespace, so in
# compose every worker can use the same port; here each process needs its own.
PER_SERVICE_PORTS = ("NNPIPE_WORKER_HTTP_PORT", "NNPIPE_RUNNER_HTTP_PORT")

# The test process's own settings for these must not leak into the servers.
_PRIVATE_PREFIXES = ("PREFECT_", "MLFLOW_", "DASK_", "NNPIPE_", "AWS_")


class ServiceFailed(RuntimeError):
    """A service exited, or did not become healthy in time; carries its log's tail."""


def migrated_prefect_db(env: dict[str, str]) -> Path:
    """An empty Prefect database with every migration applied, built once per Prefect version.

    A fresh `prefect server start` spends about 17 CPU-seconds migrating its new
    SQLite database (here: ~60 % of its start-up). The migrations are exercised
    when this template is built; each test run then starts from a copy of it, as
    a restarted server would.
    """
    cache = Path(tempfile.gettempdir()) / f"nnpipe-test-templates-{os.getuid()}"
    template = cache / f"prefect-{importlib.metadata.version('prefect')}.db"
    if template.exists():
        return template
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as home:
        done = subprocess.run(
            [str(VENV_BIN / "prefect"), "server", "database", "upgrade", "-y"],
            env={**env, "PREFECT_HOME": home},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            raise ServiceFailed(f"migrating a Prefect database failed:\n{done.stderr[-3000:]}")
        os.replace(Path(home) / "prefect.db", template)  # atomic: concurrent runs agree
    return template


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def s3_variables(host: str) -> dict[str, str]:
    """The bundled S3 server on a free port, reached at ``host``, with its bucket and keys."""
    port = str(free_port())
    return {
        "NNPIPE_S3_PORT": port,
        "NNPIPE_S3_ENDPOINT_URL": f"http://{host}:{port}",
        "NNPIPE_S3_ACCESS_KEY_ID": "nnpipe-test",
        "NNPIPE_S3_SECRET_ACCESS_KEY": "nnpipe-test-secret",
        "NNPIPE_S3_REGION": "us-east-1",
        "NNPIPE_BUCKET": "nnpipe-test",
    }


def s3_env(variables: dict[str, str]) -> dict[str, str]:
    """The AWS variables compose gives the processes that use the bucket, from ``variables``."""
    return {
        "AWS_ENDPOINT_URL": variables["NNPIPE_S3_ENDPOINT_URL"],
        "AWS_ACCESS_KEY_ID": variables["NNPIPE_S3_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": variables["NNPIPE_S3_SECRET_ACCESS_KEY"],
        "AWS_DEFAULT_REGION": variables["NNPIPE_S3_REGION"],
    }


def dockerfile_env(path: Path = DOCKERFILE) -> dict[str, str]:
    """The ``ENV key=value`` settings of the Dockerfile (what every container starts with)."""
    text = re.sub(r"\\\n", " ", path.read_text())
    env: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line.upper().startswith("ENV "):
            for item in line[4:].split():
                key, sep, value = item.partition("=")
                if not sep:
                    raise ValueError(f"{path}: ENV needs key=value pairs, got {item!r}")
                if key != "PATH":  # the image's; locally the venv's bin comes first
                    env[key] = value.strip('"')
    return env


class ServiceProcess:
    """One compose service running as a local process group, with its log file."""

    def __init__(self, spec: ServiceSpec, env: dict[str, str], cwd: Path, log_path: Path):
        self.spec = spec
        self.env = env
        self.cwd = cwd
        self.log_path = log_path
        self.popen: subprocess.Popen | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def pid(self) -> int:
        assert self.popen is not None, f"{self.name} was never started"
        return self.popen.pid

    def start(self) -> None:
        """Start the service's command in a new session (process group = its pid)."""
        self.cwd.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"$ {' '.join(self.spec.command)}\n".encode())
            log.flush()
            self.popen = subprocess.Popen(
                self.spec.command,
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log_tail(self, n_lines: int = 30) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(lines[-n_lines:])

    def healthy(self) -> bool:
        """Run the service's compose healthcheck command once; True when it exits 0."""
        if self.spec.healthcheck is None:
            return self.running()
        # Starting an interpreter per probe costs CPU the starting servers need: probe
        # only once the port the healthcheck asks accepts connections.
        url = re.search(r"https?://([^/:'\"]+):(\d+)", " ".join(self.spec.healthcheck))
        if url and not _port_open(url.group(1), int(url.group(2))):
            return False
        try:
            done = subprocess.run(
                self.spec.healthcheck,
                env=self.env,
                cwd=self.cwd,
                capture_output=True,
                timeout=15,
            )
        except subprocess.TimeoutExpired:
            return False
        return done.returncode == 0

    def signal_group(self, signum: int) -> bool:
        """Send ``signum`` to the whole process group; False when nothing is left in it."""
        if self.popen is None:
            return False
        try:
            os.killpg(self.popen.pid, signum)
            return True
        except ProcessLookupError:
            return False

    def kill(self) -> None:
        """SIGKILL the whole group at once, as a machine failure would (no clean shutdown)."""
        self.signal_group(signal.SIGKILL)
        if self.popen is not None:
            self.popen.wait(timeout=30)

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the group, wait up to ``grace`` seconds, then SIGKILL whatever is left."""
        stop_all([self], grace)


def stop_all(processes: list[ServiceProcess], grace: float = 10.0) -> None:
    """SIGTERM every group at once, wait up to ``grace`` seconds, then SIGKILL the rest."""
    signalled = [p for p in processes if p.signal_group(signal.SIGTERM)]
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        for p in signalled:
            p.popen.poll()  # reap the leader so that it does not count as alive
        if not any(_group_alive(p.popen.pid) for p in signalled):
            break
        time.sleep(0.1)
    for p in signalled:
        p.signal_group(signal.SIGKILL)
    for p in processes:
        if p.popen is not None:
            p.popen.wait(timeout=10)


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - a group we cannot signal is not ours
        return False
    return True


_WATCHDOG = r"""
import os, signal, sys, time
parent, pgid_file = int(sys.argv[1]), sys.argv[2]
while os.getppid() == parent:
    time.sleep(0.5)
try:
    pgids = [int(x) for x in open(pgid_file).read().split()]
except OSError:
    pgids = []
for sig in (signal.SIGTERM, signal.SIGKILL):
    for pgid in pgids:
        try:
            os.killpg(pgid, sig)
        except OSError:
            pass
    time.sleep(5)
"""


class LocalCompose:
    """The services of docker/compose.yaml as local processes under one temporary root."""

    def __init__(self, root: Path, compose: dict | None = None):
        self.root = Path(root)
        self.compose = compose if compose is not None else load_compose()
        self.logs = self.root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.home = self.root / "home"
        self.home.mkdir(exist_ok=True)
        self.variables = {
            "NNPIPE_BIND_HOST": "127.0.0.1",
            "NNPIPE_DASK_HOST": "127.0.0.1",
            "NNPIPE_DASK_PORT": str(free_port()),
            "NNPIPE_DASK_DASHBOARD_PORT": str(free_port()),
            "NNPIPE_MLFLOW_HOST": "127.0.0.1",
            "NNPIPE_MLFLOW_PORT": str(free_port()),
            "NNPIPE_PREFECT_HOST": "127.0.0.1",
            "NNPIPE_PREFECT_PORT": str(free_port()),
            # Two cores shared with everything else on this machine.
            "NNPIPE_WORKER_THREADS": "1",
            "NNPIPE_MLFLOW_WORKERS": "1",
            **s3_variables("127.0.0.1"),
            "NNPIPE_MLFLOW_DIR": str(self.root / "mlflow"),
            "NNPIPE_PREFECT_DIR": str(self.root / "prefect"),
        }
        for key in ("NNPIPE_MLFLOW_DIR", "NNPIPE_PREFECT_DIR"):
            Path(self.variables[key]).mkdir(parents=True, exist_ok=True)
        # Not the topology's (it shares no volume): a directory of this host, where
        # the loopback-only tests keep files every local process sees.
        self.data_dir = self.root / "data"
        self.data_dir.mkdir(exist_ok=True)
        self.service_variables: dict[str, dict[str, str]] = {}
        self.escaped: list[str] = []
        self.processes: dict[str, ServiceProcess] = {}
        self._pgid_file = self.root / "process-groups"
        self._watchdog = subprocess.Popen(
            [sys.executable, "-c", _WATCHDOG, str(os.getpid()), str(self._pgid_file)],
            start_new_session=True,
            stdin=subprocess.DEVNULL,
        )
        atexit.register(self.close)

    # -- addresses the tests use -----------------------------------------------------

    @property
    def dask_address(self) -> str:
        v = self.variables
        return f"tcp://{v['NNPIPE_DASK_HOST']}:{v['NNPIPE_DASK_PORT']}"

    @property
    def dask_http(self) -> str:
        v = self.variables
        return f"http://{v['NNPIPE_BIND_HOST']}:{v['NNPIPE_DASK_DASHBOARD_PORT']}"

    @property
    def mlflow_uri(self) -> str:
        v = self.variables
        return f"http://{v['NNPIPE_MLFLOW_HOST']}:{v['NNPIPE_MLFLOW_PORT']}"

    @property
    def prefect_api_url(self) -> str:
        v = self.variables
        return f"http://{v['NNPIPE_PREFECT_HOST']}:{v['NNPIPE_PREFECT_PORT']}/api"

    def client_env(self) -> dict[str, str]:
        """Environment for a client process (the `nnpipe` command) using these servers."""
        env = self._base_env()
        env["PREFECT_HOME"] = str(self.home / ".prefect-client")
        env["PREFECT_API_URL"] = self.prefect_api_url
        env["MLFLOW_TRACKING_URI"] = self.mlflow_uri
        env.update(s3_env(self.variables))
        return env

    # -- services --------------------------------------------------------------------

    def variables_for(self, name: str) -> dict[str, str]:
        """The variables service ``name`` is interpolated with (per-service ports fixed once)."""
        if name not in self.service_variables:
            own = {key: str(free_port()) for key in PER_SERVICE_PORTS}
            self.service_variables[name] = {**self.variables, **own}
        return self.service_variables[name]

    def spec(self, name: str) -> ServiceSpec:
        return service_spec(self.compose, name, self.variables_for(name))

    def _base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(_PRIVATE_PREFIXES)}
        env.update(dockerfile_env())
        env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
        # The image user's home: ~/.prefect, ~/.config/dask and caches stay in the root.
        env["HOME"] = str(self.home)
        env["PREFECT_HOME"] = str(self.home / ".prefect")
        return env

    def start(self, names: Iterable[str]) -> None:
        """Start services (not waiting for them); see ``wait_healthy``."""
        for name in names:
            if name in self.processes and self.processes[name].running():
                raise RuntimeError(f"service {name} is already running")
            spec = self.spec(name)
            raw = self.compose["services"][name]
            working_dir = raw.get("working_dir")
            cwd = Path(self.spec_value(name, working_dir)) if working_dir else self.home
            env = self._base_env()
            env.update(spec.environment)
            if name == "prefect":
                db = Path(env["PREFECT_HOME"]) / "prefect.db"
                if not db.exists():
                    shutil.copyfile(migrated_prefect_db(env), db)
            proc = ServiceProcess(spec, env, cwd, self.logs / f"{name}.log")
            proc.start()
            self.processes[name] = proc
            self._record_groups()

    def spec_value(self, name: str, text: str) -> str:
        """``text`` interpolated with service ``name``'s variables."""
        return interpolate(text, self.variables_for(name), f"services.{name}")

    def run_to_completion(self, name: str, timeout: float = 120.0) -> None:
        """Start a one-shot service (``restart: "no"``) and wait for it to exit 0."""
        self.start([name])
        proc = self.processes[name]
        try:
            code = proc.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise ServiceFailed(
                f"{name} did not finish in {timeout:.0f} s:\n{proc.log_tail()}"
            ) from None
        if code != 0:
            raise ServiceFailed(f"{name} exited with code {code}:\n{proc.log_tail()}")

    def wait_healthy(self, names: Iterable[str], timeout: float = 150.0) -> dict[str, float]:
        """Poll each service's healthcheck until it passes; seconds each took from now."""
        pending = list(names)
        start = time.monotonic()
        took: dict[str, float] = {}
        while pending:
            for name in list(pending):
                proc = self.processes[name]
                if not proc.running():
                    raise ServiceFailed(
                        f"service {name} exited with code {proc.popen.returncode} before it "
                        f"was healthy; log {proc.log_path}:\n{proc.log_tail()}"
                    )
                if proc.healthy():
                    took[name] = time.monotonic() - start
                    pending.remove(name)
            if pending and time.monotonic() - start > timeout:
                tails = "\n".join(
                    f"--- {n} ({self.processes[n].log_path}):\n{self.processes[n].log_tail()}"
                    for n in pending
                )
                raise ServiceFailed(f"not healthy after {timeout:.0f} s: {pending}\n{tails}")
            if pending:
                time.sleep(0.5)
        return took

    def kill(self, name: str) -> None:
        """SIGKILL a service's whole process group (fault injection)."""
        self.processes[name].kill()

    def stop(self, name: str) -> None:
        self.processes[name].stop()

    def ensure_running(self, names: Iterable[str]) -> None:
        """Start again (and wait for) any of ``names`` that has stopped, e.g. after a kill."""
        stopped = [n for n in names if n not in self.processes or not self.processes[n].running()]
        if stopped:
            self.start(stopped)
            self.wait_healthy(stopped)

    def close(self, grace: float = 5.0) -> None:
        """Stop every service at once, then the watchdog."""
        # A child that left its service's process group would not get the group's
        # signals: note every descendant now, and kill any still alive afterwards.
        descendants = []
        for p in self.processes.values():
            if p.running():
                try:
                    descendants += psutil.Process(p.pid).children(recursive=True)
                except psutil.NoSuchProcess:
                    pass
        # `mlflow server` lingers about 6 s after its uvicorn child has shut down
        # cleanly; the stores are temporary, so a short grace loses nothing.
        stop_all(list(self.processes.values()), grace)
        for child in descendants:
            try:
                if child.is_running() and child.status() != psutil.STATUS_ZOMBIE:
                    self.escaped.append(" ".join(child.cmdline()))
                    child.kill()
            except psutil.NoSuchProcess:
                pass
        self._record_groups()
        if self._watchdog.poll() is None:
            self._watchdog.kill()
            self._watchdog.wait()
        atexit.unregister(self.close)

    def surviving_groups(self) -> list[str]:
        """Services with a process left in their group, and processes that had left their
        service's group but were still running when it stopped (after ``close``: none)."""
        alive = [
            name
            for name, p in self.processes.items()
            if p.popen is not None and _group_alive(p.popen.pid)
        ]
        return alive + self.escaped

    def _record_groups(self) -> None:
        pgids = " ".join(str(p.pid) for p in self.processes.values() if p.popen is not None)
        self._pgid_file.write_text(pgids)

    def __enter__(self) -> LocalCompose:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
