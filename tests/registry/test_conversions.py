"""Conversions become validated child versions (ONNX predicted here; Core ML checked here)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from evalsite.core.models import Job
from models.models import ModelVersion

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]


def test_register_with_convert_adds_onnx_and_coreml_children(tiny):
    out = StringIO()
    call_command(
        "register_model",
        str(tiny["pt2"]),
        "--family",
        "subject-lift",
        "--version",
        "1.0.0",
        "--convert",
        "onnx,coreml",
        stdout=out,
    )
    source = ModelVersion.objects.get(version="1.0.0")
    onnx = ModelVersion.objects.get(version="1.0.0+onnx")
    coreml = ModelVersion.objects.get(version="1.0.0+coreml")
    assert (onnx.status, onnx.format, onnx.parent) == ("ready", "onnx", source)
    assert onnx.validation_report["latency_ms"] > 0
    assert onnx.conversion == {
        "source": "subject-lift:1.0.0",
        "source_id": source.pk,
        "source_sha256": source.sha256,
        "target": "onnx",
    }
    assert (coreml.status, coreml.format, coreml.parent) == ("ready", "coreml", source)
    assert coreml.status_note == "prediction on macOS workers only: coreml queue"
    assert coreml.validation_report["normalisation"]["ok"] is True
    assert coreml.spec["input"]["mean"] == [0.0, 0.0, 0.0] and coreml.file.name.endswith(".zip")
    assert "1.0.0+coreml: ready, coreml" in out.getvalue()

    # Converting again is a no-op that returns the existing child.
    again = StringIO()
    call_command("convert_model", "subject-lift:1.0.0", "--to", "onnx", stdout=again)
    assert ModelVersion.objects.filter(version="1.0.0+onnx").count() == 1


def test_only_ready_torch_export_versions_convert(tiny):
    call_command(
        "register_model",
        str(tiny["torchscript"]),
        "--family",
        "f",
        "--version",
        "1.0.0",
        stdout=StringIO(),
    )
    with pytest.raises(CommandError, match=r"conversions start from a torch\.export") as err:
        call_command("convert_model", "f:1.0.0", "--to", "onnx")
    assert err.value.returncode == 2
    with pytest.raises(CommandError, match=r"no version '2\.0\.0'"):
        call_command("convert_model", "f:2.0.0", "--to", "onnx")


def test_the_convert_button_queues_a_conversion_job(
    client, researcher, tiny, no_broker, django_capture_on_commit_callbacks
):
    call_command(
        "register_model", str(tiny["pt2"]), "--family", "f", "--version", "1.0.0", stdout=StringIO()
    )
    client.force_login(researcher)
    assert b'id="convert"' in client.get("/models/f/1.0.0/").content
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/models/f/1.0.0/convert/", {"target": "coreml"})
    assert response.status_code == 302
    job = Job.objects.get(kind="registry.convert")
    assert job.payload["target"] == "coreml" and no_broker.call_count == 1
