"""Content-addressed versions: the hash, "unchanged" re-imports, shared storage, attribute
revisions, and `NAME[:HASHPREFIX]` resolution."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from django.core.management import call_command

from evalsite.datasets import vocab
from evalsite.datasets.errors import VersionSpecError
from evalsite.datasets.importing import content_hash, dataset_import
from evalsite.datasets.models import DatasetVersion, Item
from evalsite.datasets.selectors import dataset_version_resolve
from tests.datasets.builders import box_mask, make_set, png_bytes, write_manifest, zip_folder
from tests.datasets.conftest import media_files
from tests.datasets.factories import DatasetFactory, DatasetVersionFactory

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]


def test_the_content_hash_is_over_the_sorted_stored_files(tmp_path):
    result = dataset_import(path=make_set(tmp_path / "s", 3), name="t")
    triples = []
    for item in Item.objects.all():
        image_sha = hashlib.sha256(Path(item.image.path).read_bytes()).hexdigest()
        mask_sha = hashlib.sha256(Path(item.mask.path).read_bytes()).hexdigest()
        assert (image_sha, mask_sha) == (item.image_sha256, item.mask_sha256)
        triples.append((item.stem, image_sha, mask_sha))
    assert result.version.content_hash == content_hash(triples)
    assert content_hash(triples[::-1]) == content_hash(triples)


def test_reimporting_the_same_files_is_unchanged_and_writes_nothing(tmp_path, media):
    folder = make_set(tmp_path / "s", 3)
    first = dataset_import(path=folder, name="t")
    files = sorted(media_files(media))
    again = dataset_import(path=folder, name="t")
    assert again.outcome == "unchanged" and again.version == first.version
    assert DatasetVersion.objects.count() == 1
    assert sorted(media_files(media)) == files
    assert again.message == f"same content as t:{first.version.short_hash} — no new version"


def test_a_zip_of_the_same_files_gives_the_same_hash(tmp_path):
    folder = make_set(tmp_path / "s", 3)
    from_folder = dataset_import(path=folder, name="a")
    from_zip = dataset_import(path=zip_folder(folder, tmp_path / "s.zip", prefix="s/"), name="b")
    assert from_zip.version.content_hash == from_folder.version.content_hash


def test_a_changed_mask_makes_a_new_version_sharing_unchanged_files(tmp_path, media):
    folder = make_set(tmp_path / "s", 3)
    first = dataset_import(path=folder, name="t")
    before = len(media_files(media))
    (folder / "masks" / "item2.png").write_bytes(png_bytes(box_mask(frac=0.6)))
    second = dataset_import(path=folder, name="t")
    assert second.outcome == "created" and second.version != first.version
    assert first.version.dataset_id == second.version.dataset_id
    # one new mask + one new overlay (pictures this small have thumb == web copy, same bytes);
    # the images and their copies are stored once
    assert len(media_files(media)) == before + 2
    assert (
        Item.objects.filter(
            image_sha256=Item.objects.get(version=first.version, stem="item0").image_sha256
        ).count()
        == 2
    )


def test_changed_labels_on_the_same_pictures_make_a_new_attribute_revision(tmp_path):
    folder = make_set(tmp_path / "s", 2)
    rows = [
        {
            "image": f"images/item{i}.jpg",
            "mask": f"masks/item{i}.png",
            "skin_tone": "3",
            "perceived_gender": "woman",
        }
        for i in range(2)
    ]
    write_manifest(folder, rows)
    first = dataset_import(path=folder, name="t")
    rows[1]["skin_tone"] = "9"
    write_manifest(folder, rows)
    second = dataset_import(path=folder, name="t")
    assert second.outcome == "attributes_revised" and second.version == first.version
    assert second.revision is not None and second.revision.number == 2
    assert "attribute revision 2" in second.message
    assert dataset_import(path=folder, name="t").outcome == "unchanged"


def test_cli_reports_imported_then_unchanged(tmp_path, capsys):
    folder = make_set(tmp_path / "s", 2)
    call_command("import_dataset", str(folder), "--name", "cli")
    out = capsys.readouterr().out
    version = DatasetVersion.objects.get()
    assert f"imported cli:{version.short_hash} — 2 items" in out
    call_command("import_dataset", str(folder), "--name", "cli")
    assert f"same content as cli:{version.short_hash} — no new version" in capsys.readouterr().out


def test_a_version_cannot_be_changed_after_it_is_saved():
    version = DatasetVersionFactory()
    version.item_count = 5
    with pytest.raises(ValueError, match="immutable"):
        version.save()


def test_name_and_hash_prefix_resolve_to_a_version():
    old = DatasetVersionFactory(dataset__name="sod", content_hash="a1b2c3d4" + "0" * 56)
    new = DatasetVersionFactory(dataset=old.dataset, content_hash="ffee0011" + "1" * 56)
    assert dataset_version_resolve("sod:a1b2c3d4") == old
    assert dataset_version_resolve("sod:A1B2C3D40000") == old
    assert dataset_version_resolve("sod") == new  # no prefix: the latest version
    assert dataset_version_resolve(new.spec) == new


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nope:a1b2c3d4", "no set named 'nope'"),
        ("sod:a1b2", "the hash prefix must be 8-64 hex digits"),
        ("sod:zzzzzzzz", "the hash prefix must be 8-64 hex digits"),
        ("sod:99999999", "set 'sod' has no version 99999999 (versions: sod:"),
        ("sod:abcdef12", "is ambiguous"),
    ],
)
def test_bad_version_specs_say_what_is_wrong(spec, message):
    dataset = DatasetFactory(name="sod")
    DatasetVersionFactory(dataset=dataset, content_hash="abcdef12" + "a" * 56)
    DatasetVersionFactory(dataset=dataset, content_hash="abcdef12" + "b" * 56)
    with pytest.raises(VersionSpecError, match=message.replace("(", r"\(").replace(":", ":")):
        dataset_version_resolve(spec)


def test_a_set_without_versions_cannot_be_resolved():
    DatasetFactory(name="empty")
    with pytest.raises(VersionSpecError, match="has no versions yet"):
        dataset_version_resolve("empty")


def test_skin_tone_groups_must_cover_the_monk_scale_once():
    assert vocab.parse_skin_tone_groups("1-3,4-7,8-10") == [(1, 3), (4, 7), (8, 10)]
    assert vocab.skin_tone_group("5", [(1, 3), (4, 7), (8, 10)]) == "4–7"
    assert vocab.skin_tone_group("not_applicable", [(1, 10)]) == "not_applicable"
    for bad in ("1-3,4-7", "1-5,5-10", "0-10", "a-b"):
        with pytest.raises(ValueError):
            vocab.parse_skin_tone_groups(bad)
