"""One definition per metric, shown the same everywhere, on real evaluated runs.

Two shipped demo models (subject-lift 1.0.0 = production, 1.2.0 = candidate) run through the real
sandboxed runner on a 43-item subset of synthetic-people (person attributes from its manifest); the
leaderboard refresh, the release report, the compare intervals and the fairness reports are then
computed as their jobs do.
The test reads what people read — run pages, the compare page, the leaderboard, the release report
page, the fairness page and every export (run CSV/JSON, report JSON/CSV/HTML, fairness JSON) — and
checks that a metric has the same value and the same label wherever it appears under its name,
that the set curve's max F and the mean per-image max F are two numbers with two labels, and that
no page a new user reads shows a raw metric key.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.test import Client
from django.urls import reverse

from evalsite.core import jobs
from evalsite.core.models import Chunk
from evalsite.datasets.importing import dataset_import
from evalsite.datasets.models import ItemAttribute
from evalsite.evals.models import EvalRun, RunStatus
from evalsite.evals.services import runner as runners
from evalsite.evals.services.comparisons import run_comparison_compute, run_comparison_request
from evalsite.evals.services.execute import eval_chunk_run
from evalsite.evals.services.runs import eval_run_start
from evalsite.fairness.services import fairness_report_compute
from evalsite.releases.services.leaderboard import leaderboard_refresh
from evalsite.releases.services.reports import release_report_create, release_report_run_now
from models.models import CANDIDATE, PRODUCTION, Alias
from pipelines.metrics.registry import (
    BY_NAME,
    METRICS,
    fairness_metrics,
    leaderboard_metrics,
    run_metrics,
    stored_metrics,
)
from tests.evals.factories import register_ready, user_with
from tests.releases.builders import build_release_world

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "fixtures" / "models"
PEOPLE = ROOT / "fixtures" / "sets" / "synthetic-people"
#: Raw keys that must never be visible text: every registry name with an underscore, and the
#: lower-case keys whose labels are spelled differently (IoU, MAE).
RAW_KEYS = sorted({m.name for m in METRICS if "_" in m.name} | {"iou", "mae"})


# --- reading pages ------------------------------------------------------------------------------


class _Text(HTMLParser):
    """Visible text of a page: no tags, attributes, scripts, styles or JSON blobs."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in ("script", "style"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def visible_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return " ".join(parser.parts)


def strip(fragment: str) -> str:
    return re.sub(r"\s+", " ", visible_text(fragment)).strip()


def metric_rows(html: str, table_id: str | None = None) -> dict[str, list[str]]:
    """`<tr data-metric="name">` rows (inside the table `table_id` when given) -> cell texts."""
    if table_id is not None:
        match = re.search(rf'<table[^>]*id="{table_id}".*?</table>', html, re.S)
        assert match, f"no table #{table_id}"
        html = match.group(0)
    rows = {}
    for name, body in re.findall(r'<tr data-metric="([a-z_]+)"[^>]*>(.*?)</tr>', html, re.S):
        rows[name] = [strip(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", body, re.S)]
    return rows


def leaderboard_cells(html: str, version: str) -> dict[str, str]:
    row = re.search(rf'<tr data-family="subject-lift" data-version="{version}">(.*?)</tr>', html,
                    re.S)  # fmt: skip
    assert row, f"no leaderboard row for {version}"
    return dict(re.findall(r'data-metric="([a-z_]+)"><span class="value">([^<]*)</span>',
                           row.group(1)))  # fmt: skip


def leaderboard_headers(html: str) -> list[str]:
    head = re.search(r'<table[^>]*id="leaderboard".*?</thead>', html, re.S)
    assert head
    return [strip(h) for h in re.findall(r"<th[^>]*>(.*?)</th>", head.group(0), re.S)]


def shown(name: str, value: float | None) -> str:
    return BY_NAME[name].format(value)


def per_image_mean(rows: list[dict[str, Any]], column: str) -> float:
    return float(np.mean([float(r[column]) for r in rows if r["status"] == "ok"]))


# --- the world ----------------------------------------------------------------------------------


def _execute(run: EvalRun, capture: Any) -> EvalRun:
    """Every chunk in this process through the real sandboxed session, as a worker would."""
    for chunk in Chunk.objects.filter(job_id=run.job_id).order_by("index"):
        claimed = jobs.chunk_claim(chunk_id=chunk.pk, worker="inline")
        assert claimed is not None
        result = eval_chunk_run(claimed)
        with capture(execute=True):
            jobs.chunk_complete(claimed, result)
    return EvalRun.objects.get(pk=run.pk)


def _people_subset(folder: Path) -> Path:
    """synthetic-people's composites and negatives plus every 4th drawn person (43 items): every
    kind of item, at a third of the model time."""
    with open(PEOPLE / "manifest.csv", newline="") as fh:
        reader = csv.DictReader(fh)
        fields, rows = reader.fieldnames, list(reader)
    people = [r for r in rows if r["kind"] == "person"]
    keep = [r for r in rows if r["kind"] != "person"] + people[::4]
    for r in keep:
        for column in ("image", "mask"):
            (folder / r[column]).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(PEOPLE / r[column], folder / r[column])
    assert fields is not None
    with open(folder / "manifest.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(keep)
    return folder


@pytest.fixture
def world(django_capture_on_commit_callbacks: Any, tmp_path: Path) -> dict[str, Any]:
    runners.session_cache_clear()
    folder = _people_subset(tmp_path / "synthetic-people")
    version = dataset_import(path=folder, name="synthetic-people",
                             manifest=folder / "manifest.csv").version  # fmt: skip
    versions = {}
    for v in ("1.0.0", "1.2.0"):
        path = MODELS / f"subject-lift-{v}.pt2"
        spec = json.loads(Path(f"{path}.spec.json").read_text())
        versions[v] = register_ready("subject-lift", v, file=path, spec=spec)
    Alias.objects.create(
        family=versions["1.0.0"].family, name=PRODUCTION, version=versions["1.0.0"]
    )
    Alias.objects.create(family=versions["1.2.0"].family, name=CANDIDATE, version=versions["1.2.0"])
    runs = {
        v: _execute(eval_run_start(model_version=mv, dataset_version=version),
                    django_capture_on_commit_callbacks)
        for v, mv in versions.items()
    }  # fmt: skip
    runners.session_cache_clear()
    for run in runs.values():
        assert run.status == RunStatus.DONE, run.error
        assert run.summary["counts"]["failed"] == 0
        fairness_report_compute(run=run)
    leaderboard_refresh(force=True)
    report = release_report_run_now(report=release_report_create(
        candidate=versions["1.2.0"], baseline=versions["1.0.0"], dataset_versions=[version],
        enqueue=False))  # fmt: skip
    client = Client()
    client.force_login(user_with("researcher"))
    return {"set": version, "runs": runs, "report": report, "client": client}


def _get(client: Client, url: str, **params: Any) -> str:
    resp = client.get(url, params)
    assert resp.status_code == 200, (url, resp.status_code)
    return resp.content.decode()


# --- the tests ----------------------------------------------------------------------------------


def test_every_metric_has_one_value_and_one_label_wherever_it_appears(world: dict[str, Any]):
    client, runs, report = world["client"], world["runs"], world["report"]
    base, cand = runs["1.0.0"], runs["1.2.0"]
    values: dict[int, dict[str, str]] = {}
    labels: dict[str, str] = {}

    for run in (base, cand):
        # Run page: every run metric, with the registry's label and digits.
        rows = metric_rows(_get(client, reverse("evals:detail", args=[run.pk])))
        assert set(rows) == {m.name for m in run_metrics()}
        values[run.pk] = {}
        for name, cells in rows.items():
            label = re.sub(r" \(lower is better\)$", "", cells[0])
            assert label == BY_NAME[name].label
            labels[name] = label
            values[run.pk][name] = cells[1]
            assert cells[1] == shown(name, run.summary["metrics"][name])
        # The two max F computations are two numbers under two labels.
        assert values[run.pk]["image_max_f"] != values[run.pk]["max_f"]
        assert labels["max_f"] == "max F (set curve)"
        assert labels["image_max_f"] == "mean per-image max F"
        assert float(values[run.pk]["image_max_f"]) >= float(values[run.pk]["max_f"])

        # Run JSON export: the summary and the per-image rows it is the mean of.
        doc = json.loads(_get(client, reverse("evals:json", args=[run.pk])))
        for name in values[run.pk]:
            assert shown(name, doc["summary"]["metrics"][name]) == values[run.pk][name]
        for m in stored_metrics():
            assert m.column is not None
            assert shown(m.name, per_image_mean(doc["per_image"], m.column)) == \
                values[run.pk][m.name], m.name  # fmt: skip
        # Run CSV export: the same per-image values.
        csv_rows = list(
            csv.DictReader(io.StringIO(_get(client, reverse("evals:csv", args=[run.pk]))))
        )
        assert len(csv_rows) == run.summary["counts"]["ok"]
        for m in stored_metrics():
            assert m.column is not None
            assert shown(m.name, per_image_mean(csv_rows, m.column)) == values[run.pk][m.name]

    # Compare page: A and B columns are the run pages' numbers, under the same labels.
    page = _get(client, reverse("evals:compare"), a=base.pk, b=cand.pk)
    rows = metric_rows(page)
    assert set(rows) == {m.name for m in run_metrics()}
    for name, cells in rows.items():
        assert cells[0] == labels[name]
        assert (cells[1], cells[2]) == (values[base.pk][name], values[cand.pk][name])

    # Compare page's paired intervals (computed by their job): A and B are the same per-image means.
    comparison = run_comparison_request(baseline=base, candidate=cand)
    run_comparison_compute(comparison_id=comparison.pk)
    rows = metric_rows(_get(client, reverse("evals:compare"), a=base.pk, b=cand.pk),
                       "intervals-table")  # fmt: skip
    assert set(rows) == {m.name for m in stored_metrics()}
    for name, cells in rows.items():
        assert re.sub(r" \(lower is better\)$", "", cells[0]) == labels[name]
        assert cells[1] == str(world["set"].items.count())
        assert (cells[2], cells[3]) == (values[base.pk][name], values[cand.pk][name])

    # Leaderboard: per-image means (with intervals) equal to the run pages' numbers.
    page = _get(client, reverse("releases:leaderboard"), set=world["set"].pk)
    headers = [h.removesuffix(" ↕") for h in leaderboard_headers(page)]
    for m in leaderboard_metrics():
        assert m.label in headers
    for version, run in (("1.0.0", base), ("1.2.0", cand)):
        cells = leaderboard_cells(page, version)
        assert set(cells) == {m.name for m in leaderboard_metrics()}
        for name, text in cells.items():
            assert text == values[run.pk][name], (version, name)

    # Release report: page, offline HTML, JSON and CSV; paired means over all (every item scored).
    payload = report.payload
    n_items = world["set"].items.count()
    assert payload["items"] == {"paired": n_items, "dropped": 0}
    assert set(payload["metrics"]) == {m.name for m in stored_metrics()}
    html_page = _get(client, reverse("releases:report", args=[report.pk]))
    html_export = _get(client, reverse("releases:report_html", args=[report.pk]))
    for html in (html_page, html_export):
        rows = metric_rows(html, "metrics")
        assert set(rows) == set(payload["metrics"])
        for name, cells in rows.items():
            assert re.sub(r" \(lower is better\)$", "", cells[0]) == labels[name]
            assert (cells[1], cells[2]) == (values[base.pk][name], values[cand.pk][name])
    doc = json.loads(_get(client, reverse("releases:report_json", args=[report.pk])))["report"]
    for name, m in doc["metrics"].items():
        assert shown(name, m["baseline"]) == values[base.pk][name]
        assert shown(name, m["candidate"]) == values[cand.pk][name]
    report_csv = csv.DictReader(io.StringIO(_get(client, reverse("releases:report_csv",
                                                                 args=[report.pk]))))  # fmt: skip
    metric_csv = [r for r in report_csv if r["section"] == "metric"]
    assert {r["name"] for r in metric_csv} == set(payload["metrics"])
    for r in metric_csv:
        assert r["label"] == labels[r["name"]]
        assert shown(r["name"], float(r["baseline"])) == values[base.pk][r["name"]]
        assert shown(r["name"], float(r["candidate"])) == values[cand.pk][r["name"]]

    # Fairness report: the same per-image values, averaged over the images that show a person.
    people = set(
        ItemAttribute.objects.filter(item__version=world["set"])
        .exclude(skin_tone="not_applicable", perceived_gender="not_applicable")
        .exclude(item__size_bucket="none")
        .values_list("item__stem", flat=True)
    )
    assert 0 < len(people) < n_items  # negatives have no person
    for run in (base, cand):
        fdoc = json.loads(_get(client, reverse("fairness:api-run", args=[run.pk])))
        per_image = {r["stem"]: r for r in csv.DictReader(io.StringIO(
            _get(client, reverse("evals:csv", args=[run.pk]))))}  # fmt: skip
        for m in fairness_metrics():
            if m.column is None:
                continue
            expected = np.mean([float(per_image[s][m.column]) for s in people])
            assert fdoc["overall"][m.name] == pytest.approx(expected, abs=1e-6), m.name  # 6 digits
            # Group means on the page are the JSON's, with the registry's digits and labels.
            tone = [g for g in fdoc["groups"] if g["attribute"] == "skin_tone"]
            assert sum(g["n"] for g in tone) == len(people)
            weighted = sum(g["n"] * g["metrics"][m.name]["mean"] for g in tone) / len(people)
            assert weighted == pytest.approx(expected, abs=1e-6)
        page = _get(client, reverse("fairness:run", args=[run.pk]))
        table = re.search(r'<table class="data" id="fairness-table">.*?</table>', page, re.S)
        assert table
        heads = [strip(h) for h in re.findall(r"<th[^>]*>(.*?)</th>", table.group(0), re.S)]
        names = [m for m in fdoc["overall"]]
        assert heads[3:] == [BY_NAME[n].label for n in names]
        first = re.search(r"<tbody><tr[^>]*>(.*?)</tr>", table.group(0), re.S)
        assert first
        cells = [strip(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", first.group(1), re.S)]
        group = fdoc["groups"][0]
        for k, name in enumerate(names):
            assert cells[3 + k].split(" ")[0] == shown(name, group["metrics"][name]["mean"])


def test_no_page_a_new_user_reads_shows_a_raw_metric_key():
    # Rows-built runs (no model): the pages render the same templates, in a second.
    release = build_release_world(loss=-0.2)
    base, cand = release.baseline, release.candidate
    for run in (base, cand):
        fairness_report_compute(run=run)
    leaderboard_refresh(force=True)
    report = release_report_run_now(report=release_report_create(
        candidate=cand.model_version, baseline=base.model_version,
        dataset_versions=[release.version], enqueue=False))  # fmt: skip
    client = Client()
    client.force_login(user_with("researcher"))
    world = {"set": release.version}
    item = release.items[0]
    pages = {
        "leaderboard": (reverse("releases:leaderboard"), {"set": world["set"].pk}),
        "runs": (reverse("evals:list"), {}),
        "run": (reverse("evals:detail", args=[cand.pk]), {}),
        "images": (reverse("evals:items", args=[cand.pk]), {"sort": "max_f"}),
        "image": (reverse("evals:item", args=[cand.pk, item.pk]), {}),
        "compare": (reverse("evals:compare"), {"a": base.pk, "b": cand.pk, "metric": "s_measure"}),
        "report": (reverse("releases:report", args=[report.pk]), {}),
        "report export": (reverse("releases:report_html", args=[report.pk]), {}),
        "fairness": (reverse("fairness:run", args=[cand.pk]), {}),
    }
    for name, (url, params) in pages.items():
        text = visible_text(_get(client, url, **params))
        leaked = [k for k in RAW_KEYS if re.search(rf"(?<![\w-]){k}(?![\w-])", text)]
        assert not leaked, f"the {name} page shows raw metric keys {leaked}"
    # Plot axes are titled in words (plotly.js 3 draws only {"text": ...} titles).
    page = _get(client, reverse("releases:leaderboard"), set=world["set"].pk)
    blob = re.search(
        r'<script id="leaderboard-plot-data" type="application/json">(.*?)</script>', page, re.S
    )
    assert blob
    figure = json.loads(blob.group(1))
    for axis in ("xaxis", "yaxis"):
        assert figure["layout"][axis]["title"]["text"]
        assert not any(k in figure["layout"][axis]["title"]["text"] for k in RAW_KEYS)
