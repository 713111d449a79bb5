"""The shipped demo: on `pascal-s-demo` (30 photos of PASCAL-S 401-500, the split the demo models
were selected and tuned on) the run page and a release report name biased evidence for 1.2.0,
read from the real spec sidecars and the real set manifest."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from evalsite.datasets import demo as sets_demo
from evalsite.datasets.models import DatasetVersion
from evalsite.evals.selectors import biased_evidence
from evalsite.releases.services.reports import release_report_build, release_report_create
from pipelines.hashing import sha256_file
from pipelines.spec import validate_spec
from pipelines.spec.declared import declared_data
from tests.evals.factories import user_with, version_row
from tests.releases.builders import _run

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]

MODELS = Path(settings.BASE_DIR) / "fixtures" / "models"


def shipped(version: str):
    spec = json.loads((MODELS / f"subject-lift-{version}.pt2.spec.json").read_text())
    validate_spec(spec)  # the sidecar passes the registry's validation as shipped
    return version_row("subject-lift", version, fmt="torch_export", spec=spec)


@pytest.fixture
def demo_world():
    sets_demo.setup(lambda _line: None)
    real = DatasetVersion.objects.get(dataset__name="pascal-s-demo")
    people = DatasetVersion.objects.get(dataset__name="synthetic-people")
    items = list(real.items.order_by("stem"))
    base_mv, cand_mv = shipped("1.1.0"), shipped("1.2.0")
    rng = np.random.default_rng(0)
    base_iou = rng.uniform(0.4, 0.8, len(items))
    baseline = _run(base_mv, real, base_iou, items, age=20, p99=40.0)
    candidate = _run(cand_mv, real, base_iou + 0.065, items, age=10, p99=30.0)
    return real, people, baseline, candidate


@pytest.mark.shared_data
def test_the_declared_split_is_pascal_s_401_to_500_and_the_test_set_stays_clean(shared_data):
    val = {sha256_file(shared_data / "pascal-s" / "images" / f"{n}.jpg") for n in range(401, 501)}
    test_set = {sha256_file(p) for p in (shared_data / "pascal-s-test" / "images").iterdir()}
    assert len(test_set) == 100
    for version in ("1.0.0", "1.1.0", "1.2.0"):
        spec = json.loads((MODELS / f"subject-lift-{version}.pt2.spec.json").read_text())
        declared = declared_data(spec)
        assert declared["selected"] == val, version
        assert declared["tuned"] == (val if version == "1.2.0" else frozenset()), version
        assert not set().union(*declared.values()) & test_set, "pascal-s-test must stay unbiased"
        card = (MODELS / spec["training"]["card"]).read_text()
        assert "`selected_image_sha256`" in card
        assert ("`tuned_image_sha256`" in card) == (version == "1.2.0")


def test_pascal_s_demo_shows_biased_evidence_for_1_2_0_on_its_run_page(demo_world):
    real, people, _baseline, candidate = demo_world
    got = biased_evidence(versions=[candidate.model_version], dataset_version=real)
    assert [(o.role, o.version, o.items, o.total) for o in got] == [
        ("tuned", "subject-lift:1.2.0", 30, 30),
        ("selected", "subject-lift:1.2.0", 30, 30),
    ]
    assert biased_evidence(versions=[candidate.model_version], dataset_version=people) == []
    client = Client()
    client.force_login(user_with("researcher"))
    html = client.get(candidate.get_absolute_url()).content.decode()
    assert (
        "30 of 30 items were used to select subject-lift 1.2.0 (selected); numbers on this set "
        "favour it" in html
    )
    assert "30 of 30 items were used to tune subject-lift 1.2.0 (tuned)" in html


def test_a_report_on_pascal_s_demo_names_biased_evidence_for_1_2_0(demo_world):
    real, _people, baseline, candidate = demo_world
    report = release_report_create(
        candidate=candidate.model_version,
        baseline=baseline.model_version,
        dataset_versions=[real],
        enqueue=False,
    )
    p = release_report_build(report_id=report.pk).payload
    named = {(e["version"], e["role"]) for e in p["biased_evidence"]}
    assert {("subject-lift:1.2.0", "selected"), ("subject-lift:1.2.0", "tuned")} <= named
    assert ("subject-lift:1.1.0", "selected") in named  # its checkpoint was chosen there too
    iou = {g["name"]: g for g in p["gates"]}["IoU non-inferiority"]
    assert iou["status"] != "pass" and iou["text"].startswith("biased evidence: ")
    assert p["verdict"] != "pass"
    client = Client()
    client.force_login(user_with("researcher"))
    page = client.get(reverse("releases:report", args=[report.pk])).content.decode()
    assert "30 of 30 items were used to select subject-lift 1.2.0 (selected)" in page
