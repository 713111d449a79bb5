"""One definition per metric, shown the same everywhere, on every run the demo makes.

The demo (`make demo`) evaluates four versions of subject-lift — 1.0.0 (production), 1.1.0, 1.2.0
(candidate) and the builtin GrabCut baseline 0.0.1 — on three sets: pascal-s-test, pascal-s-demo
and synthetic-people. Here every one of those twelve (version, set) runs goes through the real
sandboxed runner on a small subset of its set (8 photos of each PASCAL-S set, a no-subject photo
among them where the set has one; 43 items of synthetic-people with its person attributes); the
leaderboard refresh, the release reports, the compare intervals and the fairness reports are then
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.test import Client
from django.urls import reverse

from evalsite.datasets.importing import dataset_import
from evalsite.datasets.models import DatasetVersion, ItemAttribute
from evalsite.evals.models import EvalRun, RunStatus
from evalsite.evals.services import runner as runners
from evalsite.evals.services.comparisons import run_comparison_compute, run_comparison_request
from evalsite.evals.services.runs import eval_run_start
from evalsite.fairness.services import fairness_report_compute
from evalsite.releases.models import ReleaseReport
from evalsite.releases.services.leaderboard import leaderboard_refresh
from evalsite.releases.services.reports import release_report_create, release_report_run_now
from models.models import CANDIDATE, PRODUCTION, Alias, ModelVersion
from pipelines.metrics.registry import (
    BY_NAME,
    METRICS,
    fairness_metrics,
    leaderboard_metrics,
    run_metrics,
    stored_metrics,
)
from pipelines.runners.builtin import builtin_spec
from tests.evals.factories import register_ready, user_with
from tests.inline import run_job_inline
from tests.releases.builders import build_release_world
from tests.releases.consistency_pages import (
    get,
    leaderboard_cells,
    leaderboard_headers,
    metric_rows,
    per_image_mean,
    shown,
    strip,
    unmarked,
    visible_text,
)

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "fixtures" / "models"
SETS = ROOT / "fixtures" / "sets"
PEOPLE = "synthetic-people"
#: The demo's versions (models/demo.py): three shipped models and the builtin baseline.
SHIPPED = ("1.0.0", "1.1.0", "1.2.0")
BASELINE = "0.0.1"
VERSIONS = (BASELINE, *SHIPPED)
BASE, CAND = "1.0.0", "1.2.0"  # production, candidate
#: Raw keys that must never be visible text: every registry name with an underscore, and the
#: lower-case keys whose labels are spelled differently (IoU, MAE).
RAW_KEYS = sorted({m.name for m in METRICS if "_" in m.name} | {"iou", "mae"})

Rows = list[dict[str, str]]


# --- the world ----------------------------------------------------------------------------------


def _people(rows: Rows) -> Rows:
    """synthetic-people's composites and negatives plus every 4th drawn person (43 items): every
    kind of item, at a third of the model time."""
    people = [r for r in rows if r["kind"] == "person"]
    return [r for r in rows if r["kind"] != "person"] + people[::4]


def _photos(rows: Rows, n: int = 8) -> Rows:
    """The first no-subject photo (where the set has one) and the first subject photos, `n` in all:
    GrabCut takes most of a second per photo."""
    empty = [r for r in rows if float(r["fg_fraction"]) == 0][:1]
    return empty + [r for r in rows if r not in empty][: n - len(empty)]


SUBSETS: dict[str, Callable[[Rows], Rows]] = {
    "pascal-s-test": _photos, "pascal-s-demo": _photos, PEOPLE: _people,
}  # fmt: skip


def _import_subset(name: str, pick: Callable[[Rows], Rows], folder: Path) -> DatasetVersion:
    with open(SETS / name / "manifest.csv", newline="") as fh:
        reader = csv.DictReader(fh)
        fields, keep = reader.fieldnames, pick(list(reader))
    for r in keep:
        for column in ("image", "mask"):
            (folder / r[column]).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(SETS / name / r[column], folder / r[column])
    assert fields is not None
    with open(folder / "manifest.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(keep)
    return dataset_import(path=folder, name=name, manifest=folder / "manifest.csv").version


def _register(version: str) -> ModelVersion:
    if version == BASELINE:  # as models/demo.py registers it
        return register_ready("subject-lift", version, file=None,
                              spec=builtin_spec("saliency-grabcut"))  # fmt: skip
    path = MODELS / f"subject-lift-{version}.pt2"
    spec = json.loads(Path(f"{path}.spec.json").read_text())
    return register_ready("subject-lift", version, file=path, spec=spec)


def _execute(run: EvalRun, capture: Any) -> EvalRun:
    """Every chunk in this process through the real sandboxed session, as a worker would."""
    return run_job_inline(run, capture)


def _report(cand: ModelVersion, base: ModelVersion, sets: list[DatasetVersion]) -> ReleaseReport:
    return release_report_run_now(report=release_report_create(
        candidate=cand, baseline=base, dataset_versions=sets, enqueue=False))  # fmt: skip


@pytest.fixture
def world(django_capture_on_commit_callbacks: Any, tmp_path: Path) -> dict[str, Any]:
    runners.session_cache_clear()
    sets = {name: _import_subset(name, pick, tmp_path / name) for name, pick in SUBSETS.items()}
    versions = {v: _register(v) for v in VERSIONS}
    family = versions[BASE].family
    Alias.objects.create(family=family, name=PRODUCTION, version=versions[BASE])
    Alias.objects.create(family=family, name=CANDIDATE, version=versions[CAND])
    runs = {
        (v, s): _execute(eval_run_start(model_version=mv, dataset_version=dv),
                         django_capture_on_commit_callbacks)
        for s, dv in sets.items() for v, mv in versions.items()
    }  # fmt: skip
    runners.session_cache_clear()
    for (_, s), run in runs.items():
        assert run.status == RunStatus.DONE, run.error
        assert run.summary["counts"]["failed"] == 0
        if s == PEOPLE:
            fairness_report_compute(run=run)
    leaderboard_refresh(force=True)
    cand, base = versions[CAND], versions[BASE]
    reports = {s: _report(cand, base, [dv]) for s, dv in sets.items()}
    # The demo's decision report: quality on pascal-s-test, fairness on synthetic-people.
    suite = _report(cand, base, [sets["pascal-s-test"], sets[PEOPLE]])
    client = Client()
    client.force_login(user_with("researcher"))
    return {"sets": sets, "runs": runs, "reports": reports, "suite": suite, "client": client}


# --- the checks ---------------------------------------------------------------------------------


def _check_run(client: Client, run: EvalRun, labels: dict[str, str]) -> dict[str, str]:
    """The run page's numbers, checked against the run's JSON and CSV exports; labels are the
    registry's and the same on every run page."""
    where = f"{run.model_version.version} on {run.dataset_version.dataset.name}"
    # Run page: every run metric, with the registry's label and digits.
    rows = metric_rows(get(client, reverse("evals:detail", args=[run.pk])))
    assert set(rows) == {m.name for m in run_metrics()}, where
    values = {}
    for name, cells in rows.items():
        label = unmarked(cells[0])
        assert label == BY_NAME[name].label
        assert labels.setdefault(name, label) == label
        values[name] = cells[1]
        assert cells[1] == shown(name, run.summary["metrics"][name]), (where, name)
    # The two max F computations are two numbers under two labels.
    assert values["image_max_f"] != values["max_f"], where
    assert labels["max_f"] == "max F (set curve)"
    assert labels["image_max_f"] == "mean per-image max F"
    assert float(values["image_max_f"]) >= float(values["max_f"]), where

    # Run JSON export: the summary and the per-image rows it is the mean of.
    doc = json.loads(get(client, reverse("evals:json", args=[run.pk])))
    for name in values:
        assert shown(name, doc["summary"]["metrics"][name]) == values[name], (where, name)
    # Run CSV export: the same per-image values.
    csv_rows = list(csv.DictReader(io.StringIO(get(client, reverse("evals:csv", args=[run.pk])))))
    assert len(csv_rows) == run.summary["counts"]["ok"], where
    for m in image_metrics():
        assert m.column is not None
        for per_image in (doc["per_image"], csv_rows):
            assert shown(m.name, per_image_mean(per_image, m.column)) == values[m.name], \
                (where, m.name)  # fmt: skip
    return values


def image_metrics() -> list[Any]:
    """Stored metrics every scored image has (instance metrics need instance masks)."""
    return [m for m in stored_metrics() if not m.instances]


def _check_leaderboard(client: Client, dv: DatasetVersion, runs: dict[str, EvalRun],
                       values: dict[int, dict[str, str]]) -> None:  # fmt: skip
    """Every version's row: per-image means (with intervals) equal to its run page's numbers."""
    page = get(client, reverse("releases:leaderboard"), set=dv.pk)
    headers = [h.removesuffix(" ↕") for h in leaderboard_headers(page)]
    for m in leaderboard_metrics():
        assert m.label in headers
    for version, run in runs.items():
        cells = leaderboard_cells(page, version)
        assert set(cells) == {m.name for m in leaderboard_metrics()}
        for name, text in cells.items():
            assert text == values[run.pk][name], (dv.dataset.name, version, name)


def _check_compare(client: Client, base: EvalRun, cand: EvalRun, n_items: int,
                   values: dict[int, dict[str, str]], labels: dict[str, str]) -> None:  # fmt: skip
    # Compare page: A and B columns are the run pages' numbers, under the same labels.
    rows = metric_rows(get(client, reverse("evals:compare"), a=base.pk, b=cand.pk))
    assert set(rows) == {m.name for m in run_metrics()}
    for name, cells in rows.items():
        assert cells[0] == labels[name]
        assert (cells[1], cells[2]) == (values[base.pk][name], values[cand.pk][name])
    # Paired intervals (computed by their job): A and B are the same per-image means.
    comparison = run_comparison_request(baseline=base, candidate=cand)
    run_comparison_compute(comparison_id=comparison.pk)
    rows = metric_rows(get(client, reverse("evals:compare"), a=base.pk, b=cand.pk),
                       "intervals-table")  # fmt: skip
    assert set(rows) == {m.name for m in image_metrics()}
    for name, cells in rows.items():
        assert unmarked(cells[0]) == labels[name]
        assert cells[1] == str(n_items)
        assert (cells[2], cells[3]) == (values[base.pk][name], values[cand.pk][name])


def _check_report(client: Client, report: ReleaseReport, base: EvalRun, cand: EvalRun,
                  n_items: int, values: dict[int, dict[str, str]],
                  labels: dict[str, str]) -> None:  # fmt: skip
    """Page, offline HTML, JSON and CSV; paired means over all (every item scored)."""
    payload = report.payload
    assert payload["items"] == {"paired": n_items, "dropped": 0}
    # instance metrics are paired only on sets with instance masks (none of these)
    assert set(payload["metrics"]) == {m.name for m in image_metrics()}
    b, c = values[base.pk], values[cand.pk]
    for view in ("releases:report", "releases:report_html"):
        rows = metric_rows(get(client, reverse(view, args=[report.pk])), "metrics")
        assert set(rows) == set(payload["metrics"])
        for name, cells in rows.items():
            assert unmarked(cells[0]) == labels[name]
            assert (cells[1], cells[2]) == (b[name], c[name]), (view, name)
    doc = json.loads(get(client, reverse("releases:report_json", args=[report.pk])))["report"]
    for name, m in doc["metrics"].items():
        assert (shown(name, m["baseline"]), shown(name, m["candidate"])) == (b[name], c[name])
    report_csv = csv.DictReader(io.StringIO(get(client, reverse("releases:report_csv",
                                                                args=[report.pk]))))  # fmt: skip
    metric_csv = [r for r in report_csv if r["section"] == "metric"]
    assert {r["name"] for r in metric_csv} == set(payload["metrics"])
    for r in metric_csv:
        assert r["label"] == labels[r["name"]]
        assert shown(r["name"], float(r["baseline"])) == b[r["name"]]
        assert shown(r["name"], float(r["candidate"])) == c[r["name"]]


def _check_suite(client: Client, suite: ReleaseReport, reports: dict[str, ReleaseReport]) -> None:
    """The suite report reads each of its sets as that set's own report does."""
    page = get(client, reverse("releases:report", args=[suite.pk]))
    for part in suite.payload["sets"]:
        name = part["dataset"].split("@")[0].split(":")[0]
        alone = reports[name].payload
        assert part["dataset"] == alone["dataset"]
        assert part["items"] == alone["items"]
        for metric, m in part["metrics"].items():
            for key in ("baseline", "candidate", "delta"):
                assert m[key] == pytest.approx(alone["metrics"][metric][key], abs=1e-12), \
                    (name, metric, key)  # fmt: skip
        row = re.search(rf'<tr data-set="{re.escape(part["dataset"])}">(.*?)</tr>', page, re.S)
        assert row, part["dataset"]
        cells = [strip(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)]
        own = metric_rows(get(client, reverse("releases:report", args=[reports[name].pk])),
                          "metrics")  # fmt: skip
        assert cells[2] == str(alone["items"]["paired"])
        assert cells[3] == own["iou"][3], name  # IoU delta, as its own report shows it


def _check_fairness(client: Client, run: EvalRun, dv: DatasetVersion) -> None:
    """The same per-image values, averaged over the images that show a person."""
    people = set(
        ItemAttribute.objects.filter(item__version=dv)
        .exclude(skin_tone="not_applicable", perceived_gender="not_applicable")
        .exclude(item__size_bucket="none")
        .values_list("item__stem", flat=True)
    )
    assert 0 < len(people) < dv.items.count()  # negatives have no person
    fdoc = json.loads(get(client, reverse("fairness:api-run", args=[run.pk])))
    per_image = {r["stem"]: r for r in csv.DictReader(io.StringIO(
        get(client, reverse("evals:csv", args=[run.pk]))))}  # fmt: skip
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
    page = get(client, reverse("fairness:run", args=[run.pk]))
    table = re.search(r'<table class="data" id="fairness-table">.*?</table>', page, re.S)
    assert table
    heads = [strip(h) for h in re.findall(r"<th[^>]*>(.*?)</th>", table.group(0), re.S)]
    names = list(fdoc["overall"])
    assert heads[3:] == [BY_NAME[n].label for n in names]
    first = re.search(r"<tbody><tr[^>]*>(.*?)</tr>", table.group(0), re.S)
    assert first
    cells = [strip(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", first.group(1), re.S)]
    group = fdoc["groups"][0]
    for k, name in enumerate(names):
        assert cells[3 + k].split(" ")[0] == shown(name, group["metrics"][name]["mean"])


# --- the tests ----------------------------------------------------------------------------------


def test_every_metric_has_one_value_and_one_label_wherever_it_appears(world: dict[str, Any]):
    client, runs, sets = world["client"], world["runs"], world["sets"]
    assert set(runs) == {(v, s) for v in VERSIONS for s in SUBSETS}  # every run the demo makes
    labels: dict[str, str] = {}
    values = {run.pk: _check_run(client, run, labels) for run in runs.values()}
    for s, dv in sets.items():
        _check_leaderboard(client, dv, {v: runs[v, s] for v in VERSIONS}, values)
        base, cand, n_items = runs[BASE, s], runs[CAND, s], dv.items.count()
        _check_compare(client, base, cand, n_items, values, labels)
        _check_report(client, world["reports"][s], base, cand, n_items, values, labels)
    # The suite report's top level is its quality set's (pascal-s-test) numbers.
    first = "pascal-s-test"
    _check_report(client, world["suite"], runs[BASE, first], runs[CAND, first],
                  sets[first].items.count(), values, labels)  # fmt: skip
    _check_suite(client, world["suite"], world["reports"])
    for v in VERSIONS:
        _check_fairness(client, runs[v, PEOPLE], sets[PEOPLE])


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
        text = visible_text(get(client, url, **params))
        leaked = [k for k in RAW_KEYS if re.search(rf"(?<![\w-]){k}(?![\w-])", text)]
        assert not leaked, f"the {name} page shows raw metric keys {leaked}"
    # Plot axes are titled in words (plotly.js 3 draws only {"text": ...} titles).
    page = get(client, reverse("releases:leaderboard"), set=world["set"].pk)
    blob = re.search(
        r'<script id="leaderboard-plot-data" type="application/json">(.*?)</script>', page, re.S
    )
    assert blob
    figure = json.loads(blob.group(1))
    for axis in ("xaxis", "yaxis"):
        assert figure["layout"][axis]["title"]["text"]
        assert not any(k in figure["layout"][axis]["title"]["text"] for k in RAW_KEYS)
