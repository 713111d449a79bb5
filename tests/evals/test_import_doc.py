"""docs/importing.md ("evaluate a model the platform can't run") works as written: the CI curl
against a live server, and the `import_predictions` line (its arguments, run in-process)."""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from rest_framework.authtoken.models import Token

from evalsite.evals.models import EvalRun, RunSource
from tests.evals.factories import tiny_set, tiny_spec, user_with, version_row
from tests.evals.importing import write_predictions

pytestmark = [pytest.mark.no_services]

IMPORT_DOC = Path(__file__).resolve().parents[2] / "docs" / "importing.md"


def section_blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)```", IMPORT_DOC.read_text(), flags=re.S)


def block_with(needle: str) -> str:
    (block,) = [b for b in section_blocks() if needle in b]
    return block


def _prepare(tmp_path: Path) -> None:
    version_row("subject-lift", "1.1.0+coreml", fmt="coreml", spec=tiny_spec())
    dv = tiny_set(tmp_path, name="pascal-s-demo", n=3, empty=1)
    folder = write_predictions(dv, tmp_path / "device-out")
    stems = sorted(p.stem for p in folder.glob("*.png"))
    (tmp_path / "latency.csv").write_text(
        "image,ms\n" + "".join(f"{s},{7 + i}\n" for i, s in enumerate(stems))
    )


def test_the_documented_ci_curl_imports_against_a_live_server(
    transactional_db: Any, live_server: Any, tmp_path: Path
) -> None:
    assert shutil.which("curl"), "curl is needed for this test"
    _prepare(tmp_path)
    token = Token.objects.create(user=user_with("researcher")).key
    env = {**os.environ, "BASE": live_server.url, "TOKEN": token}
    done = subprocess.run(["bash", "-c", block_with("curl")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    body = json.loads(done.stdout)
    assert body["source"] == "imported" and body["status"] == "queued", body
    run = EvalRun.objects.get(pk=body["id"])
    assert run.device == "iPhone 15 Pro" and run.has_latency
    assert run.model_version.ref == "subject-lift:1.1.0+coreml"


@pytest.mark.django_db
def test_the_documented_import_predictions_line_runs_as_written(tmp_path: Path) -> None:
    _prepare(tmp_path)
    line = block_with("import_predictions").replace("\\\n", " ")
    args = shlex.split(line)
    args = args[args.index("import_predictions") + 1 :]
    args = [str(tmp_path / a) if a in ("device-out", "latency.csv") else a for a in args]
    out = io.StringIO()
    call_command("import_predictions", *args, stdout=out)
    run = EvalRun.objects.get()
    assert out.getvalue().startswith(f"run {run.pk}\n")
    assert run.source == RunSource.IMPORTED and run.compute_units == "cpuAndNeuralEngine"
    assert run.os == "macOS 15.2" and run.runtime_label == "Core ML 8"
