"""The example CI pipeline (examples/ci/) against a live server and a real worker, on the demo's
data: the shipped models on `pascal-s-test`, production = 1.2.0. Uploading 1.0.0 (a weaker
model) through gate.sh exits 3 and prints the failing gate; uploading 1.2.0's weights as 1.2.1
through gate.py exits 0 or 4 — each equal to `release_report`'s exit code for the same inputs.
The gate evaluates what has no run (both sides the first time) and reuses production's run after.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command

from evalsite.datasets.importing import dataset_import
from evalsite.releases.models import ReleaseGate
from models.models import PRODUCTION, Alias
from models.services import api_token_create, model_version_register
from tests.evals.factories import user_with
from tests.workers import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker, pytest.mark.no_services]

ROOT = Path(settings.BASE_DIR)
MODELS = ROOT / "fixtures" / "models"
SET = "pascal-s-test"


def model(version: str) -> tuple[Path, Path]:
    return MODELS / f"subject-lift-{version}.pt2", MODELS / f"subject-lift-{version}.pt2.spec.json"


def run_example(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=900, cwd=ROOT)  # fmt: skip


def release_report_exit(candidate: str) -> int:
    with pytest.raises(SystemExit) as exc:
        call_command("release_report", "--candidate", candidate, "--dataset", SET,
                     stdout=StringIO())  # fmt: skip
    return int(exc.value.code)


def _worker_live(queue: str) -> bool:
    from evalsite.core.selectors import workers_by_queue

    return bool(workers_by_queue()[queue].live)


def test_the_example_pipeline_exits_with_the_verdicts_code(live_server: Any, start_worker: Any):
    dataset_import(path=ROOT / "fixtures" / "sets" / SET, name=SET, user=None)
    pt2, spec = model("1.2.0")
    production = model_version_register(
        family="subject-lift", version="1.2.0", file=pt2, spec=json.loads(spec.read_text()),
        validate="inline",
    ).version  # fmt: skip
    assert production.status == "ready", production.rejection_reason
    Alias.objects.create(family=production.family, name=PRODUCTION, version=production)
    key = api_token_create(user=user_with("researcher", "ci-bot"), scopes="upload,evaluate,report")
    worker = start_worker(queues="default,torch", include="")
    wait_for(lambda: _worker_live("torch"), 60, "the worker heartbeat", worker)
    common = {"PLATFORM_URL": live_server.url, "PLATFORM_TOKEN": key.key, "DATASETS": SET,
              "FAMILY": "subject-lift", "POLL_SECONDS": "1", "TIMEOUT_SECONDS": "800"}  # fmt: skip

    # a weaker candidate through the shell script: the report fails it
    pt2, spec = model("1.0.0")
    weak = {**common, "MODEL_FILE": str(pt2), "SPEC_FILE": str(spec), "VERSION": "1.0.0",
            "GATE_KEY": "ci-run-1"}  # fmt: skip
    done = run_example(["bash", "examples/ci/gate.sh"], weak)
    assert done.returncode == 3, done.stdout + done.stderr + worker.output()[-3000:]
    assert "verdict: fail" in done.stdout and "[fail] IoU non-inferiority" in done.stdout
    gate = ReleaseGate.objects.get(key="ci-run-1")
    assert {(r["side"], r["reused"]) for r in gate.runs} == {("candidate", False),
                                                              ("baseline", False)}  # fmt: skip
    assert release_report_exit("subject-lift:1.0.0") == 3
    # a retried CI job with the same key gets the same gate and the same answer, no new work
    again = run_example(["bash", "examples/ci/gate.sh"], weak)
    assert again.returncode == 3 and ReleaseGate.objects.count() == 1

    # the production weights as a new version through the Python script: nothing fails
    pt2, spec = model("1.2.0")
    same = {**common, "MODEL_FILE": str(pt2), "SPEC_FILE": str(spec), "VERSION": "1.2.1",
            "GATE_KEY": "ci-run-2"}  # fmt: skip
    done = run_example([sys.executable, "examples/ci/gate.py"], same)
    assert done.returncode in (0, 4), done.stdout + done.stderr + worker.output()[-3000:]
    assert "[fail]" not in done.stdout
    gate = ReleaseGate.objects.get(key="ci-run-2")
    assert {(r["side"], r["reused"]) for r in gate.runs} == {("candidate", False),
                                                              ("baseline", True)}  # fmt: skip
    assert release_report_exit("subject-lift:1.2.1") == done.returncode
