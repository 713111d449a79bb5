"""CSV formula injection: every CSV the platform writes neutralises cells a spreadsheet would run.

OWASP's rule: a text cell starting with `=`, `+`, `-`, `@`, tab or CR gets a leading `'`.
Numbers written as numbers stay numbers (a negative delta is not a formula).
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from evalsite.datasets.models import Item
from evalsite.evals.models import ItemResult
from pipelines import csvsafe
from pipelines.synth.manifest import MANIFEST_COLUMNS, write_manifest
from ratings.services.assign import assignment_queue, rating_submit
from ratings.services.campaigns import campaign_create
from tests.ratings.builders import build_world

FORMULAS = ("=cmd|' -C calc'!A0", "+1+2", "-2+3", "@SUM(A1:A9)", "\t=1", "\r=1")
STARTS = ("=", "+", "-", "@", "\t", "\r")


def formula_cells(text: str) -> list[str]:
    """Cells a spreadsheet would evaluate."""
    rows = csv.reader(io.StringIO(text))
    return [cell for row in rows for cell in row if cell.startswith(STARTS)]


@pytest.mark.no_services
@pytest.mark.parametrize("value", FORMULAS)
def test_text_cells_that_start_a_formula_get_a_quote(value: str) -> None:
    assert csvsafe.neutralise(value) == "'" + value
    buf = io.StringIO()
    csvsafe.Writer(buf).writerow([value, "plain", -1.5, 3])
    assert formula_cells(buf.getvalue()) == ["-1.5"]  # the number stays a number


@pytest.mark.no_services
def test_numbers_and_harmless_text_are_unchanged() -> None:
    assert [csvsafe.neutralise(v) for v in (-0.25, 7, None, True, "a=b", "x-1", "")] == [
        -0.25, 7, None, True, "a=b", "x-1", ""]  # fmt: skip


@pytest.fixture
def world(db: Any, tmp_path: Path, settings: Any) -> Any:
    settings.MEDIA_ROOT = tmp_path / "media"
    return build_world(tmp_path, n=4, runs=2, annotators=1)


@pytest.mark.django_db
@pytest.mark.no_services
def test_run_results_csv_neutralises_item_names_and_errors(world: Any) -> None:
    run = world.runs[0]
    item = Item.objects.filter(version=world.version).order_by("pk").first()
    Item.objects.filter(pk=item.pk).update(stem=FORMULAS[0])
    ItemResult.objects.filter(run=run, item=item).update(status="failed", error="@HYPERLINK(x)")
    client = Client()
    client.force_login(world.researcher)
    body = client.get(reverse("evals:csv", args=[run.pk])).content.decode()
    assert FORMULAS[0] in body  # the name is there, as text
    assert formula_cells(body) == [], formula_cells(body)
    assert "'" + FORMULAS[0] in body and "'@HYPERLINK(x)" in body


@pytest.mark.django_db
@pytest.mark.no_services
def test_campaign_ratings_csv_neutralises_item_names_and_usernames(world: Any) -> None:
    annotator = world.annotators[0]
    User.objects.filter(pk=annotator.pk).update(username="@SUM(1+1)")
    annotator.refresh_from_db()
    for i, pk in enumerate(Item.objects.filter(version=world.version).values_list("pk", flat=True)):
        Item.objects.filter(pk=pk).update(stem=f"={i}+1")
    campaign = campaign_create(
        name="=evil()", dataset_version=world.version, runs=world.runs, items_per_pair=2,
        open_now=True,
    )  # fmt: skip
    token = assignment_queue(user=annotator).assignments[0].token
    rating_submit(user=annotator, token=token, choice="left", seconds=1.0)
    client = Client()
    client.force_login(world.researcher)
    body = client.get(reverse("ratings:export", args=[campaign.pk, "csv"])).content.decode()
    assert "'@SUM(1+1)" in body and re.search(r",'=\d\+1,", body)
    assert formula_cells(body) == [], formula_cells(body)


@pytest.mark.no_services
def test_synthetic_manifest_csv_goes_through_the_neutraliser(tmp_path: Path) -> None:
    class Rec:
        def row(self) -> dict[str, Any]:
            return {c: ("=2*3" if i == 0 else -1) for i, c in enumerate(MANIFEST_COLUMNS)}

    path = tmp_path / "manifest.csv"
    write_manifest(path, [Rec()])  # type: ignore[list-item]
    text = path.read_text()
    assert formula_cells(text) == ["-1"] * (len(MANIFEST_COLUMNS) - 1)  # numbers stay numbers
    assert "'=2*3" in text
