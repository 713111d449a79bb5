"""The run summary contract: what a real run stores is what the leaderboard and the release
report read (producer `eval_run_finalise`, consumers `leaderboard_refresh`, `release_report_build`,
both through `evalsite.evals.summary.run_summary`)."""

from __future__ import annotations

from typing import Any

import pytest

from evalsite.evals.models import EvalRun, RunStatus
from evalsite.evals.services.runs import eval_run_start
from evalsite.evals.summary import run_summary
from evalsite.releases.models import LeaderboardRow
from evalsite.releases.services.leaderboard import leaderboard_refresh
from evalsite.releases.services.reports import release_report_build, release_report_create
from models.models import PRODUCTION, Alias
from pipelines.payloads import PayloadError
from tests.evals.factories import tiny_set, tiny_spec, version_row

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.no_services]


def _total(summary: dict[str, Any]) -> dict[str, Any]:
    device = summary["latency"]["devices"]["cpu"]
    return {"n": device["n"], **device["stages"]["total"]}


def test_the_leaderboard_and_the_release_report_read_what_a_real_run_stored(
    tmp_path: Any, fake_model: Any, run_inline: Any
):
    dv = tiny_set(tmp_path, n=6, empty=1)
    base_mv = version_row("fake", "1.0.0", fmt="torch_export", spec=tiny_spec())
    cand_mv = version_row("fake", "1.1.0", fmt="torch_export", spec=tiny_spec())
    Alias.objects.create(family=base_mv.family, name=PRODUCTION, version=base_mv)
    runs = [
        run_inline(eval_run_start(model_version=mv, dataset_version=dv, chunk_size=8))
        for mv in (base_mv, cand_mv)
    ]
    assert all(r.status == RunStatus.DONE and r.has_latency for r in runs), [r.error for r in runs]
    stored = runs[1].summary
    assert stored["version"] == 1

    leaderboard_refresh(force=True)
    row = LeaderboardRow.objects.get(run=runs[1])
    gating, total = stored["gating"], _total(stored)
    assert gating["no_subject_items"] == 1 and gating["subject_items"] == 6
    assert row.gated_no_subject == gating["no_subject_gated"] / gating["no_subject_items"]
    assert row.gated_subject == gating["subject_gated"] / gating["subject_items"]
    assert (row.latency_p50, row.latency_n, row.device) == (total["p50"], total["n"], "cpu")
    assert row.latency_tail == "max"  # 7 measurements: no p99 is claimed
    assert row.latency_p99 == total["max"]
    assert row.iou == pytest.approx(stored["metrics"]["iou"])

    report = release_report_create(candidate=cand_mv, baseline=base_mv, dataset_versions=[dv],
                                   enqueue=False)  # fmt: skip
    latency = release_report_build(report_id=report.pk).payload["latency"]
    assert (latency["candidate"]["p50"], latency["candidate"]["n"]) == (total["p50"], total["n"])


def test_a_stored_summary_missing_a_key_is_refused_by_name(
    tmp_path: Any, fake_model: Any, run_inline: Any
):
    dv = tiny_set(tmp_path, n=2, empty=0)
    mv = version_row("fake", "1.0.0", fmt="torch_export", spec=tiny_spec())
    run = run_inline(eval_run_start(model_version=mv, dataset_version=dv, chunk_size=8))
    summary = run_summary(run)
    assert summary is not None and summary.counts.ok == 2
    broken = {k: v for k, v in run.summary.items() if k != "gating"}
    EvalRun.objects.filter(pk=run.pk).update(summary=broken)
    with pytest.raises(PayloadError, match="run summary: missing key 'gating'"):
        run_summary(EvalRun.objects.get(pk=run.pk))
