"""The compose file's ``s3-bucket`` step, run against its ``s3`` service as local processes."""

from __future__ import annotations

import pytest

from tests.system.commands import s3_client
from tests.system.processes import LocalCompose

pytestmark = [pytest.mark.service]


def test_bucket_step_creates_the_bucket_in_the_stores_region_and_can_run_again(tmp_path):
    with LocalCompose(tmp_path) as compose:
        # Outside us-east-1 a bucket must be created with its region named, as on AWS.
        compose.variables["NNPIPE_S3_REGION"] = "eu-west-1"
        compose.start(["s3"])
        compose.wait_healthy(["s3"])
        compose.run_to_completion("s3-bucket")
        s3 = s3_client(compose)
        bucket = compose.variables["NNPIPE_BUCKET"]
        assert s3.get_bucket_location(Bucket=bucket)["LocationConstraint"] == "eu-west-1"
        s3.put_object(Bucket=bucket, Key="kept", Body=b"data")
        # A second run (a restarted topology) finds the bucket and leaves it alone.
        compose.run_to_completion("s3-bucket")
        assert s3.get_object(Bucket=bucket, Key="kept")["Body"].read() == b"data"
    assert compose.surviving_groups() == []
