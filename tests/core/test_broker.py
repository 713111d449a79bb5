"""The embedded broker (evalsite.core.broker) writes a message under a hidden name and renames it
into place: a polling worker never lists a message file before it holds the whole message."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.conf import settings
from kombu import Connection

from evalsite.core import broker
from evalsite.env import broker_from_url, broker_transport

pytestmark = pytest.mark.no_services


def test_a_message_is_listed_only_once_it_is_whole(tmp_path, monkeypatch):
    _, options = broker_from_url("CELERY_BROKER_URL", "filesystem://", tmp_path / "broker")
    seen_while_writing = []
    real_replace = os.replace

    def replace(src: str, dst: str) -> None:  # the moment before the message becomes visible
        seen_while_writing.append((channel._size("torch"), Path(src).read_bytes()))
        real_replace(src, dst)

    monkeypatch.setattr(broker.os, "replace", replace)
    with Connection("filesystem://", transport=broker.Transport,
                    transport_options=options) as conn:  # fmt: skip
        channel = conn.default_channel
        channel._put("torch", {"body": "chunk 7"})
        assert channel._size("torch") == 1
        assert channel._get("torch") == {"body": "chunk 7"}
        assert channel._size("torch") == 0
    [(size, written)] = seen_while_writing
    assert size == 0 and b"chunk 7" in written  # whole before it was listed
    assert not [n for n in os.listdir(options["data_folder_in"]) if n.endswith(".tmp")]


def test_only_the_filesystem_broker_uses_the_atomic_transport():
    from evalsite.celery import app

    assert broker_transport("filesystem://") == "evalsite.core.broker:Transport"
    assert broker_transport("redis://127.0.0.1:6379/0") is None
    # The running configuration (embedded broker, or Redis under CI): the app's connections use
    # the transport the settings chose for its URL.
    embedded = settings.CELERY_BROKER_URL == "filesystem://"
    assert broker_transport(settings.CELERY_BROKER_URL) == settings.CELERY_BROKER_TRANSPORT
    with app.connection_for_write() as conn:
        assert isinstance(conn.transport, broker.Transport) == embedded
