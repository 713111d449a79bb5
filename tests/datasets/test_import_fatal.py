"""Fatal import problems: the import stops, says which file and what to do, and writes nothing
(no rows, no stored files)."""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from evalsite.datasets.errors import ImportRejected
from evalsite.datasets.importing import dataset_import
from tests.datasets.builders import (
    jpeg_bytes,
    make_set,
    photo,
    write_manifest,
    zip_folder,
)
from tests.datasets.conftest import assert_nothing_written

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]


def rejected(path: Path, **kw: object) -> ImportRejected:
    with pytest.raises(ImportRejected) as info:
        dataset_import(path=path, name=kw.pop("name", "bad"), **kw)  # type: ignore[arg-type]
    return info.value


def zip_with_extra(tmp_path: Path, add: object) -> Path:
    """A valid set zipped, plus one hostile entry written by `add(zipfile)`."""
    folder = make_set(tmp_path / "set", 2)
    dest = zip_folder(folder, tmp_path / "upload.zip")
    with zipfile.ZipFile(dest, "a", zipfile.ZIP_DEFLATED) as zf:
        add(zf)  # type: ignore[operator]
    return dest


def test_zip_entry_leaving_the_archive_is_fatal(tmp_path, media):
    # Given a zip whose extra entry climbs out of the extraction folder
    bad = zip_with_extra(tmp_path, lambda zf: zf.writestr("../x.jpg", jpeg_bytes(photo())))
    # When it is imported, then it is rejected naming the entry, and nothing is written
    exc = rejected(bad)
    assert exc.entries[0]["file"] == "../x.jpg"
    assert "leaves the archive" in exc.entries[0]["reason"]
    assert "relative paths" in exc.entries[0]["action"]
    assert not (tmp_path / "x.jpg").exists()
    assert_nothing_written(media)


def test_zip_entry_with_a_nested_dotdot_is_fatal(tmp_path, media):
    bad = zip_with_extra(tmp_path, lambda zf: zf.writestr("images/../../evil.jpg", b"x"))
    assert "leaves the archive" in str(rejected(bad))
    assert_nothing_written(media)


def test_zip_entry_with_an_absolute_path_is_fatal(tmp_path, media):
    bad = zip_with_extra(tmp_path, lambda zf: zf.writestr("/tmp/evil.jpg", jpeg_bytes(photo())))
    exc = rejected(bad)
    assert exc.entries[0]["file"] == "/tmp/evil.jpg"
    assert "absolute path" in exc.entries[0]["reason"]
    assert_nothing_written(media)


def test_zip_symlink_entry_is_fatal(tmp_path, media):
    def add_link(zf: zipfile.ZipFile) -> None:
        info = zipfile.ZipInfo("images/link.jpg")
        info.create_system = 3  # unix, so the mode bits below are honoured
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")

    exc = rejected(zip_with_extra(tmp_path, add_link))
    assert exc.entries[0]["file"] == "images/link.jpg"
    assert "symbolic link" in exc.entries[0]["reason"]
    assert_nothing_written(media)


def test_zip_bomb_by_compression_ratio_is_fatal(tmp_path, media):
    # 64 MiB of zeros deflate to ~64 KiB: a ratio of ~1000:1, which no photograph reaches
    bad = zip_with_extra(tmp_path, lambda zf: zf.writestr("images/bomb.png", bytes(64 << 20)))
    assert (tmp_path / "upload.zip").stat().st_size < 2 << 20
    exc = rejected(bad)
    assert exc.entries[0]["file"] == "images/bomb.png"
    assert "zip bomb suspected: compression ratio" in exc.entries[0]["reason"]
    assert_nothing_written(media)


def test_zip_bomb_by_total_size_is_fatal(tmp_path, media, settings):
    settings.DATASET_ZIP_MAX_BYTES = 4_000  # the set itself is ~7.5 KB uncompressed
    exc = rejected(zip_folder(make_set(tmp_path / "set", 4), tmp_path / "big.zip"))
    assert "zip bomb suspected" in exc.entries[0]["reason"]
    assert "uncompressed" in exc.entries[0]["reason"]
    assert_nothing_written(media)


def test_a_file_that_is_not_a_zip_is_fatal(tmp_path, media):
    fake = tmp_path / "set.zip"
    fake.write_text("image,mask\n")
    exc = rejected(fake)
    assert "not a zip archive" in exc.entries[0]["reason"]
    assert_nothing_written(media)


def test_manifest_with_wrong_columns_is_fatal(tmp_path, media):
    folder = make_set(tmp_path / "set", 2)
    write_manifest(folder, [{"picture": "images/item0.jpg", "segmentation": "masks/item0.png"}])
    exc = rejected(folder)
    e = exc.entries[0]
    assert e["file"] == "manifest.csv"
    assert (
        "manifest has columns [picture, segmentation]: missing column(s) image, mask"
        in (e["reason"])
    )
    assert "the header needs image and mask" in e["action"]
    assert_nothing_written(media)


def test_unreadable_manifest_is_fatal(tmp_path, media):
    folder = make_set(tmp_path / "set", 2)
    (folder / "manifest.csv").write_bytes(b"\xff\xfe\x00i\x00m\x00\x00\xc3(\x89PNG")
    exc = rejected(folder)
    assert "not readable UTF-8" in exc.entries[0]["reason"]
    assert_nothing_written(media)


def test_missing_manifest_file_given_on_the_command_line_is_fatal(tmp_path, media):
    folder = make_set(tmp_path / "set", 2)
    exc = rejected(folder, manifest=tmp_path / "nope.csv")
    assert "manifest file not found" in exc.entries[0]["reason"]
    assert_nothing_written(media)


def test_zero_valid_items_is_fatal_and_lists_why(tmp_path, media):
    # Given a set whose only image is truncated
    folder = make_set(tmp_path / "set", 1)
    data = (folder / "images" / "item0.jpg").read_bytes()
    (folder / "images" / "item0.jpg").write_bytes(data[: len(data) // 2])
    exc = rejected(folder)
    assert "zero valid items" in exc.entries[0]["reason"]
    assert "truncated" in exc.report["skipped"][0]["reason"]
    assert_nothing_written(media)


def test_a_folder_without_images_is_fatal(tmp_path, media):
    (tmp_path / "empty").mkdir()
    exc = rejected(tmp_path / "empty")
    assert "no images/ folder and no manifest.csv" in exc.entries[0]["reason"]
    assert_nothing_written(media)


def test_a_bad_set_name_is_fatal(tmp_path, media):
    exc = rejected(make_set(tmp_path / "set", 1), name="sod:abc")
    assert "set name 'sod:abc'" in exc.entries[0]["reason"]
    assert_nothing_written(media)


def test_cli_exits_1_with_the_reason_and_writes_nothing(tmp_path, media, capsys):
    bad = zip_with_extra(tmp_path, lambda zf: zf.writestr("../x.jpg", b"x"))
    with pytest.raises(CommandError) as info:
        call_command("import_dataset", str(bad), "--name", "bad")
    assert info.value.returncode == 1
    err = capsys.readouterr().err
    assert "nothing was written" in err and "../x.jpg: path leaves the archive" in err
    assert_nothing_written(media)
