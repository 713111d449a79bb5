"""Free text that was unbounded (1 MB of notes or provenance) and CSV cells that still ran as a
formula: each through the door that showed it, refused (or neutralised) with nothing written."""

from __future__ import annotations

import csv
import io
from io import StringIO
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from evalsite.core.text import NOTE_MAX, text_problem
from evalsite.datasets.models import Dataset, Item
from evalsite.evals.models import EvalRun
from models.models import Alias, AliasMove, ModelFamily, ModelVersion
from pipelines import csvsafe
from tests.datasets.builders import make_set
from tests.evals.factories import tiny_set, tiny_spec, token_client, user_with, version_row
from tests.evals.importing import clear_run_folders, nothing_created, write_predictions, zip_folder
from tests.ratings.builders import build_world
from tests.registry.factories import VersionFactory

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]

MEGABYTE = "x" * 1_000_000


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, settings: Any) -> Any:
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.TEMP_ROOT = tmp_path / "scratch"
    clear_run_folders()
    with mock.patch("celery.app.task.Task.apply_async"):
        yield


def _api() -> APIClient:
    return token_client(user_with("researcher", "api-researcher"))


def test_the_limit_message_says_how_long_and_how_long_it_may_be() -> None:
    assert text_problem("notes", "x" * NOTE_MAX) is None
    assert text_problem("notes", MEGABYTE) == (
        "notes is 1,000,000 characters long; at most 10,000. Shorten it (link a longer document "
        "instead of pasting it)."
    )


API_FIELDS = [
    pytest.param("notes", id="api-notes-megabyte"),
    pytest.param("provenance", id="api-provenance-megabyte"),
]


@pytest.mark.parametrize("field", API_FIELDS)
def test_api_megabyte_notes_or_provenance_are_a_400(field: str) -> None:
    response = _api().post(
        "/models/api/families/vendor/versions/",
        {"version": "1.0.0", "external": True, field: MEGABYTE},
        format="json",
    )
    assert response.status_code == 400
    assert "no more than 10000 characters" in str(response.json()["error"]["fields"][field])
    assert not ModelFamily.objects.exists() and not ModelVersion.objects.exists()


@pytest.mark.parametrize("case", ["web-provenance-megabyte"])
def test_web_megabyte_provenance_is_a_form_error(case: str) -> None:
    client = Client()
    client.force_login(user_with("researcher", "web-researcher"))
    response = client.post("/models/upload/external/", {
        "family": "vendor", "version": "1.0.0", "provenance": MEGABYTE,
    })  # fmt: skip
    assert response.status_code == 400
    assert "at most 10000 characters (it has 1000000)" in response.content.decode()
    assert not ModelFamily.objects.exists()


@pytest.mark.parametrize(
    ("option", "words"),
    [
        pytest.param("--notes", "notes is 1,000,000 characters long", id="cli-notes-megabyte"),
        pytest.param("--provenance", "provenance is 1,000,000 characters long",
                     id="cli-provenance-megabyte"),
    ],
)  # fmt: skip
def test_cli_megabyte_notes_exit_2_and_write_nothing(option: str, words: str) -> None:
    with pytest.raises(CommandError) as err:
        call_command("register_model", "--external", "--family", "vendor", "--version", "1.0.0",
                     option, MEGABYTE, stdout=StringIO())  # fmt: skip
    assert err.value.returncode == 2 and words in str(err.value)
    assert not ModelFamily.objects.exists()


@pytest.mark.parametrize("case", ["cli-set-description-megabyte"])
def test_cli_megabyte_set_description_exits_1(tmp_path: Path, case: str) -> None:
    err = StringIO()
    with pytest.raises(CommandError) as exc:
        call_command("import_dataset", str(make_set(tmp_path / "s", 2)), "--name", "s",
                     "--description", MEGABYTE, stdout=StringIO(), stderr=err)  # fmt: skip
    assert exc.value.returncode == 1
    assert "description is 1,000,000 characters long" in err.getvalue()
    assert not Dataset.objects.exists() and not Item.objects.exists()


@pytest.mark.parametrize("case", ["api-alias-reason-megabyte"])
def test_api_megabyte_alias_reason_is_a_400(case: str) -> None:
    v = VersionFactory(version="1.0.0")
    response = _api().post(
        f"/models/api/families/{v.family.name}/aliases/beta/",
        {"version": "1.0.0", "reason": MEGABYTE},
        format="json",
    )
    assert response.status_code == 400
    assert "no more than 5000 characters" in str(response.json())
    assert not Alias.objects.exists() and not AliasMove.objects.exists()


@pytest.mark.parametrize("case", ["api-import-provenance-megabyte"])
def test_api_megabyte_import_provenance_is_a_400(tmp_path: Path, case: str) -> None:
    dv = tiny_set(tmp_path, n=3, empty=0)
    version = version_row("fake", "1.0.0", fmt="torch_export", spec=tiny_spec())
    response = _api().post(reverse("evals:api-run-import"), {
        "model": version.ref, "dataset": dv.spec, "provenance": MEGABYTE,
        "file": SimpleUploadedFile("p.zip", zip_folder(write_predictions(dv, tmp_path / "p"))),
    }, format="multipart")  # fmt: skip
    assert response.status_code == 400
    assert "no more than 10000 characters" in response.content.decode()
    nothing_created()
    assert list((tmp_path / "scratch").glob("*")) == []


# --- CSV ---------------------------------------------------------------------------------------

HIDDEN = [
    pytest.param(" =1+1", id="csv-space-then-equals"),
    pytest.param("\u3000=1+1", id="csv-ideographic-space-then-equals"),
    pytest.param("＝1+1", id="csv-fullwidth-equals"),
    pytest.param("＋1", id="csv-fullwidth-plus"),
    pytest.param("－1", id="csv-fullwidth-minus"),
    pytest.param("＠SUM(A1)", id="csv-fullwidth-at"),
    pytest.param("﹦1", id="csv-small-equals"),
]


def _runs_as_formula(cell: str) -> bool:
    """What a spreadsheet that trims and folds compatibility forms would run."""
    import unicodedata

    rest = unicodedata.normalize("NFKC", cell).lstrip()
    return cell.startswith(("\t", "\r")) or rest[:1] in ("=", "+", "-", "@")


@pytest.mark.parametrize("value", HIDDEN)
def test_cells_hiding_a_formula_are_neutralised_in_a_csv_round_trip(value: str) -> None:
    buf = io.StringIO()
    csvsafe.Writer(buf).writerow([value, "plain", -1.5])
    (row,) = list(csv.reader(io.StringIO(buf.getvalue())))
    assert row == ["'" + value, "plain", "-1.5"]
    assert not _runs_as_formula(row[0]) and _runs_as_formula(value)


def test_the_run_csv_neutralises_a_stem_hiding_a_formula(tmp_path: Path) -> None:
    world = build_world(tmp_path, n=2, runs=1, annotators=0)
    run = EvalRun.objects.get(pk=world.runs[0].pk)
    item = Item.objects.filter(version=world.version).order_by("pk").first()
    Item.objects.filter(pk=item.pk).update(stem=" =HYPERLINK(x)")
    client = Client()
    client.force_login(world.researcher)
    body = client.get(reverse("evals:csv", args=[run.pk])).content.decode()
    cells = [c for row in csv.reader(io.StringIO(body)) for c in row]
    assert "' =HYPERLINK(x)" in cells
    assert [c for c in cells if isinstance(c, str) and _runs_as_formula(c) and c[:1] != "-"] == []


CASE_IDS = {p.id for p in HIDDEN} | {p.id for p in API_FIELDS} | {
    "web-provenance-megabyte", "cli-notes-megabyte", "cli-provenance-megabyte",
    "cli-set-description-megabyte", "api-alias-reason-megabyte", "api-import-provenance-megabyte",
}  # fmt: skip
