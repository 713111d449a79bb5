"""Digests and the reproduce action (fake model session, chunks executed inline).

The real runners' determinism: test_reproduce_models.py, tests/pipelines/test_determinism.py.
Here: what the platform stores and shows — per-item alpha sha256, the run digest, the stored
reproduction verdict, the doors (page, CLI, API), exports and the compare page.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from evalsite.evals.errors import EvalError
from evalsite.evals.models import EvalRun, ItemResult, RunSource, RunStatus
from evalsite.evals.services.aggregate import outputs_digest
from evalsite.evals.services.reproduce import eval_run_reproduce
from evalsite.evals.services.runs import eval_run_start
from pipelines.metrics.functional import binary_iou
from pipelines.metrics.io import read_gray8
from pipelines.metrics.registry import run_metrics
from tests.evals import conftest as evals_conftest
from tests.evals.conftest import item_key
from tests.evals.factories import tiny_spec, user_with, version_row
from tests.inline import run_job_inline

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]


@pytest.fixture
def run_reversed(django_capture_on_commit_callbacks: Any) -> Callable[[EvalRun], EvalRun]:
    """Execute a run's chunks last first, each with its items in reverse order."""

    def run(run: EvalRun) -> EvalRun:
        capture = django_capture_on_commit_callbacks
        return run_job_inline(run, capture, reverse=True, worker="inline-reversed")

    return run


def file_sha(relative: str) -> str:
    return hashlib.sha256((Path(settings.MEDIA_ROOT) / relative).read_bytes()).hexdigest()


def test_each_item_stores_its_alpha_sha_and_the_run_a_digest_over_them(
    version, dv, fake_model, run_inline
):
    run = run_inline(eval_run_start(model_version=version, dataset_version=dv, chunk_size=4))
    assert run.status == RunStatus.DONE
    rows = list(ItemResult.objects.filter(run=run).select_related("item"))
    assert len(rows) == 6
    for r in rows:
        assert r.alpha_sha256 == file_sha(r.artefacts["alpha"])
    lines = sorted(f"{r.item.stem}:{r.alpha_sha256}" for r in rows)
    assert run.output_digest == hashlib.sha256("\n".join(lines).encode()).hexdigest()


def test_digest_ignores_chunk_size_and_order_and_marks_failures(
    version, dv, fake_model, run_inline, run_reversed
):
    forward = run_inline(eval_run_start(model_version=version, dataset_version=dv, chunk_size=2))
    backward = run_reversed(eval_run_start(model_version=version, dataset_version=dv, chunk_size=5))
    assert forward.output_digest and forward.output_digest == backward.output_digest
    # a run that fails one image never carries the same digest
    victim = dv.items.order_by("stem").first()
    fake_model.behaviour[item_key(victim)] = "raise"
    failing = run_inline(eval_run_start(model_version=version, dataset_version=dv))
    assert failing.status == RunStatus.DONE and failing.output_digest != forward.output_digest
    shas = dict(ItemResult.objects.filter(run=failing).values_list("item__stem", "alpha_sha256"))
    assert shas[victim.stem] == ""
    assert failing.output_digest == outputs_digest(shas)
    assert f"{victim.stem}:failed" in "\n".join(
        sorted(f"{k}:{v or 'failed'}" for k, v in shas.items())
    )


def test_alpha_pngs_are_encoded_without_metadata_and_repeat_byte_for_byte():
    from pipelines.postprocess.cutout import encode_png

    pixels = (np.arange(64 * 48) % 256).astype(np.uint8).reshape(48, 64)
    data = encode_png(pixels)
    assert data == encode_png(pixels.copy())
    for chunk in (b"tIME", b"tEXt", b"iTXt", b"zTXt", b"eXIf"):
        assert chunk not in data


def test_reproduce_reports_identical_outputs_end_to_end(
    version, dv, fake_model, run_inline, client
):
    original = run_inline(eval_run_start(model_version=version, dataset_version=dv))
    researcher = user_with("researcher")
    client.force_login(researcher)

    # When a researcher presses "Reproduce" on the run page
    page = client.get(reverse("evals:detail", args=[original.pk])).content.decode()
    assert 'id="reproduce-form"' in page and original.output_digest in page
    reply = client.post(reverse("evals:reproduce", args=[original.pk]))
    repro = EvalRun.objects.get(reproduce_of=original)
    assert reply.status_code == 302 and reply["Location"] == repro.get_absolute_url()
    assert (repro.config_hash, repro.chunk_size) == (original.config_hash, original.chunk_size)
    assert repro.created_by == researcher and repro.status == RunStatus.QUEUED

    # Then, once the worker finishes it, the verdict is stored by the done hook...
    repro = run_inline(repro)
    assert repro.reproduction["verdict"] == "reproduced 6/6 identical"
    assert repro.reproduction["digest_match"] is True and repro.reproduction["different"] == []
    assert all(n["changed"] == 0 for n in repro.reproduction["noise"].values())
    # ...and both pages show it (reading only)
    page = client.get(repro.get_absolute_url()).content.decode()
    assert "reproduced 6/6 identical" in page and f"run #{original.pk}" in page
    page = client.get(original.get_absolute_url()).content.decode()
    assert f"#{repro.pk}" in page and "reproduced 6/6 identical" in page


def test_reproduction_reports_different_images_with_iou_and_noise(
    version, dv, fake_model, run_inline, monkeypatch
):
    original = run_inline(eval_run_start(model_version=version, dataset_version=dv))
    victim = dv.items.exclude(stem__startswith="none").order_by("stem").first()
    key = item_key(victim)
    predict = evals_conftest._FakeSession.predict

    def noisy(self: Any, photo: np.ndarray) -> Any:  # a runtime that drifts on one photo
        out = predict(self, photo)
        if evals_conftest.photo_key(photo) == key:
            out.alpha = out.alpha.copy()
            out.alpha[: out.alpha.shape[0] // 3, : out.alpha.shape[1] // 3] = 1.0
        return out

    monkeypatch.setattr(evals_conftest._FakeSession, "predict", noisy)
    repro = run_inline(eval_run_reproduce(run=original))
    rep = repro.reproduction
    assert rep["identical"] == 5 and rep["items"] == 6 and rep["digest_match"] is False
    assert rep["verdict"].startswith("reproduced 5/6 identical; max |Δ| per image: IoU ")
    (row,) = rep["different"]
    assert row["stem"] == victim.stem
    a = read_gray8(Path(settings.MEDIA_ROOT) / f"runs/{original.pk}/alpha/{victim.stem}.png")
    b = read_gray8(Path(settings.MEDIA_ROOT) / f"runs/{repro.pk}/alpha/{victim.stem}.png")
    assert row["iou"] == pytest.approx(binary_iou(b, a >= 128))
    assert row["max_abs_diff"] == pytest.approx(np.abs(a.astype(int) - b.astype(int)).max() / 255)
    before = ItemResult.objects.get(run=original, item=victim)
    after = ItemResult.objects.get(run=repro, item=victim)
    noise = rep["noise"]["iou"]
    assert noise["changed"] == 1
    assert noise["max_abs_item_delta"] == pytest.approx(abs(before.iou - after.iou))
    assert noise["mean_delta"] == pytest.approx(abs(before.iou - after.iou) / 6)


def test_reproduce_refuses_unfinished_and_imported_runs(version, dv, fake_model, run_inline):
    queued = eval_run_start(model_version=version, dataset_version=dv)
    with pytest.raises(EvalError, match=rf"run #{queued.pk} is queued; only a finished"):
        eval_run_reproduce(run=queued)
    done = run_inline(queued)
    EvalRun.objects.filter(pk=done.pk).update(source=RunSource.IMPORTED)
    done.refresh_from_db()
    with pytest.raises(EvalError, match=r"holds imported predictions .*cannot be reproduced"):
        eval_run_reproduce(run=done)
    assert not EvalRun.objects.filter(reproduce_of=queued).exists()


def test_run_eval_reproduce_and_its_mistakes(version, dv, fake_model, run_inline):
    original = run_inline(eval_run_start(model_version=version, dataset_version=dv))
    out = io.StringIO()
    call_command("run_eval", "--reproduce", str(original.pk), "--json", stdout=out,
                 stderr=io.StringIO())  # fmt: skip
    document = json.loads(out.getvalue())
    assert document["reproduce_of"] == original.pk and document["status"] == "queued"
    with pytest.raises(CommandError, match="drop --model/--dataset") as caught:
        call_command("run_eval", "--reproduce", str(original.pk), "--model", "fake:1.0.0",
                     stdout=io.StringIO(), stderr=io.StringIO())  # fmt: skip
    assert caught.value.returncode == 1
    with pytest.raises(CommandError, match="--reproduce: No run #9999"):
        call_command("run_eval", "--reproduce", "9999", stdout=io.StringIO())
    with pytest.raises(CommandError, match=r"--model is required \(or --reproduce RUN\)"):
        call_command("run_eval", "--dataset", dv.spec, stdout=io.StringIO())


def test_api_reproduce_and_the_stored_verdict(version, dv, fake_model, run_inline):
    original = run_inline(eval_run_start(model_version=version, dataset_version=dv))
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user_with("researcher"))
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    reply = client.post(f"/runs/api/runs/{original.pk}/reproduce/")
    assert reply.status_code == 201, reply.content
    body = reply.json()
    assert body["reproduce_of"] == original.pk and body["reproduction"] is None
    run_inline(EvalRun.objects.get(pk=body["id"]))
    status = client.get(f"/runs/api/runs/{body['id']}/").json()
    assert status["reproduction"]["verdict"] == "reproduced 6/6 identical"
    assert status["output_digest"] == original.output_digest
    again = client.post(f"/runs/api/runs/{original.pk + 1000}/reproduce/")
    assert again.status_code == 404
    anonymous = APIClient().post(f"/runs/api/runs/{original.pk}/reproduce/")
    assert anonymous.status_code == 401


def test_exports_carry_the_digests(version, dv, fake_model, run_inline, client):
    run = run_inline(eval_run_start(model_version=version, dataset_version=dv))
    client.force_login(user_with("researcher"))
    text = client.get(reverse("evals:csv", args=[run.pk])).content.decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    by_stem = dict(ItemResult.objects.filter(run=run).values_list("item__stem", "alpha_sha256"))
    assert {r["stem"]: r["alpha_sha256"] for r in rows} == by_stem
    document = json.loads(client.get(reverse("evals:json", args=[run.pk])).content)
    assert document["output_digest"] == run.output_digest
    assert {r["stem"]: r["alpha_sha256"] for r in document["per_image"]} == by_stem


def test_compare_page_counts_identical_outputs_and_marks_deltas_within_noise(
    version, dv, fake_model, run_inline, client, monkeypatch
):
    a = run_inline(eval_run_start(model_version=version, dataset_version=dv))
    other = version_row("fake", "2.0.0", fmt="torch_export", spec=tiny_spec())
    victim = dv.items.exclude(stem__startswith="none").order_by("stem").first()
    key = item_key(victim)
    predict = evals_conftest._FakeSession.predict

    def drifting(self: Any, photo: np.ndarray) -> Any:
        out = predict(self, photo)
        if evals_conftest.photo_key(photo) == key:
            out.alpha = np.clip(out.alpha * 0.5, 0, 1)
        return out

    monkeypatch.setattr(evals_conftest._FakeSession, "predict", drifting)
    b = run_inline(eval_run_start(model_version=other, dataset_version=dv))
    client.force_login(user_with("researcher"))
    url = reverse("evals:compare") + f"?a={a.pk}&b={b.pk}"
    page = client.get(url).content.decode()
    assert "Identical outputs on 5 of 6 images" in page
    assert "Run-to-run noise not measured for A for B" in page and "within noise</span>" not in page
    ma, mb = a.summary["metrics"], b.summary["metrics"]
    shown = [m.name for m in run_metrics()]  # the compare page's summary rows
    moved = sum(1 for k in shown if abs(mb[k] - ma[k]) > 1e-12)
    assert moved >= 3

    # Both reproduce identically (zero noise): only the unmoved metrics are within noise
    run_inline(eval_run_reproduce(run=b))
    monkeypatch.setattr(evals_conftest._FakeSession, "predict", predict)
    run_inline(eval_run_reproduce(run=a))
    page = client.get(url).content.decode()
    assert "Deltas marked “within noise”" in page
    assert page.count("within noise</span>") == len(shown) - moved

    # B reproduced on a runtime without the drift: its noise now covers the whole A→B delta
    repro = run_inline(eval_run_reproduce(run=b))
    assert repro.reproduction["identical"] == 5
    page = client.get(url).content.decode()
    assert page.count("within noise</span>") == len(shown)
