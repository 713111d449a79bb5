"""`register_model` / `convert_model`: verdicts, exit codes, aliases, builtin, --no-wait."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from models.models import Alias, ModelVersion
from tests.workers import ROOT, worker_env

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]


def register(*args: str) -> str:
    from io import StringIO

    out = StringIO()
    call_command("register_model", *args, stdout=out)
    return out.getvalue()


def test_it_validates_inline_prints_the_verdict_and_sets_the_alias(tiny):
    out = register(
        str(tiny["torchscript"]),
        "--family",
        "subject-lift",
        "--version",
        "1.0.0",
        "--alias",
        "production",
    )
    assert "subject-lift:1.0.0: ready, torchscript, sha256" in out and "latency" in out
    assert "subject-lift:production -> 1.0.0" in out
    assert Alias.objects.get(name="production").version.version == "1.0.0"
    assert "unchanged" in register(
        str(tiny["torchscript"]), "--family", "subject-lift", "--version", "1.0.0"
    )


def test_a_rejected_model_exits_1_with_the_reason(tiny):
    with pytest.raises(CommandError) as err:
        register(str(tiny["nan"]), "--family", "subject-lift", "--version", "1.0.0")
    assert err.value.returncode == 1
    assert ModelVersion.objects.get().rejection_reason == "alpha output contains NaN"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--version", "latest"], "Invalid version"),
        (["--version", "1.0.0", "--spec", "/nope.json"], "/nope.json: no spec file"),
        (["--version", "1.0.0", "--no-wait", "--alias", "candidate"], "drop --no-wait"),
        (["--version", "1.0.0", "--convert", "tflite"], "choose from onnx,coreml"),
        (["--version", "1.0.0", "--user", "ghost"], "no such user"),
    ],
)
def test_bad_arguments_exit_2_and_write_nothing(tiny, args, words):
    with pytest.raises(CommandError, match=words) as err:
        register(str(tiny["torchscript"]), "--family", "subject-lift", *args)
    assert err.value.returncode == 2
    assert not ModelVersion.objects.exists()


def test_a_missing_sidecar_spec_is_a_bad_argument(tiny, tmp_path):
    lonely = tmp_path / "lonely.pt"
    shutil.copy(tiny["torchscript"], lonely)
    with pytest.raises(CommandError, match="no spec file") as err:
        register(str(lonely), "--family", "f", "--version", "1.0.0")
    assert err.value.returncode == 2


def test_a_researcher_cannot_move_production_from_the_cli(tiny, researcher):
    with pytest.raises(CommandError, match="Only release managers") as err:
        register(
            str(tiny["torchscript"]),
            "--family",
            "subject-lift",
            "--version",
            "1.0.0",
            "--alias",
            "production",
            "--user",
            "rita",
        )
    assert err.value.returncode == 2 and not Alias.objects.exists()


def test_no_wait_enqueues_the_validation_job(tiny, no_broker, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        out = register(str(tiny["torchscript"]), "--family", "f", "--version", "1.0.0", "--no-wait")
    assert "queued validation job #" in out and no_broker.call_count == 1
    assert ModelVersion.objects.get().status == "uploaded"


def test_builtin_baseline_registers_from_the_cli():
    out = register(
        "--builtin", "saliency-grabcut", "--family", "subject-lift", "--version", "0.0.1"
    )
    assert "subject-lift:0.0.1: ready, builtin" in out


@pytest.mark.django_db(transaction=True)
def test_the_process_exit_code_is_1_for_a_rejected_upload(tiny):
    done = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "register_model",
            str(tiny["random"]),
            "--family",
            "f",
            "--version",
            "1.0.0",
        ],
        cwd=ROOT,
        env=worker_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "f:1.0.0: rejected" in done.stdout
    assert "not a recognised model file" in done.stdout
