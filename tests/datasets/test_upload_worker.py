"""The web upload end to end through a real Celery worker process (filesystem broker + SQLite
by default): upload → job on queue default → worker imports → progress JSON says done."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from evalsite.datasets.models import DatasetImport, DatasetVersion, Item
from tests.datasets.builders import make_set, zip_folder
from tests.workers import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker, pytest.mark.no_services]

# Above POOL_MIN_ITEMS, so the worker's import also exercises the process pool inside a
# prefork child.
ITEMS = 20


def test_an_uploaded_zip_is_imported_by_a_real_worker(client, researcher, tmp_path, start_worker):
    # Given a researcher uploading a zipped set with one broken image
    folder = make_set(tmp_path / "s", ITEMS, w=320, h=240)
    (folder / "images" / "item3.jpg").write_bytes(b"not a picture")
    archive = zip_folder(folder, tmp_path / "s.zip", prefix="myset/")
    client.force_login(researcher)
    response = client.post(
        reverse("datasets:upload"),
        {
            "name": "uploaded",
            "archive": SimpleUploadedFile("s.zip", archive.read_bytes(), "application/zip"),
        },
    )
    imp = DatasetImport.objects.get()
    assert response.url == reverse("datasets:import", args=[imp.pk])
    page = client.get(response.url).content.decode()
    assert "<progress" in page and reverse("datasets:import_progress", args=[imp.pk]) in page

    # When a real worker consumes the default queue
    worker = start_worker(include="", beat=False)
    progress_url = reverse("datasets:import_progress", args=[imp.pk])

    def finished() -> dict | None:
        body = client.get(progress_url).json()
        return body if body["finished"] else None

    body = wait_for(finished, 180, "the upload import to finish", worker)

    # Then the progress counts came from the database and the version exists
    assert body["status"] == "done", body
    assert body["processed"] == body["total"] == ITEMS
    version = DatasetVersion.objects.get(dataset__name="uploaded")
    assert version.item_count == ITEMS - 1
    assert body["version_url"] == reverse("datasets:version", args=["uploaded", version.short_hash])
    assert [e["file"] for e in version.report["skipped"]] == ["images/item3.jpg"]
    assert version.import_source == "web upload s.zip"
    assert Path(Item.objects.filter(version=version).first().thumb.path).is_file()
    assert not Path(DatasetImport.objects.get().upload).exists()
