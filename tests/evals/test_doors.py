"""run_eval without a worker, the REST API and the pages (fake model session, inline chunks)."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from evalsite.evals.models import EvalRun, ItemResult, RunStatus
from evalsite.evals.services.runs import eval_run_start
from tests.evals.conftest import item_key
from tests.evals.factories import tiny_set, user_with

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]


@pytest.fixture
def finished_run(tmp_path, version, fake_model, run_inline) -> EvalRun:
    dv = tiny_set(tmp_path, n=4, empty=1)
    return run_inline(eval_run_start(model_version=version, dataset_version=dv, chunk_size=3))


# --- run_eval ------------------------------------------------------------------------------


def test_run_eval_wait_without_a_live_worker_names_the_queue(tmp_path, version):
    dv = tiny_set(tmp_path, n=2, empty=0)
    with pytest.raises(CommandError) as caught:
        call_command("run_eval", "--model", "fake:1.0.0", "--dataset", dv.spec, "--wait",
                     stdout=io.StringIO(), stderr=io.StringIO())  # fmt: skip
    assert caught.value.returncode == 2
    assert "no live worker consumes the 'torch' queue" in str(caught.value)
    assert EvalRun.objects.get().status == RunStatus.QUEUED  # started, waits for a worker


def test_run_eval_without_wait_prints_the_run_as_json(tmp_path, version):
    dv = tiny_set(tmp_path, n=2, empty=0)
    out = io.StringIO()
    call_command("run_eval", "--model", "fake:1.0.0", "--dataset", dv.dataset.name, "--json",
                 stdout=out, stderr=io.StringIO())  # fmt: skip
    document = json.loads(out.getvalue())
    assert document["status"] == "queued" and document["queue"] == "torch"
    assert document["model"] == "fake:1.0.0" and document["progress"]["items"] == 2


@pytest.mark.parametrize(
    ("model", "dataset", "message"),
    [
        ("nope:1.0.0", "tiny-set", "--model: No model family 'nope'"),
        ("fake:9.9.9", "tiny-set", "fake has no version '9.9.9' (versions: 1.0.0)"),
        ("fake", "tiny-set", "is not a model reference"),
        ("fake:1.0.0", "missing", "--dataset: no set named 'missing'"),
        ("fake:1.0.0", "tiny-set:zzzzzzzz", "hash prefix must be"),
    ],
)
def test_run_eval_explains_a_bad_model_or_dataset(tmp_path, version, model, dataset, message):
    tiny_set(tmp_path, n=1, empty=0)
    with pytest.raises(CommandError) as caught:
        call_command("run_eval", "--model", model, "--dataset", dataset, stdout=io.StringIO())
    assert message in str(caught.value)
    assert caught.value.returncode == 1
    assert not EvalRun.objects.exists()


# --- REST API ------------------------------------------------------------------------------


def api(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def test_api_starts_polls_and_returns_results(tmp_path, version, fake_model, run_inline):
    dv = tiny_set(tmp_path, n=3, empty=0)
    client = api(user_with("researcher"))
    started = client.post(
        "/runs/api/runs/", {"model": "fake:1.0.0", "dataset": dv.spec}, format="json"
    )
    assert started.status_code == 201, started.content
    run_id = started.json()["id"]
    assert client.get(f"/runs/api/runs/{run_id}/").json()["status"] == "queued"

    run_inline(EvalRun.objects.get(pk=run_id))

    status = client.get(f"/runs/api/runs/{run_id}/").json()
    assert status["status"] == "done" and status["progress"]["ok"] == 3
    results = client.get(f"/runs/api/runs/{run_id}/results/").json()
    assert results["summary"]["counts"]["ok"] == 3
    stems = set(dv.items.values_list("stem", flat=True))
    assert {row["stem"] for row in results["per_image"]} == stems
    assert "iou" in results["per_image"][0]["metrics"]


def test_api_refuses_anonymous_and_annotators(tmp_path, version):
    dv = tiny_set(tmp_path, n=1, empty=0)
    body = {"model": "fake:1.0.0", "dataset": dv.spec}
    assert api().post("/runs/api/runs/", body, format="json").status_code == 401
    annotator = api(user_with("annotator"))
    assert annotator.post("/runs/api/runs/", body, format="json").status_code == 403
    assert annotator.get("/runs/api/runs/").status_code == 403
    assert not EvalRun.objects.exists()


def test_api_explains_a_bad_model_reference(tmp_path, version):
    dv = tiny_set(tmp_path, n=1, empty=0)
    reply = api(user_with("researcher")).post(
        "/runs/api/runs/", {"model": "fake:production", "dataset": dv.spec}, format="json"
    )
    assert reply.status_code == 400
    assert "has no alias 'production'" in reply.json()["error"]["fields"]["model"][0]


# --- pages ---------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["annotator", None])
def test_run_pages_and_files_are_for_researchers_only(client, finished_run, role):
    item = ItemResult.objects.filter(run=finished_run).first()
    urls = [
        reverse("evals:list"),
        reverse("evals:detail", args=[finished_run.pk]),
        reverse("evals:items", args=[finished_run.pk]),
        reverse("evals:file", args=[finished_run.pk, item.item_id, "web_cutout"]),
        reverse("evals:csv", args=[finished_run.pk]),
        reverse("evals:progress", args=[finished_run.pk]),
    ]
    if role:
        client.force_login(user_with(role))
    for url in urls:
        response = client.get(url)
        assert response.status_code == (403 if role else 302), url


def test_run_page_shows_summary_charts_and_browser(client, finished_run):
    client.force_login(user_with("researcher"))
    page = client.get(reverse("evals:detail", args=[finished_run.pk])).content.decode()
    assert "Summary" in page and "boundary_f" in page
    assert "/static/vendor/plotly/plotly.min.js" in page
    assert "latency measured on small images" in page
    assert 'id="pr-chart"' in page
    items = client.get(reverse("evals:items", args=[finished_run.pk]) + "?sort=iou&dir=desc")
    assert items.status_code == 200 and "checker" in items.content.decode()
    row = ItemResult.objects.filter(run=finished_run, status="ok").first()
    for role in ("photo", "gt_overlay", "web_overlay", "web_cutout", "cutout", "alpha"):
        response = client.get(reverse("evals:file", args=[finished_run.pk, row.item_id, role]))
        assert response.status_code == 200, role
    progress = client.get(reverse("evals:progress", args=[finished_run.pk])).json()
    assert progress["finished"] and progress["done"] == 5


def test_csv_download_has_a_row_per_item(client, finished_run):
    client.force_login(user_with("researcher"))
    response = client.get(reverse("evals:csv", args=[finished_run.pk]))
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == 5
    assert {"stem", "iou", "boundary_f", "latency_total_ms", "in_training_data"} <= set(rows[0])


def test_compare_page_lists_per_image_deltas_worst_first(
    client, tmp_path, version, fake_model, run_inline
):
    dv = tiny_set(tmp_path, n=4, empty=0)
    a = run_inline(eval_run_start(model_version=version, dataset_version=dv))
    worse = list(dv.items.order_by("stem"))[2]
    fake_model.behaviour = {item_key(worse): "nan"}
    b = run_inline(eval_run_start(model_version=version, dataset_version=dv,
                                  postprocess={"upsample": "bilinear"}))  # fmt: skip
    client.force_login(user_with("researcher"))
    page = client.get(reverse("evals:compare") + f"?a={a.pk}&b={b.pk}&metric=iou")
    assert page.status_code == 200
    html = page.content.decode()
    # the image that failed in B leads the table (no delta), the others follow
    assert html.index(worse.stem) < min(
        html.index(s) for s in dv.items.exclude(pk=worse.pk).values_list("stem", flat=True)
    )
    assert "got worse on IoU" in html


def test_start_form_creates_a_run(client, tmp_path, version):
    dv = tiny_set(tmp_path, n=2, empty=0)
    client.force_login(user_with("researcher"))
    response = client.post(
        reverse("evals:start"),
        {"model_version": version.pk, "dataset_version": dv.pk, "runtime": "auto",
         "upsample": "bilinear", "gate": "on", "min_instance_area": "0.002"},
    )  # fmt: skip
    run = EvalRun.objects.get()
    assert response.status_code == 302 and response["Location"] == run.get_absolute_url()
    assert run.postprocess["upsample"] == "bilinear" and not run.is_default_config
