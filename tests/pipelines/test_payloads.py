"""Stored-document contracts read without a database: versions, missing keys, legacy rows."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest

from pipelines.fairness import FairnessSettings, display_group, fairness_report
from pipelines.payloads import PayloadError
from pipelines.payloads.campaign import CampaignPayload
from pipelines.payloads.fairness import FairnessPayload
from pipelines.payloads.release_report import ReleaseReportPayload
from pipelines.payloads.run_summary import RunSummary
from pipelines.stats.campaign import PAIRWISE_VALUES, TaskTable
from pipelines.stats.campaign_report import campaign_statistics

pytestmark = pytest.mark.no_services

NAMES = ["m 1.0 · run #11", "m 1.1 · run #12"]


def _payload(votes: list[tuple[int, int]]) -> dict[str, Any]:
    """A payload built the way the ratings app builds one, from (task, outcome) votes."""
    tasks = np.arange(len(votes), dtype=np.int64)
    table = TaskTable.from_counts(
        task=tasks, item=tasks, run_a=np.zeros(len(votes), np.int64),
        run_b=np.ones(len(votes), np.int64), stratum=np.full(len(votes), "control"),
        vote_task=[t for t, _ in votes], vote_value=[o for _, o in votes],
        vote_count=[1] * len(votes), values=PAIRWISE_VALUES,
    )  # fmt: skip
    stats = campaign_statistics(
        everyone=table, flagged_only=None, exclude_flagged=False, absolute=False, names=NAMES,
        ids=[11, 12], reference=0, task_ids=tasks, iou_a=np.full(len(votes), 0.5),
        iou_b=np.full(len(votes), 0.6), min_votes=30, rounds=100, seed=0,
    )  # fmt: skip
    doc = {
        "computed_from": {"ratings": len(votes), "last_rating_id": len(votes)},
        "min_pair_votes": 30,
        "campaign": {"id": 3, "name": "c", "mode": "pairwise", "overlap": 1, "set": "s:ab",
                     "exclude_flagged": False},
        "runs": NAMES, "run_ids": [11, 12], "reference": NAMES[0], "reference_id": 11,
        "qc": {"gold_tasks": 0, "threshold": 0.7, "min_gold": 3, "insufficient_gold": True,
               "flagged": [], "excluded": [], "annotators": [], "dawid_skene_skipped": None},
        "scores": {k: v.to_dict() if v else None for k, v in stats.scores.items()},
        "scores_other_setting": None,
        "pair_votes": stats.pair_votes,
    }  # fmt: skip
    return {"version": 1, **CampaignPayload.from_dict(doc).to_dict()}


def test_a_payload_survives_its_round_trip_and_keeps_the_page_sections():
    doc = _payload([(k, 1 if k % 5 else 0) for k in range(40)])  # run b wins 4 of 5
    again = CampaignPayload.from_dict(doc)
    assert again.to_dict() == doc
    assert again.sections["pair_votes"][0]["b_wins"] == 32


def test_crowd_numbers_take_the_run_side_of_the_pair():
    payload = CampaignPayload.from_dict(_payload([(k, 1 if k % 5 else 0) for k in range(40)]))
    crowd_b, crowd_a = payload.crowd_of(12, 11), payload.crowd_of(11, 12)
    assert crowd_b is not None and crowd_a is not None
    assert crowd_b.win_rate is not None and crowd_a.win_rate is not None
    assert crowd_b.win_rate.estimate == pytest.approx(0.8)
    assert crowd_a.win_rate.estimate == pytest.approx(0.2)
    assert payload.crowd_of(99, None) is None  # not rated in this campaign


def test_too_few_votes_withhold_the_numbers_and_say_why():
    payload = CampaignPayload.from_dict(_payload([(k, 1) for k in range(12)]))
    crowd = payload.crowd_of(12, 11)
    assert crowd is not None and crowd.strength is None and crowd.win_rate is None
    assert crowd.note == "not enough votes (12 of 30)"


def test_a_legacy_row_without_version_or_run_ids_reads_ids_from_the_labels():
    doc = _payload([(k, 1) for k in range(40)])
    legacy = copy.deepcopy(doc)
    del legacy["version"], legacy["run_ids"]
    for s in legacy["scores"]["all"]["strengths"]:
        del s["run_id"]
    payload = CampaignPayload.from_dict(legacy)
    assert payload.version == 1 and payload.run_ids == (11, 12)
    assert [s.run_id for s in payload.scores["all"].strengths] == [11, 12]  # type: ignore[union-attr]


def test_an_unknown_version_is_refused_by_name():
    doc = _payload([(k, 1) for k in range(40)])
    with pytest.raises(PayloadError, match="unknown version 2"):
        CampaignPayload.from_dict({**doc, "version": 2})


@pytest.mark.parametrize("key", ["runs", "campaign", "qc", "scores", "min_pair_votes"])
def test_a_missing_key_is_named(key: str):
    doc = _payload([(k, 1) for k in range(40)])
    del doc[key]
    with pytest.raises(PayloadError, match=f"missing key '{key}'"):
        CampaignPayload.from_dict(doc)


def test_a_missing_nested_key_is_named_with_its_run():
    doc = _payload([(k, 1) for k in range(40)])
    del doc["scores"]["all"]["strengths"][1]["votes"]
    with pytest.raises(PayloadError, match=r"strength of 'm 1.1 · run #12': missing key 'votes'"):
        CampaignPayload.from_dict(doc)


def _fairness_doc() -> dict[str, Any]:
    rng = np.random.default_rng(0)
    n = 120
    tones = [str(1 + k % 10) for k in range(n)]
    genders = ["woman" if k % 2 else "man" for k in range(n)]
    iou = rng.uniform(0.5, 0.9, n) - np.array([0.3 if int(t) >= 8 else 0.0 for t in tones])
    body = fairness_report({"iou": iou}, tones, genders, FairnessSettings(rounds=200))
    return {"run": 7, "dataset": "s:ab", "synthetic_labels": True, **body}


def test_a_legacy_fairness_report_reads_as_version_1_and_round_trips():
    doc = _fairness_doc()  # stored before documents carried a version
    payload = FairnessPayload.from_dict(doc)
    assert payload.version == 1 and payload.sections["n"] == 120
    assert payload.to_dict() == {**doc, "version": 1}
    worst = payload.summary.metric("iou").worst_group
    assert worst is not None and worst.name == display_group(worst.attribute, worst.group)
    assert "8-10" in worst.group  # the harmed tones are the worst group


def test_a_fairness_report_missing_a_key_or_of_an_unknown_version_is_refused():
    doc = _fairness_doc()
    with pytest.raises(PayloadError, match="fairness report: unknown version 3"):
        FairnessPayload.from_dict({**doc, "version": 3})
    del doc["summary"]["iou"]["largest_gap"]
    with pytest.raises(PayloadError, match="summary of 'iou': missing key 'largest_gap'"):
        FairnessPayload.from_dict(doc)


def _summary_doc() -> dict[str, Any]:
    """A run summary as runs stored them before summaries carried a version."""
    return {
        "metrics": {"iou": 0.7, "mae": 0.05}, "ungated_metrics": {"iou": 0.69, "mae": 0.06},
        "counts": {"items": 120, "ok": 118, "failed": 2, "gated": 4},
        "gating": {"gated": 4, "no_subject_items": 3, "no_subject_gated": 3,
                   "subject_items": 115, "subject_gated": 1},
        "latency": {"warmup_excluded": 1, "devices": {
            "cpu": {"n": 118, "stages": {"total": {"p50": 20.0, "p90": 30.0, "p99": 41.0,
                                                   "max": 55.0, "mean": 22.0}}},
            "iphone": {"n": 12, "stages": {"total": {"p50": 9.0, "p90": 11.0, "p99": None,
                                                     "max": 14.0, "mean": 9.5}}}}},
        "slices": {"size_bucket": [], "tag": []}, "restarts": 0,
    }  # fmt: skip


def test_a_legacy_run_summary_reads_as_version_1_with_its_latency_through_the_tail_rule():
    doc = _summary_doc()
    summary = RunSummary.from_dict(doc)
    assert summary.version == 1 and summary.to_dict() == {**doc, "version": 1}
    assert summary.gating.no_subject_rate == 1.0
    assert summary.gating.subject_rate == pytest.approx(1 / 115)
    total = summary.latency.total()  # the device with the most measurements
    assert total is not None and (total.device, total.tail, total.tail_ms) == ("cpu", "p99", 41.0)
    phone = next(t for t in summary.latency.tables() if t["device"] == "iphone")
    assert phone["tail"] == "max"  # 12 measurements: no p99 is claimed


def test_a_run_summary_with_a_wrong_count_or_version_is_refused_by_name():
    with pytest.raises(PayloadError, match=r"run summary counts.ok: expected an integer"):
        RunSummary.from_dict({**_summary_doc(), "counts": {**_summary_doc()["counts"], "ok": "x"}})
    with pytest.raises(PayloadError, match="run summary: unknown version 0"):
        RunSummary.from_dict({**_summary_doc(), "version": 0})


def test_a_release_report_reads_its_gates_and_a_single_set_report_names_its_set():
    gate = {
        "name": "iou non-inferiority",
        "kind": "metric",
        "status": "pass",
        "value": 0.02,
        "ci": [0.01, 0.03],
        "threshold": -0.01,
        "text": "IoU +0.020 [0.010, 0.030] >= -0.01",
    }
    doc = {"candidate": "f:1.1", "baseline": "f:1.0", "dataset": "s:ab", "runs": {
        "candidate": 2, "baseline": 1}, "verdict": "pass", "exit_code": 0, "gates": [gate],
        "metrics": {}}  # fmt: skip
    payload = ReleaseReportPayload.from_dict(doc)  # stored before versions and suites
    assert payload.datasets == ("s:ab",) and payload.gates[0].value == 0.02
    assert payload.gate_of_kind("metric") == payload.gates[0]
    assert payload.to_dict() == {**doc, "version": 1, "datasets": ["s:ab"]}
    with pytest.raises(PayloadError, match="release report: unknown verdict 'ok'"):
        ReleaseReportPayload.from_dict({**doc, "verdict": "ok"})
    with pytest.raises(PayloadError, match="release report gate 'iou non-inferiority': missing"):
        ReleaseReportPayload.from_dict(
            {**doc, "gates": [{k: v for k, v in gate.items() if k != "text"}]}
        )
