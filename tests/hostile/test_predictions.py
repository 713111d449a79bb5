"""Hostile predictions imports (web upload zip and `import_predictions` folder): refused with the
file named, nothing created (no run, no job, no run folder, no temporary folder)."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse

from evalsite.evals.models import EvalRun
from tests.evals.factories import tiny_set, tiny_spec, user_with, version_row
from tests.evals.importing import clear_run_folders, nothing_created, write_predictions

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]


@pytest.fixture(autouse=True)
def scratch(tmp_path: Path, settings: Any) -> Path:
    clear_run_folders()
    folder = tmp_path / "scratch"
    folder.mkdir()
    settings.TEMP_ROOT = folder  # the import's temporary folders land here, so we can look
    return folder


@pytest.fixture
def world(tmp_path: Path) -> tuple[Any, Any]:
    dv = tiny_set(tmp_path, n=3, empty=0)
    return dv, version_row("fake", "1.0.0", fmt="torch_export", spec=tiny_spec())


def _zeros(zf: zipfile.ZipFile) -> None:
    for i in range(300):
        zf.writestr(f"pred/zero{i:03d}.png", b"\0" * 2**20)


ZIPS = [
    pytest.param(_zeros, "DATASET_ZIP_MAX_RATIO", id="predictions-zip-bomb"),
    pytest.param(lambda zf: zf.writestr("../../evil.png", b"x"), "path leaves the archive",
                 id="predictions-zip-dotdot"),
]  # fmt: skip


@pytest.mark.parametrize(("add", "words"), ZIPS)
def test_hostile_prediction_zips_are_refused_and_create_nothing(
    tmp_path: Path, scratch: Path, world: Any, add: Any, words: str
) -> None:
    dv, version = world
    folder = write_predictions(dv, tmp_path / "pred")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.iterdir()):
            zf.write(path, arcname=f"pred/{path.name}")
        add(zf)
    client = Client()
    client.force_login(user_with("researcher"))
    response = client.post(reverse("evals:import"), {
        "model_version": version.pk, "dataset_version": dv.pk,
        "file": SimpleUploadedFile("preds.zip", buf.getvalue(), content_type="application/zip"),
    })  # fmt: skip
    assert response.status_code == 400
    assert words in response.content.decode() and "preds.zip" in response.content.decode()
    nothing_created()
    assert list(scratch.iterdir()) == [], "a temporary folder was left behind"
    assert not (tmp_path / "evil.png").exists()


@pytest.mark.parametrize("case", ["predictions-png-bomb"])
def test_a_png_claiming_400_megapixels_is_refused_by_name(
    case: str, tmp_path: Path, scratch: Path, world: Any
) -> None:
    dv, version = world
    folder = write_predictions(dv, tmp_path / "pred")
    victim = sorted(folder.glob("*.png"))[0]

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0)
    victim.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                       + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))  # fmt: skip
    with pytest.raises(CommandError) as err:
        call_command("import_predictions", str(folder), "--model", version.ref, "--dataset",
                     dv.spec, stdout=StringIO(), stderr=StringIO())  # fmt: skip
    assert err.value.returncode == 1
    assert victim.name in str(err.value) and "decompression-bomb guard" in str(err.value)
    assert not EvalRun.objects.exists()
    nothing_created()


CASE_IDS = {p.id for p in ZIPS} | {"predictions-png-bomb"}
