"""The test S3 server and its outage proxy do what the storage tests rely on.

A real moto server process over HTTP; boto3 with its own retries off, so each failure the proxy
makes is seen as it is.
"""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError

from tests.support.s3server import MotoServer, S3Endpoint, S3OutageProxy

pytestmark = pytest.mark.no_services

UNREACHABLE = (ConnectionClosedError, EndpointConnectionError)


def test_the_server_is_a_real_process_that_stores_objects_in_a_fresh_bucket(
    s3_server: MotoServer, s3: S3Endpoint
) -> None:
    assert s3_server.proc.poll() is None and s3.url.startswith("http://127.0.0.1:")
    assert s3.object_keys() == [], "a test's bucket starts empty"
    s3.client().put_object(Bucket=s3.bucket, Key="a/b.png", Body=b"bytes")
    assert s3.object_keys() == ["a/b.png"]
    assert s3.client().get_object(Bucket=s3.bucket, Key="a/b.png")["Body"].read() == b"bytes"
    assert s3.env() == {
        "STORAGE_URL": f"s3://{s3.bucket}",
        "S3_ENDPOINT_URL": s3.url,
        "S3_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": s3.access_key,
        "AWS_SECRET_ACCESS_KEY": s3.secret_key,
    }


def test_each_test_gets_its_own_bucket(s3_server: MotoServer, s3: S3Endpoint) -> None:
    other = s3_server.bucket(prefix="media")
    assert other.bucket != s3.bucket
    assert other.env()["STORAGE_URL"] == f"s3://{other.bucket}/media"


def test_the_proxy_passes_requests_and_bodies_through_and_counts_them(
    s3: S3Endpoint, s3_proxy: S3OutageProxy
) -> None:
    client = s3_proxy.endpoint(s3).client(attempts=1)
    body = bytes(range(256)) * 4096  # 1 MiB: several reads of the body on its way through
    client.put_object(Bucket=s3.bucket, Key="big", Body=body)
    for _ in range(3):
        assert client.get_object(Bucket=s3.bucket, Key="big")["Body"].read() == body
    assert s3_proxy.requests == 4


def test_fail_next_answers_exactly_k_requests_with_503_then_serves_again(
    s3: S3Endpoint, s3_proxy: S3OutageProxy
) -> None:
    client = s3_proxy.endpoint(s3).client(attempts=1)
    client.put_object(Bucket=s3.bucket, Key="k", Body=b"v")

    s3_proxy.fail_next(2)
    for _ in range(2):
        with pytest.raises(ClientError) as failed:
            client.get_object(Bucket=s3.bucket, Key="k")
        assert failed.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        assert failed.value.response["Error"]["Code"] == "ServiceUnavailable"
    # a put's body is taken and dropped with the 503, never stored
    s3_proxy.fail_next(1)
    with pytest.raises(ClientError):
        client.put_object(Bucket=s3.bucket, Key="dropped", Body=b"x" * 10_000)

    assert client.get_object(Bucket=s3.bucket, Key="k")["Body"].read() == b"v"
    assert s3_proxy.failed == 3
    assert s3.object_keys() == ["k"]


def test_unreachable_for_refuses_connections_until_the_time_is_up(
    s3: S3Endpoint, s3_proxy: S3OutageProxy
) -> None:
    client = s3_proxy.endpoint(s3).client(attempts=1)
    client.put_object(Bucket=s3.bucket, Key="k", Body=b"v")

    s3_proxy.unreachable_for(1.5)
    began = time.monotonic()
    with pytest.raises(UNREACHABLE):
        client.get_object(Bucket=s3.bucket, Key="k")
    with pytest.raises(UNREACHABLE):
        s3_proxy.endpoint(s3).client(attempts=1).list_objects_v2(Bucket=s3.bucket)
    assert s3_proxy.refused >= 1 and not s3_proxy.reachable

    while not s3_proxy.reachable:
        assert time.monotonic() - began < 10, "the proxy never came back"
        time.sleep(0.05)
    assert time.monotonic() - began >= 1.4
    assert client.get_object(Bucket=s3.bucket, Key="k")["Body"].read() == b"v"
    assert s3.object_keys() == ["k"], "the server itself kept its objects"
