"""The `nnpipe` command run as a client of the loopback cluster."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from tests.system.processes import VENV_BIN, LocalCompose, s3_env


class CommandFailed(AssertionError):
    pass


def run_nnpipe(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 150) -> str:
    """Run `nnpipe ARGS` to completion in its own process group; return stdout."""
    proc = subprocess.Popen(
        [str(VENV_BIN / "nnpipe"), *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise CommandFailed(
            f"nnpipe {args[0]} did not finish in {timeout} s\n{err[-3000:]}"
        ) from None
    finally:
        if proc.poll() is None:  # interrupted while waiting: leave nothing behind
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    if proc.returncode != 0:
        raise CommandFailed(f"nnpipe {args[0]} exited {proc.returncode}\n{err[-3000:]}")
    return out


def s3_client(cluster):
    """A boto3 client for the topology's store, with the servers' own credentials."""
    import boto3

    env = s3_env(cluster.variables)
    return boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_DEFAULT_REGION"],
    )


def s3_storage_options(cluster) -> dict:
    """fsspec options naming the topology's store: explicit, so that no s3fs instance
    cached for another endpoint (fsspec caches them by their options) is reused."""
    env = s3_env(cluster.variables)
    return {
        "endpoint_url": env["AWS_ENDPOINT_URL"],
        "key": env["AWS_ACCESS_KEY_ID"],
        "secret": env["AWS_SECRET_ACCESS_KEY"],
        "client_kwargs": {"region_name": env["AWS_DEFAULT_REGION"]},
    }


def bucket_url(cluster, *parts: str) -> str:
    """``s3://BUCKET/parts...`` in the topology's bucket, where the runner and workers meet."""
    return "/".join([f"s3://{cluster.variables['NNPIPE_BUCKET']}", *parts])


def bucket_keys(cluster, prefix: str) -> list[str]:
    """Every key under ``prefix`` in the topology's bucket."""
    pages = (
        s3_client(cluster)
        .get_paginator("list_objects_v2")
        .paginate(Bucket=cluster.variables["NNPIPE_BUCKET"], Prefix=prefix)
    )
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


class LoopbackCluster(LocalCompose):
    """The local processes with the interface the pipeline tests use in both topologies."""

    @property
    def runner_dask_address(self) -> str:
        """The scheduler as the runner names it: one network here, so as any client does."""
        return self.dask_address

    def file_for_runner(self, path: Path) -> str:
        """Where the runner reads a file the tests wrote: the same path, on this host."""
        return str(path)

    def run_nnpipe(self, args: list[str], timeout: float = 150) -> str:
        """`nnpipe ARGS` where the runner would run it: with the servers' addresses and the
        bucket's credentials."""
        return run_nnpipe(args, self.client_env(), self.data_dir, timeout)
