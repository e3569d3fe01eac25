"""A real S3-compatible server on 127.0.0.1 for the tests: moto's standalone server (PyPI).

moto was chosen because it installs with pip like the rest of the suite (no binary download,
no JVM), speaks the S3 REST protocol over HTTP (so boto3's real signing, retries, streaming
and multipart code runs), and can check credentials. A store that stops answering is
tests/blobs/proxy.py in front of it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

import boto3

from streams.broker import free_port

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ACCESS_KEY = "AKIADARKROOMTEST0001"
SECRET_KEY = "darkroom-test-secret"


class LocalS3:
    """``python -m moto.server`` on a free port of 127.0.0.1, logging to ``log``."""

    def __init__(self, log: Path) -> None:
        self.port = free_port()
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        """The endpoint URL clients are given."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30.0) -> LocalS3:
        """Start it and wait until it answers."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto server exited: {self.log.read_text()[-2000:]}")
            try:
                urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=2).close()
                return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.1)
        raise RuntimeError(f"moto server did not answer within {timeout_s:g} s")

    def client(self, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY) -> S3Client:
        """A boto3 client of the server's own (to set up and inspect buckets)."""
        client: S3Client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
        )
        return client

    def create_bucket(self, bucket: str) -> None:
        """A new, empty bucket."""
        self.client().create_bucket(Bucket=bucket)

    def enforce_credentials(self, bucket: str) -> tuple[str, str]:
        """From now on, refuse requests not signed with the returned (access key, secret) of
        an IAM user allowed s3:* (moto's own switch; it cannot be switched back off).
        ``bucket`` is created first."""
        iam = boto3.client(
            "iam",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )
        iam.create_user(UserName="darkroom")
        allow_s3 = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
        }
        iam.put_user_policy(
            UserName="darkroom", PolicyName="s3", PolicyDocument=json.dumps(allow_s3)
        )
        key = iam.create_access_key(UserName="darkroom")["AccessKey"]
        self.create_bucket(bucket)
        request = urllib.request.Request(  # not a form: moto reads the raw body
            f"{self.endpoint}/moto-api/reset-auth",
            data=b"0",
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        urllib.request.urlopen(request, timeout=5).close()
        return key["AccessKeyId"], key["SecretAccessKey"]

    def stop(self) -> None:
        """Stop it."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
