"""Gate settings and campaign sizes: non-finite, oversized and impossible values are refused with
the reason through every door (gates page, Django admin, the service), and nothing changes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from evalsite.releases.errors import ReleaseError
from evalsite.releases.models import GateConfig
from evalsite.releases.services.decisions import gate_config_update
from models.models import ModelFamily
from pipelines.release.gate_settings import gate_settings_problems
from ratings.models import Campaign
from tests.evals.factories import user_with
from tests.ratings.builders import build_world

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]

GOOD = {
    "metric_margins": '{"iou": 0.02, "mae": 0.005}', "improvement_margin": "0.01",
    "fairness_margin": "0.03", "min_group_size": "15", "latency_budget_ms": "35",
    "min_win_rate": "0.5", "min_votes": "10", "alpha": "0.025",
}  # fmt: skip

# (catalogue id or None, field, value sent, what the answer must say)
BAD: list[tuple[str | None, str, str, str]] = [
    ("gate-margin-infinity", "metric_margins", '{"iou": Infinity}',
     "Infinity is not valid JSON; numbers must be finite"),
    ("gate-margin-overflow", "metric_margins", '{"iou": 1e999}', "overflows a number"),
    (None, "metric_margins", '{"iou": NaN}', "NaN is not valid JSON"),
    (None, "metric_margins", '{"iou": -0.1}', "metric_margins.iou: expected a number from 0.0"),
    (None, "metric_margins", '{"iou": "0.1"}', "metric_margins.iou: expected a number, got"),
    (None, "metric_margins", "[" * 100_000, "at most 10000 are accepted"),
    (None, "metric_margins", "[" * 5 + "]" * 5, "nested deeper than 2 levels"),
    ("gate-min-win-rate-impossible", "min_win_rate", "5", "min_win_rate 5.0 can never be met"),
    (None, "min_win_rate", "1", "min_win_rate 1.0 can never be met"),
    (None, "min_win_rate", "Infinity", "Enter a finite number"),
    (None, "latency_budget_ms", "0", "latency_budget_ms 0.0 can never be met"),
    (None, "latency_budget_ms", "1e999", "Enter a finite number"),
    (None, "alpha", "0.0001", "alpha 0.0001 can never be met: with 1000 bootstrap rounds"),
    (None, "alpha", "0.7", "alpha must be between 0 and 0.5"),
    (None, "min_votes", "10" * 20, "Ensure this value is less than or equal to"),
    (None, "min_votes", "١٢", "Enter a whole number (digits 0-9)"),
    (None, "min_group_size", "1", "min_group_size: expected a number from 2 to 1000000"),
    (None, "fairness_margin", "2", "fairness_margin: expected a number from 0.0 to 1.0"),
]  # fmt: skip


@pytest.fixture
def family(tmp_path: Path, settings: Any) -> ModelFamily:
    settings.MEDIA_ROOT = tmp_path / "media"
    world = build_world(tmp_path, n=2, runs=1, annotators=0)
    return world.runs[0].model_version.family


def _page(user: User) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


@pytest.mark.parametrize(("case", "field", "value", "says"), BAD,
                         ids=[c or f"{f}={v[:12]}" for c, f, v, _ in BAD])  # fmt: skip
def test_the_gates_page_refuses_with_the_reason_and_changes_nothing(
    family: ModelFamily, case: str | None, field: str, value: str, says: str
) -> None:
    client = _page(user_with("release_manager", "mgr"))
    assert client.post("/releases/gates/", {"family": family.name, **GOOD}).status_code == 302
    before = GateConfig.objects.values().get(family=family)
    response = client.post("/releases/gates/", {"family": family.name, **GOOD, field: value})
    assert response.status_code == 400, response.content[:300]
    assert says in response.content.decode().replace("&#x27;", "'"), says
    assert GateConfig.objects.values().get(family=family) == before


def test_the_admin_refuses_the_same_settings(family: ModelFamily) -> None:
    admin = User.objects.create_superuser("root", password="pw-root")
    client = _page(admin)
    body = {"family": family.pk, **GOOD, "min_win_rate": "5"}
    response = client.post("/admin/releases/gateconfig/add/", body)
    assert response.status_code == 200 and "min_win_rate 5.0 can never be met" in (
        response.content.decode()
    )
    assert not GateConfig.objects.exists()
    ok = client.post("/admin/releases/gateconfig/add/", {**body, "min_win_rate": "0.5"})
    assert ok.status_code == 302 and GateConfig.objects.get().min_win_rate == 0.5


def test_the_service_lists_every_problem(family: ModelFamily) -> None:
    manager = user_with("release_manager", "mgr")
    with pytest.raises(ReleaseError) as err:
        gate_config_update(family=family, user=manager, metric_margins={"iou": float("inf")},
                           min_win_rate=5.0, latency_budget_ms=0.0, alpha=float("nan"))  # fmt: skip
    text = str(err.value)
    for part in ("metric_margins.iou: expected a finite number", "min_win_rate 5.0 can never",
                 "latency_budget_ms 0.0 can never", "alpha: expected a finite number"):  # fmt: skip
        assert part in text, part
    assert not GateConfig.objects.exists()
    assert gate_settings_problems({"min_win_rate": None, "latency_budget_ms": None}) == []
    assert gate_settings_problems({"min_win_rate": 0.0, "alpha": 0.001}) == []


def test_a_margin_is_bounded_by_its_metric_range() -> None:
    """A share (IoU) moves at most 1; the matting errors grow with the image, so a margin of
    1.5 on the gradient error is a real policy while one of 1.5 on IoU could never test."""
    assert gate_settings_problems({"metric_margins": {"grad": 1.5, "sad": 40.0}}) == []
    [iou] = gate_settings_problems({"metric_margins": {"iou": 1.5}})
    assert "metric_margins.iou" in iou and "from 0 to 1" in iou
    [grad] = gate_settings_problems({"metric_margins": {"grad": 1e9}})
    assert "metric_margins.grad" in grad
    [nan] = gate_settings_problems({"metric_margins": {"conn": float("nan")}})
    assert "metric_margins.conn" in nan


@pytest.mark.parametrize(
    "value",
    ["1" + "0" * 30, "1000001", "١٠", "1e3", "-5"],
    ids=["campaign-items-per-pair-huge", "over-max", "arabic", "exp", "neg"],
)
def test_campaign_creation_refuses_an_out_of_range_items_per_pair(
    tmp_path: Path, settings: Any, value: str
) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    world = build_world(tmp_path, n=2, runs=2, annotators=0)
    client = _page(world.researcher)
    body = {
        "name": "huge", "dataset_version": world.version.pk,
        "runs": [r.pk for r in world.runs], "mode": "pairwise", "overlap": 3,
        "items_per_pair": value, "disagreement_share": "0.5", "gold_ratio": "0.1",
    }  # fmt: skip
    response = client.post("/rate/campaigns/new/", body)
    assert response.status_code == 400
    text = response.content.decode()
    assert "Enter a whole number" in text or "Ensure this value is" in text, text[:2000]
    assert not Campaign.objects.exists()
    assert client.post("/rate/campaigns/new/", {**body, "items_per_pair": "5"}).status_code == 302


CASE_IDS = {
    "gate-margin-infinity",
    "gate-margin-overflow",
    "gate-min-win-rate-impossible",
    "campaign-items-per-pair-huge",
}
