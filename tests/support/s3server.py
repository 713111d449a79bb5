"""The test S3 server: moto's standalone server as a real process over HTTP on loopback, a fresh
bucket per test, and an outage proxy that can put the server out of reach or make it answer 503.

Why moto: no production-grade S3 server (MinIO, SeaweedFS, Garage, versitygw) is packaged in
Debian or on PyPI, the only registries these machines and CI reach, and images cannot be pulled;
moto[server] (pinned in requirements-dev.txt) starts in about a second. It is a test server: it
keeps objects in memory, so stopping it loses them; the outage proxy stands in for a server that
goes away and comes back.

    server = MotoServer.start(log=path)        # or the session fixture `s3_server`
    endpoint = server.bucket("evalsite")       # or the fixture `s3`: a fresh bucket per test
    endpoint.env()                             # STORAGE_URL, S3_ENDPOINT_URL, S3_REGION, keys
    proxy = S3OutageProxy(server)              # or the fixture `s3_proxy`
    proxy.endpoint(endpoint).env()             # the same bucket, reached through the proxy
    proxy.unreachable_for(10)                  # cut and refuse connections for 10 s
    proxy.fail_next(3)                         # the next 3 requests answer 503
"""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from tests.core.tcp_proxy import TcpProxy
from tests.workers import stop_process_group

#: moto accepts any credentials; these only have to look like keys to the clients.
ACCESS_KEY = "testing-access-key"
SECRET_KEY = "testing-secret-key"
REGION = "us-east-1"
#: moto imports every AWS service's models on its first request: seconds on a loaded machine.
START_TIMEOUT = 60.0
_bucket_numbers = itertools.count(1)


@dataclass(frozen=True)
class S3Endpoint:
    """One bucket on an S3-protocol server, and the settings a process needs to use it."""

    url: str
    bucket: str
    prefix: str = ""
    region: str = REGION
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY

    @property
    def storage_url(self) -> str:
        return f"s3://{self.bucket}" + (f"/{self.prefix}" if self.prefix else "")

    def env(self) -> dict[str, str]:
        """The platform's storage settings for this bucket, as environment variables."""
        return {
            "STORAGE_URL": self.storage_url,
            "S3_ENDPOINT_URL": self.url,
            "S3_REGION": self.region,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
        }

    def client(self, *, attempts: int = 3) -> Any:
        """A boto3 S3 client for this server (path-style, as for any non-AWS endpoint) that
        makes at most `attempts` tries of each request (1: boto3's retries off)."""
        import boto3
        from botocore.config import Config

        config = Config(
            s3={"addressing_style": "path"},
            retries={"total_max_attempts": attempts, "mode": "standard"},
            connect_timeout=5,
            read_timeout=30,
        )
        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=config,
        )

    def object_keys(self) -> list[str]:
        """Every key in the bucket (under the prefix, if any)."""
        client = self.client()
        found: list[str] = []
        for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=f"{self.prefix}/" if self.prefix else ""
        ):
            found += [o["Key"] for o in page.get("Contents", [])]
        return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _answers(url: str) -> bool:
    # No proxy from the environment: the server is on loopback.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"{url}/", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


class MotoServer:
    """moto's standalone server (`moto_server` from the venv), one process in its own session."""

    def __init__(self, proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
        self.proc = proc
        self.url = url
        self.port = int(url.rsplit(":", 1)[1])
        self.log = log

    @classmethod
    def start(cls, *, log: Path, timeout: float = START_TIMEOUT) -> MotoServer:
        """Start it on a free loopback port and wait until it answers an S3 request."""
        binary = Path(sys.executable).parent / "moto_server"
        for _ in range(3):  # the free port may be taken between probing and binding
            port = _free_port()
            url = f"http://127.0.0.1:{port}"
            proc = subprocess.Popen(
                [str(binary), "-H", "127.0.0.1", "-p", str(port)],
                stdout=open(log, "ab"),  # noqa: SIM115
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            server = cls(proc, url, log)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and proc.poll() is None:
                if _answers(url):
                    return server
                time.sleep(0.1)
            server.stop()
            if time.monotonic() >= deadline:
                break
        raise RuntimeError(f"moto_server did not answer in {timeout:.0f} s:\n{server.output()}")

    def bucket(self, name: str | None = None, *, prefix: str = "") -> S3Endpoint:
        """Create a bucket (a fresh name unless given) and return its endpoint."""
        endpoint = S3Endpoint(
            url=self.url,
            bucket=name or f"test-{os.getpid()}-{next(_bucket_numbers)}",
            prefix=prefix,
        )
        endpoint.client().create_bucket(Bucket=endpoint.bucket)
        return endpoint

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""

    def stop(self) -> None:
        stop_process_group(self.proc, timeout=10)
        self.proc.wait()


#: The S3 error document a failing server answers (S3's own code for "retry later").
_UNAVAILABLE_BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>ServiceUnavailable</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)


def _unavailable(status: int) -> bytes:
    return (
        f"HTTP/1.1 {status} Service Unavailable\r\nContent-Type: application/xml\r\n"
        f"Content-Length: {len(_UNAVAILABLE_BODY)}\r\nConnection: close\r\n\r\n"
    ).encode() + _UNAVAILABLE_BODY


def _read_head(reader: BinaryIO) -> bytes:
    """One request's line and headers, through the blank line; b"" when the client closed."""
    lines = []
    while True:
        line = reader.readline(65537)
        if not line:
            return b""
        lines.append(line)
        if line in (b"\r\n", b"\n"):
            return b"".join(lines)


def _header(head: bytes, name: str) -> str:
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name.encode():
            return value.strip().decode("latin-1").lower()
    return ""


class S3OutageProxy(TcpProxy):
    """A loopback forwarder in front of an S3 server, which tests switch to fail on purpose.

    `unreachable_for(seconds)` closes every open connection and refuses new ones (closed as soon
    as they are accepted) until the time is up: the server is down or the network is cut.
    `fail_next(k)` answers the next `k` requests with 503 ServiceUnavailable (and closes their
    connection) without passing them on: the server is up but failing. It reads requests one at a
    time (HTTP/1.1 without pipelining, as boto3 sends them), so it also counts them.
    """

    def __init__(self, server: MotoServer) -> None:
        super().__init__("127.0.0.1", server.port)
        self.url = f"http://127.0.0.1:{self.port}"
        self.requests = 0
        self.failed = 0
        self._failures_left = 0
        self._count_lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def endpoint(self, endpoint: S3Endpoint) -> S3Endpoint:
        """The same bucket, reached through this proxy."""
        return replace(endpoint, url=self.url)

    def unreachable_for(self, seconds: float) -> None:
        self.cut()
        if self._timer is not None:
            self._timer.cancel()
        self._timer = threading.Timer(seconds, self.restore)
        self._timer.daemon = True
        self._timer.start()

    def fail_next(self, k: int) -> None:
        with self._count_lock:
            self._failures_left = k

    @property
    def reachable(self) -> bool:
        return self._open.is_set()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        super().close()

    def _bridge(self, client: socket.socket, upstream: socket.socket) -> None:
        threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()
        threading.Thread(target=self._requests, args=(client, upstream), daemon=True).start()

    def _take_failure(self) -> bool:
        with self._count_lock:
            self.requests += 1
            if self._failures_left <= 0:
                return False
            self._failures_left -= 1
            self.failed += 1
            return True

    def _requests(self, client: socket.socket, upstream: socket.socket) -> None:
        reader = client.makefile("rb")
        try:
            while True:
                head = _read_head(reader)
                if not head:
                    break
                length = int(_header(head, "content-length") or 0)
                if self._take_failure():
                    if _header(head, "expect") != "100-continue":
                        reader.read(length)  # the body was sent: take it before answering
                    client.sendall(_unavailable(503))
                    break
                upstream.sendall(head)
                if "chunked" in _header(head, "transfer-encoding"):
                    # Not framed here (boto3 sends lengths over plain HTTP): pass the rest on.
                    while data := reader.read1(65536):
                        upstream.sendall(data)
                    break
                while length > 0:
                    data = reader.read1(min(length, 65536))
                    if not data:
                        return
                    upstream.sendall(data)
                    length -= len(data)
        except (OSError, ValueError):
            pass
        finally:
            reader.close()
            self._drop(client, upstream)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """One moto server for the test session (its log in the session's temp folder)."""
    server = MotoServer.start(log=tmp_path_factory.mktemp("s3-server") / "moto.log")
    yield server
    server.stop()


@pytest.fixture
def s3(s3_server: MotoServer) -> S3Endpoint:
    """A fresh, empty bucket for this test: ids restart with each test's database, so id-based
    keys of one test must not meet another's."""
    return s3_server.bucket()


@pytest.fixture
def s3_proxy(s3_server: MotoServer) -> Iterator[S3OutageProxy]:
    proxy = S3OutageProxy(s3_server)
    yield proxy
    proxy.close()
