"""Every shipped candidate and the builtin baseline give the same outputs in any order and chunking.

Real sandboxed runners (no fake session) on real PASCAL-S photos: each model is evaluated twice —
chunks of 1 in order, then one chunk with the items reversed — through the same warm sandbox child,
so the second run processes every photo after a different history (GrabCut's output once depended
on the RNG state earlier photos left). Both runs must carry the same outputs digest. The reproduce
action then goes end to end through a real Celery worker (done hook included). Marked
`no_services`: CI runs these on the embedded default and again on PostgreSQL + Redis.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from evalsite.evals.models import EvalRun, ItemResult, RunStatus
from evalsite.evals.services import runner as runners
from evalsite.evals.services.runs import eval_run_start
from pipelines.runners.builtin import builtin_spec
from tests.evals.factories import register_ready, tiny_set
from tests.inline import run_job_inline
from tests.workers import wait_for

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "fixtures" / "models"
PHOTOS = ROOT / "fixtures" / "sets" / "pascal-s-demo"
STEMS = tuple(sorted(p.stem for p in (PHOTOS / "images").glob("*.jpg"))[:3])
CANDIDATES = sorted(p.name.removeprefix("subject-lift-").removesuffix(".pt2")
                    for p in MODELS.glob("subject-lift-*.pt2"))  # fmt: skip


def photo_set(tmp_path: Path) -> Any:
    from evalsite.datasets.importing import dataset_import
    from evalsite.datasets.models import DatasetVersion

    folder = tmp_path / "photos"
    for sub, suffix in (("images", ".jpg"), ("masks", ".png")):
        (folder / sub).mkdir(parents=True)
        for stem in STEMS:
            shutil.copy(PHOTOS / sub / f"{stem}{suffix}", folder / sub / f"{stem}{suffix}")
    result = dataset_import(path=folder, name="pascal-four")
    return DatasetVersion.objects.get(pk=result.version.pk)


def execute(run: EvalRun, capture: Any, *, reverse: bool) -> EvalRun:
    """Run the chunks in this process through the real sandboxed session (as a worker would)."""
    return run_job_inline(run, capture, reverse=reverse)


def shas(run: EvalRun) -> dict[str, str]:
    return dict(ItemResult.objects.filter(run=run).values_list("item__stem", "alpha_sha256"))


@pytest.fixture
def warm_sessions():
    runners.session_cache_clear()
    yield
    runners.session_cache_clear()


@pytest.mark.django_db
@pytest.mark.no_services
@pytest.mark.parametrize("model", [*CANDIDATES, "builtin"])
def test_model_gives_identical_digests_in_two_orders_and_chunk_sizes(
    tmp_path, model, warm_sessions, django_capture_on_commit_callbacks
):
    if model == "builtin":
        version = register_ready("baseline", "0.0.1", file=None, spec=builtin_spec())
    else:
        spec = json.loads((MODELS / f"subject-lift-{model}.pt2.spec.json").read_text())
        version = register_ready(
            "subject-lift", model, file=MODELS / f"subject-lift-{model}.pt2", spec=spec
        )
    dv = photo_set(tmp_path)
    first = execute(
        eval_run_start(model_version=version, dataset_version=dv, chunk_size=1),
        django_capture_on_commit_callbacks,
        reverse=False,
    )
    second = execute(
        eval_run_start(model_version=version, dataset_version=dv, chunk_size=len(STEMS)),
        django_capture_on_commit_callbacks,
        reverse=True,
    )
    assert first.status == second.status == RunStatus.DONE, (first.error, second.error)
    assert first.summary["counts"]["ok"] == len(STEMS)
    assert shas(first) == shas(second)
    assert len(set(shas(first).values())) == len(STEMS)  # real, distinct outputs
    assert first.output_digest and first.output_digest == second.output_digest
    assert first.summary["metrics"] == second.summary["metrics"]
    determinism = first.environment["workers"][0]["determinism"]
    assert determinism["deterministic"] is True


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
@pytest.mark.no_services
def test_reproduce_through_a_worker_reports_every_image_identical(tmp_path, start_worker, capsys):
    # Given a finished run of the GrabCut baseline, evaluated by a real worker
    version = register_ready("baseline", "0.0.1", file=None, spec=builtin_spec())
    dv = tiny_set(tmp_path, n=4, empty=1)
    worker = start_worker(queues="default,torch", include="")
    wait_for(lambda: _worker_live("torch"), 60, "the worker heartbeat", worker)
    out = io.StringIO()
    call_command("run_eval", "--model", version.ref, "--dataset", dv.spec, "--wait",
                 "--timeout", "240", "--json", stdout=out, stderr=io.StringIO())  # fmt: skip
    original = EvalRun.objects.get(pk=json.loads(out.getvalue())["id"])
    assert original.status == RunStatus.DONE and original.output_digest

    # When it is reproduced from the CLI and waited for
    capsys.readouterr()
    out = io.StringIO()
    call_command("run_eval", "--reproduce", str(original.pk), "--wait", "--timeout", "240",
                 "--json", stdout=out)  # fmt: skip

    # Then the worker's done hook stored the verdict: every image identical
    repro = EvalRun.objects.get(reproduce_of=original)
    assert repro.status == RunStatus.DONE
    assert repro.reproduction["verdict"] == "reproduced 5/5 identical"
    assert repro.output_digest == original.output_digest
    said = capsys.readouterr().err  # --json: human lines go to stderr
    assert f"run #{repro.pk} vs run #{original.pk}: reproduced 5/5 identical" in said
    assert json.loads(out.getvalue())["reproduction"]["identical"] == 5


def _worker_live(queue: str) -> bool:
    from evalsite.core.selectors import workers_by_queue

    return bool(workers_by_queue()[queue].live)
