"""Names that pass for another: folded to a skeleton (`cl`/d, `rn`/m, `vv`/w, 0/o, 1/l/i, `_`/`-`)
and compared with the reserved words and with the existing names of the same kind, at every door
(REST API, web forms, CLI, set import). Each is refused naming the name it looks like, with the
right status, and writes nothing; a name is never trimmed or altered silently."""

from __future__ import annotations

from io import StringIO
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from rest_framework.test import APIClient

from evalsite.core.names import NameRejected, canonical_name, lookalike_check
from evalsite.datasets.importing import dataset_import
from evalsite.datasets.models import Dataset, DatasetImport, DatasetVersion
from models.models import Alias, AliasMove, ModelFamily, ModelVersion
from tests.datasets.builders import make_set, zip_folder
from tests.evals.factories import token_client, user_with
from tests.registry.factories import VersionFactory

pytestmark = [pytest.mark.django_db]


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, settings: Any) -> Any:
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.TEMP_ROOT = tmp_path / "scratch"
    with mock.patch("celery.app.task.Task.apply_async"):
        yield


def _api() -> APIClient:
    return token_client(user_with("researcher", "api-researcher"))


@pytest.fixture
def lift() -> ModelVersion:
    """subject-lift with the versions 1.0.0 and 1.2.0, as in the demo."""
    VersionFactory(family__name="subject-lift", version="1.0.0")
    return VersionFactory(family__name="subject-lift", version="1.2.0")


# --- aliases -----------------------------------------------------------------------------------

ALIASES = [
    pytest.param("procluction", "looks like the reserved alias 'production'",
                 id="api-alias-cl-for-d"),
    pytest.param("canclidate", "looks like the reserved alias 'candidate'",
                 id="api-alias-canclidate"),
    pytest.param("b3ta", "looks like the existing alias 'beta'", id="api-alias-existing"),
]  # fmt: skip


@pytest.mark.no_services
@pytest.mark.parametrize(("name", "words"), ALIASES)
def test_look_alike_aliases_are_a_400(lift: ModelVersion, name: str, words: str) -> None:
    Alias.objects.create(family=lift.family, name="beta", version=lift)
    response = _api().post(
        f"/models/api/families/subject-lift/aliases/{name}/",
        {"version": "1.2.0", "reason": "ship it"},
    )
    assert response.status_code == 400, response.content
    assert words in response.json()["error"]["message"]
    assert list(Alias.objects.values_list("name", flat=True)) == ["beta"]
    assert not AliasMove.objects.exists()


# --- versions ----------------------------------------------------------------------------------

VERSIONS = [
    pytest.param("1.2.o", "has 'o' where a number is expected: it reads as '1.2.0'",
                 id="api-version-letter-o"),
    pytest.param("1.2.l", "has 'l' where a number is expected: it reads as '1.2.1'",
                 id="api-version-letter-l"),
    pytest.param("1.0.o", "it reads as '1.0.0'", id="api-version-1.0.o"),
]  # fmt: skip


@pytest.mark.no_services
@pytest.mark.parametrize(("version", "words"), VERSIONS)
def test_versions_with_letters_for_digits_are_a_400(
    lift: ModelVersion, version: str, words: str
) -> None:
    response = _api().post(
        "/models/api/families/subject-lift/versions/",
        {"version": version, "external": True, "provenance": "vendor"},
        format="json",
    )
    assert response.status_code == 400, response.content
    assert words in str(response.json())
    assert ModelVersion.objects.count() == 2


@pytest.mark.no_services
@pytest.mark.parametrize("case", ["version-beside-legacy-look-alike"])
def test_a_version_folding_to_an_existing_one_is_refused_naming_it(case: str) -> None:
    # `1.2.o` can no longer be registered; a row from before the rule still guards its twin.
    legacy = VersionFactory(family__name="subject-lift", version="1.2.o")
    with pytest.raises(CommandError) as err:
        call_command("register_model", "--external", "--family", "subject-lift", "--version",
                     "1.2.0", stdout=StringIO())  # fmt: skip
    assert err.value.returncode == 2
    assert "looks like the existing version '1.2.o'" in str(err.value)
    assert list(ModelVersion.objects.values_list("pk", flat=True)) == [legacy.pk]


@pytest.mark.no_services
def test_distinct_versions_and_names_still_pass(lift: ModelVersion) -> None:
    for version in ("1.2.1", "1.20", "12.0", "1.2.0-rc1", "2024.06", "1.0.0b1"):
        assert canonical_name(version, kind="version") == version
        lookalike_check(version, kind="version", existing=["1.2.0", "1.0.0", "1.1.0"])
    for name in ("pascal-s", "pascal-s-test", "pascal-s-demo", "previous-candidate"):
        lookalike_check(name, kind="set", existing=["pascal-s", "pascal-s-test", "pascal-s-demo"])
        canonical_name(name, kind="alias")
    with pytest.raises(NameRejected, match="existing set name 'pascal-s-demo'"):
        lookalike_check("pasca1-s-demo", kind="set", existing=["pascal-s-demo"])


# --- families ----------------------------------------------------------------------------------

FAMILIES = [
    pytest.param("subject-1ift", "looks like the existing family name 'subject-lift'",
                 id="web-family-1-for-l"),
    pytest.param("subject_lift", "looks like the existing family name 'subject-lift'",
                 id="web-family-underscore"),
    pytest.param("production", "is a reserved alias: a reference such as 'production:1.0.0'",
                 id="web-family-production"),
]  # fmt: skip


@pytest.mark.parametrize(("family", "words"), FAMILIES)
def test_look_alike_families_are_a_form_error(lift: ModelVersion, family: str, words: str) -> None:
    client = Client()
    client.force_login(user_with("researcher", "web-researcher"))
    response = client.post("/models/upload/external/", {
        "family": family, "version": "9.9.9", "provenance": "vendor X",
    })  # fmt: skip
    assert response.status_code == 400
    assert words in response.content.decode().replace("&#x27;", "'")
    assert list(ModelFamily.objects.values_list("name", flat=True)) == ["subject-lift"]
    assert ModelVersion.objects.count() == 2


@pytest.mark.no_services
@pytest.mark.parametrize("case", ["cli-family-look-alike"])
def test_the_cli_refuses_a_look_alike_family(lift: ModelVersion, case: str) -> None:
    with pytest.raises(CommandError) as err:
        call_command("register_model", "--external", "--family", "subject_1ift", "--version",
                     "1.0.0", stdout=StringIO())  # fmt: skip
    assert err.value.returncode == 2
    assert "looks like the existing family name 'subject-lift'" in str(err.value)
    assert ModelFamily.objects.count() == 1


# --- set names ---------------------------------------------------------------------------------

SETS = [
    pytest.param("pasca1-s-demo", "looks like the existing set name 'pascal-s-demo'",
                 id="set-name-look-alike"),
    pytest.param("production", "is a reserved alias", id="set-name-production"),
    pytest.param("pr0duction", "looks like the reserved alias 'production'",
                 id="set-name-production-look-alike"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "words"), SETS)
def test_look_alike_set_names_are_refused_by_the_cli(tmp_path: Path, name: str, words: str) -> None:
    dataset_import(path=make_set(tmp_path / "demo", 2), name="pascal-s-demo")
    err = StringIO()
    with pytest.raises(CommandError) as exc:
        call_command("import_dataset", str(make_set(tmp_path / "new", 2, seed=5)), "--name", name,
                     stdout=StringIO(), stderr=err)  # fmt: skip
    assert exc.value.returncode == 1
    assert words in err.getvalue(), err.getvalue()
    assert list(Dataset.objects.values_list("name", flat=True)) == ["pascal-s-demo"]
    assert DatasetVersion.objects.count() == 1


WEB_SETS = [
    pytest.param("pascal-s-demo ", "U+0020", id="web-set-name-trailing-space"),
    pytest.param("pasca1-s-demo", "looks like the existing set name", id="web-set-name-look-alike"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "words"), WEB_SETS)
def test_the_web_upload_refuses_instead_of_trimming_into_the_existing_set(
    tmp_path: Path, name: str, words: str
) -> None:
    dataset_import(path=make_set(tmp_path / "demo", 2), name="pascal-s-demo")
    archive = zip_folder(make_set(tmp_path / "new", 2, seed=5), tmp_path / "new.zip")
    client = Client()
    client.force_login(user_with("researcher", "web-researcher"))
    response = client.post("/sets/upload/", {
        "name": name, "archive": SimpleUploadedFile("new.zip", archive.read_bytes()),
    })  # fmt: skip
    assert response.status_code == 400
    assert words in response.content.decode()
    assert not DatasetImport.objects.exists()
    assert DatasetVersion.objects.count() == 1


CASE_IDS = (
    {p.id for p in ALIASES} | {p.id for p in VERSIONS} | {p.id for p in FAMILIES}
    | {p.id for p in SETS} | {p.id for p in WEB_SETS}
    | {"version-beside-legacy-look-alike", "cli-family-look-alike"}
)  # fmt: skip
