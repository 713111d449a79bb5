"""Hostile set imports through `import_dataset` (the CLI door; the web upload runs the same
`dataset_import` in a worker): exit 1 with a message naming the file, nothing written — no rows,
no media files, no leftover temporary folder."""

from __future__ import annotations

import stat
import zipfile
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.datasets.builders import jpeg_bytes, make_set, photo, write_manifest, zip_folder
from tests.datasets.conftest import assert_nothing_written
from tests.media import media_root

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]


@pytest.fixture(autouse=True)
def media(tmp_path: Path, settings: Any) -> Path:
    root = media_root(tmp_path, settings)
    scratch = tmp_path / "scratch"  # the importer's temporary folders land here, so we can look
    scratch.mkdir()
    settings.TEMP_ROOT = scratch
    return root


def run_import(path: Path, name: str = "hostile", **opts: Any) -> tuple[int, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command("import_dataset", str(path), "--name", name, stdout=out, stderr=err, **opts)
    except CommandError as exc:
        return exc.returncode, err.getvalue() + str(exc)
    return 0, out.getvalue()


def assert_clean(media: Path, tmp_path: Path) -> None:
    assert_nothing_written(media)
    assert list((tmp_path / "scratch").iterdir()) == [], "a temporary folder was left behind"


def _zip(tmp_path: Path, add: Any) -> Path:
    folder = make_set(tmp_path / "set", 2)
    dest = zip_folder(folder, tmp_path / "upload.zip")
    with zipfile.ZipFile(dest, "a", zipfile.ZIP_DEFLATED) as zf:
        add(zf)
    return dest


def _zeros(zf: zipfile.ZipFile) -> None:
    for i in range(300):
        zf.writestr(f"images/zero{i:03d}.jpg", b"\0" * 2**20)


def _symlink(zf: zipfile.ZipFile) -> None:
    info = zipfile.ZipInfo("images/link.jpg")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    zf.writestr(info, "/etc/passwd")


def _many(zf: zipfile.ZipFile) -> None:
    for i in range(30):
        zf.writestr(f"extra/{i}.txt", b"x")


ZIPS = [
    pytest.param(_zeros, {}, "(limit 20:1, DATASET_ZIP_MAX_RATIO)", id="zip-many-small-zeros"),
    pytest.param(_many, {"DATASET_ZIP_MAX_ENTRIES": 10}, "entries (limit 10",
                 id="zip-too-many-entries"),
    pytest.param(lambda zf: zf.writestr("images/big.jpg", jpeg_bytes(photo(640, 480))),
                 {"DATASET_ZIP_MAX_BYTES": 50_000}, "uncompressed (limit",
                 id="zip-total-too-large"),
    pytest.param(lambda zf: zf.writestr("images/bomb.jpg", b"\0" * (50 * 2**20)), {},
                 "compression ratio", id="zip-one-entry-bomb"),
    pytest.param(lambda zf: zf.writestr("../evil.jpg", b"x"), {}, "path leaves the archive",
                 id="zip-dotdot"),
    pytest.param(lambda zf: zf.writestr("/tmp/evil.jpg", b"x"), {}, "absolute path",
                 id="zip-absolute"),
    pytest.param(_symlink, {}, "symbolic link in the archive", id="zip-symlink"),
]  # fmt: skip


@pytest.mark.parametrize(("add", "limits", "words"), ZIPS)
def test_hostile_zips_are_refused_before_extraction(
    tmp_path: Path, media: Path, settings: Any, add: Any, limits: dict[str, int], words: str
) -> None:
    for key, value in limits.items():
        setattr(settings, key, value)
    archive = _zip(tmp_path, add)
    code, text = run_import(archive)
    assert code == 1, text
    assert words in text
    assert "nothing was written" in text
    assert_clean(media, tmp_path)
    assert not (tmp_path / "evil.jpg").exists() and not Path("/tmp/evil.jpg").exists()


@pytest.mark.parametrize(
    ("make", "words"),
    [
        pytest.param(lambda p: p.write_bytes(b"\x00garbage" * 100), "",
                     id="zip-not-a-zip"),
        pytest.param(None, "", id="zip-truncated"),
    ],
)  # fmt: skip
def test_unreadable_archives_are_refused(
    tmp_path: Path, media: Path, make: Any, words: str
) -> None:
    archive = tmp_path / "broken.zip"
    if make is None:
        whole = zip_folder(make_set(tmp_path / "set", 3), tmp_path / "whole.zip").read_bytes()
        archive.write_bytes(whole[: len(whole) // 2])
    else:
        make(archive)
    code, text = run_import(archive)
    assert code == 1, text
    assert "broken.zip" in text and "nothing was written" in text
    assert_clean(media, tmp_path)


@pytest.mark.parametrize(
    ("name", "words"),
    [
        pytest.param("sod\n", "U+000A", id="set-name-newline"),
        pytest.param("SOD", "canonical form 'sod'", id="set-name-uppercase"),
        pytest.param("so\u200bd", "U+200B ZERO WIDTH SPACE", id="set-name-zero-width"),
        pytest.param("upload", "reserved by the site's URLs", id="set-name-reserved"),
    ],
)
def test_hostile_set_names_are_refused(tmp_path: Path, media: Path, name: str, words: str) -> None:
    code, text = run_import(make_set(tmp_path / "set", 2), name=name)
    assert code == 1 and words in text, text
    assert_clean(media, tmp_path)


def test_set_image_pixel_bomb_quotes_the_configured_limit(
    tmp_path: Path, media: Path, settings: Any
) -> None:
    settings.DATASET_MAX_PIXELS = 1_000_000
    folder = make_set(tmp_path / "set", 2)
    # A real PNG header claiming 20000×20000 (400 MP): Pillow refuses it before decoding.
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b""))
    png += chunk(b"IEND", b"")
    (folder / "images" / "bomb.png").write_bytes(png)
    (folder / "masks" / "bomb.png").write_bytes(png)
    code, text = run_import(folder, name="pixel-bomb")
    assert code == 0, text  # the other items import; the bomb is skipped with the reason
    assert "bomb" in text and "1 MP limit (DATASET_MAX_PIXELS" in text
    assert "179" not in text
    assert list((tmp_path / "scratch").iterdir()) == []


def test_set_no_images_folder(tmp_path: Path, media: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    code, text = run_import(empty)
    assert code == 1 and "no images/ folder and no manifest.csv" in text
    assert_clean(media, tmp_path)


@pytest.mark.parametrize(
    ("write", "words"),
    [
        pytest.param(lambda p: p.write_bytes("image,mask\nphoto\xe9.jpg,m.png\n".encode("latin-1")),
                     "not readable UTF-8", id="manifest-not-utf8"),
        pytest.param(lambda p: p.write_bytes(b""), "manifest is empty", id="manifest-empty"),
    ],
)  # fmt: skip
def test_broken_manifests_are_fatal(tmp_path: Path, media: Path, write: Any, words: str) -> None:
    folder = make_set(tmp_path / "set", 2)
    write(folder / "manifest.csv")
    code, text = run_import(folder)
    assert code == 1 and words in text, text
    assert_clean(media, tmp_path)


def test_manifest_dotdot_reads_nothing_outside_the_folder(tmp_path: Path, media: Path) -> None:
    outside = tmp_path / "outside.jpg"
    outside.write_bytes(jpeg_bytes(photo()))
    folder = tmp_path / "set"
    folder.mkdir()
    write_manifest(folder, [{"image": "../outside.jpg", "mask": "../outside.jpg"}])
    code, text = run_import(folder)
    assert code == 1, text
    assert "outside.jpg" in text
    assert_clean(media, tmp_path)


CASE_IDS = {p.id for p in ZIPS} | {
    "zip-not-a-zip", "zip-truncated", "set-name-newline", "set-name-uppercase",
    "set-name-zero-width", "set-name-reserved", "set-image-pixel-bomb", "set-no-images",
    "manifest-not-utf8", "manifest-empty", "manifest-dotdot",
}  # fmt: skip
