"""Pages of sets: what a researcher sees, what annotators and anonymous users cannot reach."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from evalsite.core.models import Job
from evalsite.datasets.importing import ImportResult, dataset_import
from evalsite.datasets.models import DatasetImport, ImportStatus, Item
from evalsite.datasets.services import dataset_import_run
from tests.datasets.builders import make_set, write_manifest, zip_folder

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]


@pytest.fixture
def labelled(tmp_path: Path) -> ImportResult:
    folder = make_set(tmp_path / "s", 4, fracs=[0.25, 0.0, 0.5, 0.02])
    write_manifest(
        folder,
        [
            {
                "image": "images/item0.jpg",
                "mask": "masks/item0.png",
                "skin_tone": "2",
                "perceived_gender": "woman",
                "attribute_source": "synthetic",
                "licence": "CC0",
            },
            {
                "image": "images/item1.jpg",
                "mask": "masks/item1.png",
                "skin_tone": "not_applicable",
                "perceived_gender": "not_applicable",
                "licence": "CC0",
            },
            {
                "image": "images/item2.jpg",
                "mask": "masks/item2.png",
                "skin_tone": "9",
                "perceived_gender": "man",
                "licence": "research only",
            },
            {
                "image": "images/item3.jpg",
                "mask": "masks/item3.png",
                "skin_tone": "5",
                "perceived_gender": "unknown",
                "licence": "CC0",
            },
        ],
    )
    (folder / "README.md").write_text("# Test set\nMade by the test suite.\n")
    return dataset_import(path=folder, name="demo", licence="CC0")


def urls(result: ImportResult) -> list[str]:
    v = result.version
    item = Item.objects.filter(version=v).first()
    assert item is not None
    imp = DatasetImport.objects.create(name="x", upload="/nonexistent.zip")
    return [
        reverse("datasets:list"),
        reverse("datasets:upload"),
        reverse("datasets:detail", args=["demo"]),
        reverse("datasets:version", args=["demo", v.short_hash]),
        reverse("datasets:item_file", args=[item.pk, "thumb"]),
        reverse("datasets:item_file", args=[item.pk, "web-overlay"]),
        reverse("datasets:import", args=[imp.pk]),
        reverse("datasets:import_progress", args=[imp.pk]),
    ]


def test_annotators_get_403_on_every_set_page(client, annotator, labelled):
    client.force_login(annotator)
    for url in urls(labelled):
        assert client.get(url).status_code == 403, url


def test_anonymous_users_are_sent_to_login(client, labelled):
    for url in urls(labelled):
        response = client.get(url)
        assert response.status_code == 302 and response.url.startswith("/login/"), url


def test_researchers_reach_every_set_page(client, researcher, labelled):
    client.force_login(researcher)
    for url in urls(labelled):
        assert client.get(url).status_code == 200, url


def test_version_page_shows_counts_grid_report_and_provenance(client, researcher, labelled):
    client.force_login(researcher)
    v = labelled.version
    page = client.get(reverse("datasets:version", args=["demo", v.short_hash])).content.decode()
    assert f"demo:{v.short_hash}" in page and v.content_hash in page
    assert "revision 1" in page
    assert 'class="badge synthetic"' in page  # item0's labels are synthetic
    counts = client.get(reverse("datasets:version", args=["demo", v.short_hash])).context["counts"]
    assert {r.label: r.count for r in counts["skin_tone"]} == {
        "1–3": 1,
        "4–7": 1,
        "8–10": 1,
        "not_applicable": 1,
        "unknown": 0,
    }
    assert {r.label: r.synthetic for r in counts["skin_tone"]}["1–3"] == 1
    assert {r.label: r.count for r in counts["gender"]}["woman"] == 1
    assert [r.count for r in counts["size"]] == [1, 1, 1, 1]
    assert page.count('loading="lazy"') == 4
    assert "overlay-toggle" in page and "datasets/version.js" in page
    assert "Made by the test suite." in page  # README as provenance
    assert "research only" in page  # per-item licences


def test_only_web_copies_are_served_never_the_originals(client, researcher, labelled):
    client.force_login(researcher)
    item = Item.objects.first()
    for kind in ("thumb", "overlay", "web", "web-overlay"):
        response = client.get(reverse("datasets:item_file", args=[item.pk, kind]))
        assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
        body = b"".join(response.streaming_content)
        assert b"Exif" not in body[:200]
    for kind in ("image", "mask", "original"):
        assert client.get(reverse("datasets:item_file", args=[item.pk, kind])).status_code == 404


def test_size_filter_shows_only_no_subject_items(client, researcher, labelled):
    client.force_login(researcher)
    url = reverse("datasets:version", args=["demo", labelled.version.short_hash])
    page = client.get(url, {"bucket": "none"}).context["page"]
    assert [i.stem for i in page] == ["item1"]


def test_list_and_detail_pages_name_the_versions(client, researcher, labelled):
    client.force_login(researcher)
    assert labelled.version.spec in client.get(reverse("datasets:list")).content.decode()
    detail = client.get(reverse("datasets:detail", args=["demo"])).content.decode()
    assert labelled.version.content_hash in detail and "1-3,4-7,8-10" in detail


def test_upload_creates_an_import_job_and_the_worker_step_imports_it(
    client, researcher, tmp_path, django_capture_on_commit_callbacks
):
    client.force_login(researcher)
    archive = zip_folder(make_set(tmp_path / "s", 2), tmp_path / "s.zip")
    with (
        mock.patch("evalsite.core.tasks.run_chunk.apply_async") as send,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = client.post(
            reverse("datasets:upload"),
            {
                "name": "uploaded",
                "archive": SimpleUploadedFile("s.zip", archive.read_bytes(), "application/zip"),
            },
        )
    imp = DatasetImport.objects.get()
    assert response.status_code == 302 and response.url == reverse("datasets:import", args=[imp.pk])
    assert imp.job.kind == "datasets.import" and send.called
    assert Path(imp.upload).is_file()
    # the chunk handler, run in-process here (a real worker runs it in test_upload_worker.py)
    dataset_import_run(import_id=imp.pk)
    imp.refresh_from_db()
    assert imp.status == ImportStatus.DONE and imp.outcome == "created"
    assert imp.processed == imp.total == 2
    assert not Path(imp.upload).exists()
    progress = client.get(reverse("datasets:import_progress", args=[imp.pk])).json()
    assert progress["finished"] and progress["version_url"].startswith("/sets/uploaded/")
    assert Job.objects.count() == 1


def test_a_rejected_upload_says_why_on_its_page(client, researcher, tmp_path, media):
    client.force_login(researcher)
    with mock.patch("evalsite.core.tasks.run_chunk.apply_async"):
        client.post(
            reverse("datasets:upload"),
            {"name": "bad", "archive": SimpleUploadedFile("bad.zip", b"PK\x03\x04 not a zip")},
        )
    imp = DatasetImport.objects.get()
    dataset_import_run(import_id=imp.pk)
    imp.refresh_from_db()
    assert imp.status == ImportStatus.FAILED and "not a zip archive" in imp.error
    page = client.get(reverse("datasets:import", args=[imp.pk])).content.decode()
    assert "Why it was rejected" in page and "not a zip archive" in page
    assert not [p for p in media.rglob("*") if p.is_file()]


def test_upload_form_rejects_bad_names_and_non_zip_files(client, researcher):
    client.force_login(researcher)
    response = client.post(
        reverse("datasets:upload"), {"name": "a:b", "archive": SimpleUploadedFile("x.tar", b"data")}
    )
    form = response.context["form"]
    assert "Invalid set name 'a:b'" in form.errors["name"][0]
    assert "upload a .zip archive" in form.errors["archive"][0]
    assert DatasetImport.objects.count() == 0
