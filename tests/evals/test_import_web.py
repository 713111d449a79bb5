"""The web upload and the REST endpoint of imported runs: a zip → a job scored chunk by chunk;
bad archives and bad predictions answered 400 with the file named and nothing created."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image
from rest_framework.test import APIClient

from evalsite.core.models import Chunk
from evalsite.evals.imports.services import IMPORT_CHUNK_SIZE
from evalsite.evals.models import EvalRun, RunSource, RunStatus
from models.services import model_version_register
from tests.evals.factories import token_client, user_with
from tests.evals.importing import (
    clear_run_folders,
    nothing_created,
    write_predictions,
    zip_folder,
)
from tests.inline import run_job_inline

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]


@pytest.fixture(autouse=True)
def _fresh_media():
    clear_run_folders()


@pytest.fixture(autouse=True)
def scratch(tmp_path: Path, settings) -> Path:
    """This test's own TEMP_ROOT: what an import leaves behind is looked for here only, never in
    the system temp folder, where any other program may be creating folders right now."""
    settings.TEMP_ROOT = tmp_path / "scratch"
    return settings.TEMP_ROOT


@pytest.fixture
def researcher():
    return user_with("researcher")


@pytest.fixture
def score_inline(django_capture_on_commit_callbacks):
    """Run every pending chunk of an imported run here, as a worker would, hooks included."""

    def run(run: EvalRun) -> EvalRun:
        return run_job_inline(run, django_capture_on_commit_callbacks)

    return run


def left_behind(scratch: Path) -> list[str]:
    return sorted(p.name for p in scratch.iterdir()) if scratch.exists() else []


def post_form(client, dv, data: bytes, *, name="preds.zip", latency: bytes | None = None, **extra):
    fields = {
        "model_version": extra.pop("model_version"),
        "dataset_version": extra.pop("dataset_version", dv.pk),
        "file": SimpleUploadedFile(name, data, content_type="application/zip"),
        **extra,
    }
    if latency is not None:
        fields["latency"] = SimpleUploadedFile("device.csv", latency, content_type="text/csv")
    return client.post(reverse("evals:import"), fields)


def test_web_upload_queues_a_job_whose_chunks_score_the_run(
    client, tmp_path, dv, version, researcher, score_inline
):
    client.force_login(researcher)
    folder = write_predictions(dv, tmp_path / "pred", erode=1)
    stems = sorted(p.stem for p in folder.glob("*.png"))
    latency = "image,ms\n" + "".join(f"{s},{5 + i}\n" for i, s in enumerate(stems))
    # zipped inside one folder, as Finder / `zip -r preds.zip pred` make it
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path in sorted(folder.iterdir()):
            zf.write(path, arcname=f"pred/{path.name}")
    response = post_form(client, dv, buf.getvalue(), latency=latency.encode(),
                         model_version=version.pk, device="iPad Pro M4")  # fmt: skip
    run = EvalRun.objects.get()
    assert response.status_code == 302 and response["Location"] == run.get_absolute_url()
    assert run.status == RunStatus.QUEUED and run.source == RunSource.IMPORTED
    assert run.import_name == "preds.zip" and run.created_by == researcher
    assert Chunk.objects.filter(job_id=run.job_id).count() == -(-6 // IMPORT_CHUNK_SIZE)
    run = score_inline(run)
    assert run.status == RunStatus.DONE, run.error
    assert run.results.filter(status="ok").count() == 6
    assert run.summary["latency"]["devices"]["iPad Pro M4"]["n"] == 6
    page = client.get(run.get_absolute_url()).content.decode()
    assert "predictions imported, not run here" in page and "iPad Pro M4" in page
    assert "no-latency" not in page
    listing = client.get(reverse("evals:list")).content.decode()
    assert "imported" in listing
    # browsing the images works as for worker runs: the same web copies
    item = run.results.order_by("item__stem").first().item
    assert client.get(reverse("evals:items", args=[run.pk])).status_code == 200
    assert client.get(reverse("evals:item", args=[run.pk, item.pk])).status_code == 200
    for role in ("web_cutout", "web_overlay", "web_alpha"):
        response = client.get(reverse("evals:file", args=[run.pk, item.pk, role]))
        assert response.status_code == 200, role


def test_run_page_says_no_latency_measured(client, tmp_path, dv, version, researcher, score_inline):
    client.force_login(researcher)
    folder = write_predictions(dv, tmp_path / "pred")
    post_form(client, dv, zip_folder(folder), model_version=version.pk)
    run = score_inline(EvalRun.objects.get())
    page = client.get(run.get_absolute_url()).content.decode()
    assert "No latency measured" in page
    assert "Re-run" not in page
    items = client.get(reverse("evals:items", args=[run.pk])).content.decode()
    assert " ms</div>" not in items  # no "0.0 ms" per image
    item = run.results.first().item
    one = client.get(reverse("evals:item", args=[run.pk, item.pk])).content.decode()
    assert 'Latency: <span class="muted">not measured</span>' in one


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("../evil.png", "path leaves the archive"),
        ("/abs/evil.png", "absolute path in the archive"),
        ("link.png", "symbolic link in the archive"),
    ],
)
def test_unsafe_zip_entries_are_refused(
    client, tmp_path, scratch, dv, version, researcher, entry, message
):
    client.force_login(researcher)
    folder = write_predictions(dv, tmp_path / "pred")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path in sorted(folder.iterdir()):
            zf.write(path, arcname=path.name)
        info = zipfile.ZipInfo(entry)
        if entry == "link.png":
            info.external_attr = 0o120777 << 16  # a symlink to /etc/passwd
            zf.writestr(info, "/etc/passwd")
        else:
            zf.writestr(info, b"x")
    response = post_form(client, dv, buf.getvalue(), model_version=version.pk)
    assert response.status_code == 400
    page = response.content.decode()
    assert "Nothing was imported" in page and message in page and "preds.zip" in page
    nothing_created()
    assert left_behind(scratch) == []  # the extraction folder is gone too
    assert not (tmp_path.parent / "evil.png").exists()


def test_the_xhr_upload_gets_json_errors_or_the_run_url(client, tmp_path, dv, version, researcher):
    client.force_login(researcher)
    folder = write_predictions(dv, tmp_path / "pred")
    xhr = {"HTTP_X_REQUESTED_WITH": "XMLHttpRequest"}
    bad = client.post(reverse("evals:import"), {
        "model_version": version.pk, "dataset_version": dv.pk,
        "file": SimpleUploadedFile("p.zip", zip_folder(folder, extra={"x.txt": b"x"})),
    }, **xhr)  # fmt: skip
    assert bad.status_code == 400
    (error,) = bad.json()["errors"]
    assert error.startswith("Nothing was imported: p.zip: not PNG files: x.txt; the folder holds")
    nothing_created()
    good = client.post(reverse("evals:import"), {
        "model_version": version.pk, "dataset_version": dv.pk,
        "file": SimpleUploadedFile("p.zip", zip_folder(folder)),
    }, **xhr)  # fmt: skip
    assert good.status_code == 200
    assert good.json() == {"redirect": EvalRun.objects.get().get_absolute_url()}


def test_not_a_zip_is_refused(client, dv, version, researcher):
    client.force_login(researcher)
    response = post_form(client, dv, b"PK\x03\x04 not really", model_version=version.pk)
    assert response.status_code == 400
    assert "not a readable zip archive" in response.content.decode()
    nothing_created()


def test_bad_predictions_in_the_zip_are_listed(client, tmp_path, dv, version, researcher):
    client.force_login(researcher)
    folder = write_predictions(dv, tmp_path / "pred")
    first = sorted(folder.glob("*.png"))[0]
    first.unlink()
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(sorted(folder.glob("*.png"))[0])
    (folder / "notes.txt").write_text("hello")
    response = post_form(client, dv, zip_folder(folder), model_version=version.pk)
    page = response.content.decode()
    assert response.status_code == 400
    assert f"have no prediction: {first.name}" in page
    assert "prediction is 5×5" in page and "not PNG files: notes.txt" in page
    nothing_created()


def test_a_deleted_set_version_is_named_on_the_form(client, tmp_path, dv, version, researcher):
    client.force_login(researcher)
    folder = write_predictions(dv, tmp_path / "pred")
    data = zip_folder(folder)
    pk = dv.pk
    dv.delete()
    response = post_form(client, dv, data, model_version=version.pk, dataset_version=pk)
    assert response.status_code == 400
    assert "That set version no longer exists" in response.content.decode()
    nothing_created()


def test_external_version_form_and_page(client, researcher):
    client.force_login(researcher)
    response = client.post(reverse("registry:upload-external"), {
        "family": "vendor-cutout", "version": "2024.06", "provenance": "Vendor X API, June 2024",
    })  # fmt: skip
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert "predictions imported, not run here" in page and "Vendor X API, June 2024" in page
    start = client.get(reverse("evals:start")).content.decode()
    assert "vendor-cutout" not in start  # never offered to workers
    assert "vendor-cutout:2024.06" in client.get(reverse("evals:import")).content.decode()


# --- REST ----------------------------------------------------------------------------------


@pytest.fixture
def api(researcher) -> APIClient:
    return token_client(researcher)


def test_api_import_for_ci(api, tmp_path, dv, score_inline):
    model_version_register(family="vendor", version="1.0.0", file=None, spec=None, external=True)
    folder = write_predictions(dv, tmp_path / "pred")
    response = api.post(reverse("evals:api-run-import"), {
        "model": "vendor:1.0.0", "dataset": dv.spec, "device": "Galaxy S24",
        "file": SimpleUploadedFile("p.zip", zip_folder(folder)),
    }, format="multipart")  # fmt: skip
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["source"] == "imported" and body["status"] == "queued"
    assert body["imported"]["device"] == "Galaxy S24"
    assert body["url"].endswith(f"/runs/{body['id']}/")
    run = score_inline(EvalRun.objects.get(pk=body["id"]))
    assert run.status == RunStatus.DONE
    assert run.summary["metrics"]["iou"] == pytest.approx(1.0)


def _spoil(kind: str, folder: Path) -> dict[str, bytes]:
    """Make `folder` (one PNG per item) bad in one way; returns extra zip entries."""
    pngs = sorted(folder.glob("*.png"))
    if kind == "missing":
        pngs[0].unlink()
    elif kind == "extra":
        Image.fromarray(np.zeros((4, 4), np.uint8)).save(folder / "stranger.png")
    elif kind == "size":
        Image.fromarray(np.zeros((7, 9), np.uint8)).save(pngs[0])
    elif kind == "not-png":
        Image.fromarray(np.zeros((4, 4), np.uint8)).save(pngs[0], format="JPEG")
    elif kind == "corrupt":
        pngs[0].write_bytes(pngs[0].read_bytes()[:40])
    elif kind == "empty":
        for p in pngs:
            p.unlink()
    elif kind in ("slip", "absolute"):
        return {"../up.png" if kind == "slip" else "/tmp/abs.png": b"x"}
    return {}


def _symlink_zip(folder: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path in sorted(folder.iterdir()):
            zf.write(path, arcname=path.name)
        info = zipfile.ZipInfo("link.png")
        info.external_attr = 0o120777 << 16
        zf.writestr(info, "/etc/passwd")
    return buf.getvalue()


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"model": "nobody:1.0.0"}, "No model family 'nobody'"),
        ({"dataset": "no-such-set"}, "no set named 'no-such-set'"),
        ({"spoil": "missing"}, "have no prediction"),
        ({"spoil": "extra"}, "match no image of"),
        ({"spoil": "size"}, "prediction is 9×7 but the photo is"),
        ({"spoil": "not-png"}, "not a PNG (found JPEG data)"),
        ({"spoil": "corrupt"}, "cannot read"),
        ({"spoil": "empty"}, "no prediction PNGs found"),
        ({"spoil": "slip"}, "path leaves the archive"),
        ({"spoil": "absolute"}, "absolute path in the archive"),
        ({"spoil": "symlink"}, "symbolic link in the archive"),
        ({"latency": "image,ms\nghost,3\n"}, "images not in the set: ghost"),
        ({"latency": "image,ms\n{first},fast\n"}, "row 2 ms: 'fast' is not a number"),
        ({"latency": "image,ms\n{first},NaN\n"}, "row 2 ms: 'NaN' is not a finite number"),
        ({"latency": "image,ms\n{first},-4\n"}, "row 2 ms: '-4' is negative"),
    ],
)
def test_api_bad_input_is_400_naming_the_problem_and_nothing_created(
    api, tmp_path, scratch, dv, version, fields, fragment
):
    folder = write_predictions(dv, tmp_path / "pred")
    kind = fields.get("spoil", "")
    extra = _spoil(kind, folder)
    archive = _symlink_zip(folder) if kind == "symlink" else zip_folder(folder, extra=extra)
    data = {
        "model": fields.get("model", "fake:1.0.0"),
        "dataset": fields.get("dataset", dv.spec),
        "file": SimpleUploadedFile("p.zip", archive),
    }
    if "latency" in fields:
        first = dv.items.order_by("stem").first().stem
        text = fields["latency"].format(first=first)
        data["latency"] = SimpleUploadedFile("l.csv", text.encode())
    response = api.post(reverse("evals:api-run-import"), data, format="multipart")
    assert response.status_code == 400
    assert fragment in response.content.decode()
    assert str(scratch) not in response.content.decode()
    nothing_created()
    assert left_behind(scratch) == []


def test_api_without_token_is_401(tmp_path, dv):
    response = APIClient().post(reverse("evals:api-run-import"), {}, format="multipart")
    assert response.status_code == 401
