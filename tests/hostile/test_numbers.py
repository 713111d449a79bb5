"""Numbers that are not ASCII digits, through every door that read one with isdigit() + int():
`²` is a digit to str.isdigit() and a ValueError to int() (each of these answered 500 or printed
a traceback). Each asserts the message, the status or exit code, and that nothing was left."""

from __future__ import annotations

import tempfile
from io import StringIO
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from evalsite.core.models import Chunk
from evalsite.core.tasks import run_chunk
from evalsite.datasets.models import DatasetImport, DatasetVersion, ImportStatus, Item
from evalsite.evals.models import ItemResult
from pipelines.parse import InvalidNumber
from tests.datasets.builders import make_set, png_bytes, write_manifest, zip_folder
from tests.ratings.builders import World, build_world

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]

SUP = "²"


@pytest.fixture(autouse=True)
def scratch(tmp_path: Path, settings: Any, monkeypatch: pytest.MonkeyPatch) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    folder = tmp_path / "scratch"  # the importer's temporary folders land here
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.fixture
def world(tmp_path: Path) -> World:
    return build_world(tmp_path, n=2, runs=2, annotators=0)


def researcher_client(world: World) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(world.researcher)
    return client


@pytest.mark.parametrize("url", ["/", "/releases/"], ids=["url-set-superscript", "releases-set"])
def test_a_superscript_set_id_answers_400_naming_the_parameter(world: World, url: str) -> None:
    response = researcher_client(world).get(url, {"set": SUP})
    assert response.status_code == 400
    assert response.content.decode() == f"set: expected a whole number of digits 0-9, got '{SUP}'"
    ok = researcher_client(world).get(url, {"set": world.version.pk})
    assert ok.status_code == 200


def test_a_superscript_revision_answers_400(world: World) -> None:
    url = reverse("datasets:version", args=[world.version.dataset.name, world.version.short_hash])
    response = researcher_client(world).get(url, {"rev": SUP})
    assert (
        response.status_code == 400 and "rev: expected a whole number" in response.content.decode()
    )
    assert (
        researcher_client(world).get(url, {"rev": "0"}).status_code == 400
    )  # revisions count from 1
    assert researcher_client(world).get(url, {"rev": "1"}).status_code == 200  # none: the latest


def test_a_superscript_instance_number_answers_404(world: World) -> None:
    run = world.runs[0]
    result = ItemResult.objects.filter(run=run).order_by("item_id").first()
    assert result is not None
    result.artefacts = {
        **result.artefacts,
        "instances": [{"web": result.artefacts["alpha"], "full": result.artefacts["alpha"]}],
    }
    result.save(update_fields=["artefacts"])  # fmt: skip
    base = f"/runs/{run.pk}/items/{result.item_id}/"
    client = researcher_client(world)
    for role in (f"instance-{SUP}", f"instance_web-{SUP}", "instance-١", "instance-0",
                 "instance-2", "instance-99999999999999999999999"):  # fmt: skip
        assert client.get(base + role).status_code == 404, role
    assert client.get(base + "instance-1").status_code == 200


def test_compare_with_a_superscript_answers_the_reference_message(world: World) -> None:
    b = world.runs[1].pk
    response = researcher_client(world).get("/runs/compare/", {"a": SUP, "b": b})
    text = response.content.decode()
    assert response.status_code == 400 and response["Content-Type"].startswith("text/plain")
    assert f"'{SUP}' is not a model reference" in text and "invalid literal" not in text
    huge = researcher_client(world).get("/runs/compare/", {"a": "9" * 30, "b": b})
    assert (
        huge.status_code == 400 and "a: expected a whole number from 1 to" in huge.content.decode()
    )
    missing = researcher_client(world).get("/runs/compare/", {"a": "999999", "b": b})
    assert missing.status_code == 404


def test_fairness_compare_and_intervals_name_the_bad_id(world: World) -> None:
    client = researcher_client(world)
    response = client.get("/fairness/compare/", {"a": SUP, "b": world.runs[1].pk})
    expected = f"a: expected a whole number of digits 0-9, got '{SUP}'"
    assert response.status_code == 400 and expected in response.content.decode()
    response = client.post("/runs/compare/intervals/", {"a": "١٢", "b": world.runs[1].pk})
    assert response.status_code == 400 and "a: expected a whole number" in response.content.decode()


# --- set imports: a manifest value and an instance file name ---------------------------------


def _set_with_superscripts(root: Path) -> Path:
    folder = make_set(root, 2)
    write_manifest(folder, [
        {"image": "images/item0.jpg", "mask": "masks/item0.png", "skin_tone": "3",
         "perceived_gender": "woman"},
        {"image": "images/item1.jpg", "mask": "masks/item1.png", "skin_tone": SUP,
         "perceived_gender": "man"},
    ])  # fmt: skip
    instances = folder / "instances" / "item0"
    instances.mkdir(parents=True)
    from tests.datasets.builders import box_mask

    for name in (f"{SUP}.png", "2.png", "10.png"):
        (instances / name).write_bytes(png_bytes(box_mask(64, 48, 0.1)))
    return folder


def test_cli_import_skips_a_superscript_tone_and_keeps_a_superscript_file_name(
    tmp_path: Path, scratch: Path
) -> None:
    folder = _set_with_superscripts(tmp_path / "set")
    out = StringIO()
    call_command("import_dataset", str(folder), "--name", "sup", stdout=out, stderr=StringIO())
    version = DatasetVersion.objects.get(dataset__name="sup")
    assert list(Item.objects.filter(version=version).values_list("stem", flat=True)) == ["item0"]
    skipped = version.report["skipped"]
    assert any(f"skin_tone '{SUP}' is not in the vocabulary" in str(e) for e in skipped), skipped
    assert list(scratch.iterdir()) == [], "a temporary folder was left behind"


CASE_IDS = {
    "url-set-superscript",
    "url-rev-superscript",
    "url-instance-superscript",
    "url-compare-superscript",
    "manifest-skin-tone-superscript",
    "web-import-superscript",
}
# url-rev-superscript: test_a_superscript_revision_answers_400
# url-instance-superscript: test_a_superscript_instance_number_answers_404
# url-compare-superscript: test_compare_with_a_superscript_answers_the_reference_message
# manifest-skin-tone-superscript: test_cli_import_skips_a_superscript_tone_and_keeps_a_…
# web-import-superscript: test_the_web_import_of_superscripts_runs_once_without_a_temp_path


def _upload(client: Client, tmp_path: Path, folder: Path) -> DatasetImport:
    archive = zip_folder(folder, tmp_path / "s.zip")
    with mock.patch("evalsite.core.tasks.run_chunk.apply_async"):
        client.post(reverse("datasets:upload"), {
            "name": "sup", "archive": SimpleUploadedFile("s.zip", archive.read_bytes()),
        })  # fmt: skip
    return DatasetImport.objects.get()


def _deliver(chunk_id: int) -> str:
    """One delivery of the chunk's message, in process; the broker is never asked again."""
    with mock.patch.object(run_chunk, "retry", side_effect=AssertionError("sent back")):
        return str(run_chunk.run(chunk_id))


@pytest.mark.django_db(transaction=True)
def test_the_web_import_of_superscripts_runs_once_without_a_temp_path(
    tmp_path: Path, scratch: Path, world: World
) -> None:
    imp = _upload(researcher_client(world), tmp_path, _set_with_superscripts(tmp_path / "set"))
    chunk = Chunk.objects.get(job=imp.job)
    assert _deliver(chunk.pk) == "done"
    chunk.refresh_from_db()
    imp.refresh_from_db()
    assert chunk.attempts == 1 and imp.status == ImportStatus.DONE, imp.error
    shown = f"{imp.message} {imp.error} {imp.report}"
    assert f"skin_tone '{SUP}' is not in the vocabulary" in shown
    assert str(scratch) not in shown and "dataset-import-" not in shown
    assert list(scratch.iterdir()) == []


@pytest.mark.django_db(transaction=True)
def test_an_input_error_in_a_job_is_not_retried(
    tmp_path: Path, scratch: Path, world: World
) -> None:
    """The safety net: an InvalidInput escaping a handler fails its chunk at once (the same
    input fails the same way every time), while a database fault would be waited out."""
    imp = _upload(researcher_client(world), tmp_path, make_set(tmp_path / "plain", 2))
    chunk = Chunk.objects.get(job=imp.job)
    bad = InvalidNumber(f"skin_tone: expected a whole number of digits 0-9, got '{SUP}'")
    with mock.patch("evalsite.datasets.jobs.dataset_import_run", side_effect=bad):
        assert _deliver(chunk.pk) == "failed"
    chunk.refresh_from_db()
    imp.refresh_from_db()
    assert chunk.attempts == 1 and chunk.status == "failed"
    assert imp.status == ImportStatus.FAILED and f"got '{SUP}'" in imp.error
    assert str(scratch) not in imp.error and not Path(imp.upload).exists()


def test_an_input_error_in_the_import_is_its_verdict(tmp_path: Path, world: World) -> None:
    """Whatever value of an upload fails to parse, the import says so once, as a rejection
    naming the value, and keeps nothing."""
    from evalsite.datasets.services import dataset_import_run

    imp = _upload(researcher_client(world), tmp_path, make_set(tmp_path / "plain", 2))
    bad = InvalidNumber(f"instances: expected a whole number of digits 0-9, got '{SUP}'")
    with mock.patch("evalsite.datasets.services.dataset_import", side_effect=bad):
        assert dataset_import_run(import_id=imp.pk) == {"outcome": "rejected"}
    imp.refresh_from_db()
    assert (imp.status, imp.phase) == (ImportStatus.FAILED, "rejected")
    assert imp.error == str(bad) and not Path(imp.upload).exists()
