"""Archives whose names mean two things or cannot be written, through every door that unpacks
one: the set import (CLI and the web upload's job) and the predictions import (web form and REST
API). Each is refused naming the entries, with the right status, no server path in the message,
and nothing left behind (rows, media files, run folders, temporary folders)."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from io import StringIO
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse

from evalsite.datasets.models import DatasetImport, DatasetVersion, ImportStatus
from evalsite.datasets.services import dataset_import_run, dataset_import_upload
from tests.datasets.builders import jpeg_bytes, make_set, photo, png_bytes, zip_folder
from tests.datasets.conftest import assert_nothing_written, media_files
from tests.evals.factories import tiny_set, tiny_spec, token_client, user_with, version_row
from tests.evals.importing import clear_run_folders, nothing_created, write_predictions

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]

LONG = "a" * 300  # one path component over the 255 bytes ext4/APFS/NTFS take


@pytest.fixture(autouse=True)
def scratch(tmp_path: Path, settings: Any) -> Path:
    """This test's MEDIA_ROOT and TEMP_ROOT, so "nothing left behind" looks at our folders only."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MEDIA_ROOT.mkdir()
    folder = tmp_path / "scratch"
    folder.mkdir()
    settings.TEMP_ROOT = folder
    clear_run_folders()
    return folder


def _no_server_path(text: str, scratch: Path) -> None:
    assert str(scratch) not in text and "/import-" not in text and "dataset-import-" not in text, (
        text
    )


def _png(value: int = 0) -> bytes:
    return png_bytes(np.full((4, 4), value, np.uint8))


# --- the set import --------------------------------------------------------------------------

Adder = Callable[[zipfile.ZipFile], None]


def _dup(zf: zipfile.ZipFile) -> None:
    with pytest.warns(UserWarning, match="Duplicate name"):
        zf.writestr("images/item0.jpg", jpeg_bytes(photo(seed=99)))


SET_ZIPS = [
    pytest.param(lambda zf: zf.writestr(f"images/{LONG}.jpg", b"x"),
                 "a file or folder name of 304 bytes (limit 255", id="zip-long-entry-name"),
    pytest.param(lambda zf: (zf.writestr("images/x", b"x"), zf.writestr("images/x/y.jpg", b"y")),
                 "images/x: is a file, and other entries put files inside a folder",
                 id="zip-file-and-folder"),
    pytest.param(_dup, "images/item0.jpg: the same entry appears twice", id="zip-duplicate-entry"),
    pytest.param(lambda zf: zf.writestr("images/ITEM0.jpg", jpeg_bytes(photo(seed=7))),
                 "images/ITEM0.jpg: differs from the entry 'images/item0.jpg' only in upper/lower",
                 id="zip-case-twins"),
]  # fmt: skip


def run_import(path: Path) -> tuple[int, str]:
    err = StringIO()
    with pytest.raises(CommandError) as exc:
        call_command(
            "import_dataset", str(path), "--name", "hostile", stdout=StringIO(), stderr=err
        )
    return exc.value.returncode, err.getvalue()


def _set_zip(tmp_path: Path, add: Adder) -> Path:
    dest = zip_folder(make_set(tmp_path / "set", 2), tmp_path / "upload.zip")
    with zipfile.ZipFile(dest, "a", zipfile.ZIP_DEFLATED) as zf:
        add(zf)
    return dest


@pytest.mark.parametrize(("add", "words"), SET_ZIPS)
def test_set_zips_whose_names_mean_two_things_are_refused_by_the_cli(
    tmp_path: Path, scratch: Path, add: Adder, words: str
) -> None:
    code, text = run_import(_set_zip(tmp_path, add))
    assert code == 1
    assert words in text and "nothing was written" in text, text
    _no_server_path(text, scratch)
    assert_nothing_written(tmp_path / "media")
    assert list(scratch.iterdir()) == []


def test_stems_equal_up_to_case_are_refused_naming_both(tmp_path: Path, scratch: Path) -> None:
    folder = make_set(tmp_path / "set", 2)
    (folder / "images" / "ITEM1.png").write_bytes(png_bytes(np.asarray(photo(seed=5))))
    (folder / "masks" / "ITEM1.png").write_bytes(_png())
    code, text = run_import(folder)
    assert code == 1
    assert "stem 'item1' differs from 'ITEM1' (images/ITEM1.png) only in upper/lower" in text
    assert_nothing_written(tmp_path / "media")
    assert list(scratch.iterdir()) == []


def test_the_web_set_upload_names_the_entries_and_stores_nothing(
    tmp_path: Path, scratch: Path
) -> None:
    archive = _set_zip(tmp_path, lambda zf: zf.writestr(f"images/{LONG}.jpg", b"x"))
    imp = dataset_import_upload(
        name="hostile", user=user_with("researcher"),
        upload=SimpleUploadedFile("set.zip", archive.read_bytes()),
    )  # fmt: skip
    dataset_import_run(import_id=imp.pk)
    imp = DatasetImport.objects.get(pk=imp.pk)
    assert imp.status == ImportStatus.FAILED
    assert "(limit 255 bytes per name)" in imp.error and "images/aaaa" in imp.error
    _no_server_path(imp.error, scratch)
    assert list(scratch.iterdir()) == []
    assert not DatasetVersion.objects.exists() and media_files(tmp_path / "media") == []


# --- the predictions import ------------------------------------------------------------------


@pytest.fixture
def world(tmp_path: Path) -> tuple[Any, Any]:
    dv = tiny_set(tmp_path, n=3, empty=0)
    return dv, version_row("fake", "1.0.0", fmt="torch_export", spec=tiny_spec())


def _preds(dv: Any, tmp_path: Path, add: Adder) -> bytes:
    folder = write_predictions(dv, tmp_path / "pred")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path in sorted(folder.iterdir()):
            zf.write(path, arcname=path.name)
        add(zf)
    return buf.getvalue()


def _dup_prediction(zf: zipfile.ZipFile) -> None:
    first = sorted(n for n in zf.namelist())[0]
    with pytest.warns(UserWarning, match="Duplicate name"):
        zf.writestr(first, _png(255))  # a different alpha than the one a reviewer sees first


def _case_twin(zf: zipfile.ZipFile) -> None:
    first = sorted(zf.namelist())[0]
    zf.writestr(first.upper().replace(".PNG", ".png"), _png(255))


PREDICTION_ZIPS = [
    pytest.param(lambda zf: zf.writestr(f"{LONG}.png", _png()),
                 "a file or folder name of 304 bytes (limit 255", id="predictions-zip-long-name"),
    pytest.param(lambda zf: (zf.writestr("x", b"x"), zf.writestr("x/y.png", _png())),
                 "x: is a file, and other entries put files inside a folder",
                 id="predictions-zip-file-and-folder"),
    pytest.param(_dup_prediction, "the same entry appears twice",
                 id="predictions-zip-duplicate-entry"),
    pytest.param(_case_twin, "only in upper/lower case", id="predictions-zip-case-twins"),
]  # fmt: skip


def _post_web(dv: Any, version: Any, data: bytes) -> Any:
    client = Client()
    client.force_login(user_with("researcher", "web-researcher"))
    return client.post(reverse("evals:import"), {
        "model_version": version.pk, "dataset_version": dv.pk,
        "file": SimpleUploadedFile("preds.zip", data, content_type="application/zip"),
    })  # fmt: skip


def _post_api(dv: Any, version: Any, data: bytes) -> Any:
    api = token_client(user_with("researcher", "api-researcher"))
    return api.post(reverse("evals:api-run-import"), {
        "model": version.ref, "dataset": dv.spec,
        "file": SimpleUploadedFile("preds.zip", data),
    }, format="multipart")  # fmt: skip


@pytest.mark.parametrize("door", ["web", "api"])
@pytest.mark.parametrize(("add", "words"), PREDICTION_ZIPS)
def test_prediction_zips_whose_names_mean_two_things_are_a_400_not_a_500(
    tmp_path: Path, scratch: Path, world: Any, door: str, add: Adder, words: str
) -> None:
    dv, version = world
    data = _preds(dv, tmp_path, add)
    response = (_post_web if door == "web" else _post_api)(dv, version, data)
    body = response.content.decode()
    assert response.status_code == 400, body[:500]
    assert words in body and "preds.zip" in body
    _no_server_path(body, scratch)
    nothing_created()
    assert list(scratch.iterdir()) == [], "a temporary folder was left behind"


@pytest.mark.parametrize("door", ["web", "api"])
def test_an_unreadable_prediction_is_named_without_the_extraction_path(
    tmp_path: Path, scratch: Path, world: Any, door: str
) -> None:
    dv, version = world
    folder = write_predictions(dv, tmp_path / "pred")
    victim = sorted(folder.glob("*.png"))[0]
    victim.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)  # Pillow's error quotes the file path
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path in sorted(folder.iterdir()):
            zf.write(path, arcname=f"pred/{path.name}")
    response = (_post_web if door == "web" else _post_api)(dv, version, buf.getvalue())
    body = response.content.decode()
    assert response.status_code == 400
    assert f"{victim.name}: cannot read the PNG" in body
    _no_server_path(body, scratch)
    assert "/files/" not in body
    nothing_created()
    assert list(scratch.iterdir()) == []


CASE_IDS = {p.id for p in SET_ZIPS} | {p.id for p in PREDICTION_ZIPS} | {
    "set-stems-case", "web-set-zip-long-name", "predictions-no-temp-path",
}  # fmt: skip
