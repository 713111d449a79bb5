"""pipelines.release: paired deltas, group deltas, crowd section, gates and Holm (pure numpy)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy.stats import ttest_ind

from pipelines.release import (
    CrowdVotes,
    GateSettings,
    ReleaseInputs,
    build_release_report,
    crowd_section,
    group_deltas_with_flags,
    paired_deltas,
)
from pipelines.stats import paired_bootstrap
from pipelines.stats.groups import holm_adjust
from pipelines.stats.latency import latency_stats

pytestmark = pytest.mark.no_services
METRICS = ("iou", "boundary_f", "mae")


def _runs(n: int = 120, seed: int = 1) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    base = {m: rng.uniform(0.3, 0.9, n) for m in METRICS}
    cand = {m: v + 0.04 + rng.normal(0, 0.02, n) for m, v in base.items()}
    cand["mae"] = base["mae"] - 0.02 + rng.normal(0, 0.01, n)
    return base, cand


def test_paired_deltas_share_one_draw_and_match_the_stats_library():
    base, cand = _runs()
    ours = paired_deltas(base, cand, margin=0.01, rounds=500, seed=3)
    ref = paired_bootstrap(base, cand, rounds=500, seed=3)
    for m in METRICS:
        assert ours[m].delta == pytest.approx(np.mean(cand[m] - base[m]), abs=1e-12)
        assert [ours[m].low, ours[m].high] == pytest.approx(
            [ref[m].delta.low, ref[m].delta.high], abs=1e-12
        )
    # Improved / regressed shares are per-image counts beyond the margin, oriented per metric.
    d = cand["iou"] - base["iou"]
    assert ours["iou"].improved == pytest.approx(np.mean(d > 0.01))
    assert ours["iou"].regressed == pytest.approx(np.mean(d < -0.01))
    dm = cand["mae"] - base["mae"]
    assert ours["mae"].improved == pytest.approx(np.mean(-dm > 0.01))


def test_identical_runs_give_exact_zero_deltas():
    base, _ = _runs()
    out = paired_deltas(base, base, rounds=200)
    for m in METRICS:
        assert (out[m].delta, out[m].low, out[m].high) == (0.0, 0.0, 0.0)


def test_group_deltas_flag_the_degraded_group_with_welch_and_holm():
    rng = np.random.default_rng(0)
    n = 150
    labels = np.array(["1-3", "4-7", "8-10"])[np.arange(n) % 3]
    base = rng.uniform(0.4, 0.8, n)
    cand = base + 0.03 + rng.normal(0, 0.01, n)
    cand[labels == "8-10"] = base[labels == "8-10"] - 0.06 + rng.normal(0, 0.01, 50)
    groups = {g.group: g for g in group_deltas_with_flags(base, cand, labels, min_group_size=20,
                                                          margin=0.02, rounds=300)}  # fmt: skip
    d = cand - base
    p = [ttest_ind(d[labels == g], d[labels != g], equal_var=False).pvalue
         for g in ("1-3", "4-7", "8-10")]  # fmt: skip
    adjusted = holm_adjust(p)
    for k, g in enumerate(("1-3", "4-7", "8-10")):
        assert groups[g].p_holm == pytest.approx(adjusted[k])
        assert groups[g].delta == pytest.approx(d[labels == g].mean(), abs=1e-6)  # 6 digits
    assert groups["8-10"].flagged and not groups["1-3"].flagged and not groups["4-7"].flagged


def test_small_groups_get_no_interval_and_no_flag():
    labels = np.array(["a"] * 40 + ["b"] * 5)
    base = np.linspace(0.2, 0.8, 45)
    cand = base.copy()
    cand[40:] -= 0.5
    groups = {g.group: g for g in group_deltas_with_flags(base, cand, labels, min_group_size=10)}
    assert groups["b"].too_small and groups["b"].low is None and not groups["b"].flagged


def _votes(outcomes: list[int], stratum: str = "control") -> CrowdVotes:
    n = len(outcomes)
    return CrowdVotes(campaign=1, items=np.arange(n) // 2, outcome=np.array(outcomes),
                      stratum=np.array([stratum] * n), reasons=[["edges"]] * n)  # fmt: skip


def test_crowd_below_the_minimum_shows_no_number():
    result = crowd_section(_votes([0] * 12), min_votes=50)
    assert result.section["note"] == "not enough votes (12 of 50)"
    assert result.section["win_rate"] is None and result.section["strength"] is None
    assert result.win_samples is None


def test_crowd_win_rate_counts_ties_half_and_leaves_both_bad_out():
    outcomes = [0] * 40 + [1] * 20 + [2] * 10 + [3] * 10
    s = crowd_section(_votes(outcomes), min_votes=50, rounds=300).section
    assert s["win_rate"]["estimate"] == pytest.approx((40 + 5) / 70)
    assert s["both_bad"]["estimate"] == pytest.approx(10 / 80)
    assert s["win_rate"]["ci"][0] < s["win_rate"]["estimate"] < s["win_rate"]["ci"][1]
    assert s["strength"]["estimate"] > 0  # candidate preferred: positive vs baseline = 0


def test_disagreement_votes_never_enter_the_win_rate():
    votes = _votes([0] * 60 + [1] * 60)
    votes = CrowdVotes(
        1,
        votes.items,
        votes.outcome,
        np.array(["control"] * 60 + ["disagreement"] * 60),
        votes.reasons,
    )
    s = crowd_section(votes, min_votes=50).section
    assert s["votes"] == 60 and s["win_rate"]["estimate"] == 1.0


def _inputs(n: int = 120, degrade: bool = True, seed: int = 2) -> ReleaseInputs:
    rng = np.random.default_rng(seed)
    tones = np.array([str(1 + i % 10) for i in range(n)])  # Monk 1-10, grouped 1-3,4-7,8-10
    base = {m: rng.uniform(0.4, 0.8, n) for m in METRICS}
    cand = {m: v + 0.05 + rng.normal(0, 0.01, n) for m, v in base.items()}
    cand["mae"] = base["mae"] - 0.02
    if degrade:
        sel = np.isin(tones, ["8", "9", "10"])
        cand["iou"][sel] = base["iou"][sel] - 0.08 + rng.normal(0, 0.01, sel.sum())
    return ReleaseInputs(
        candidate="f:2", baseline="f:1", dataset="s:ab", runs={"candidate": 2, "baseline": 1},
        items=[{"id": i, "stem": f"s{i}"} for i in range(n)], baseline_metrics=base,
        candidate_metrics=cand, baseline_gated=np.zeros(n), candidate_gated=np.zeros(n),
        no_subject=np.zeros(n), latency={"candidate": latency_stats(np.linspace(10.0, 30.0, n))},
        postprocess={"baseline": {"g": 1}, "candidate": {"g": 1}},
        attributes={"skin_tone": list(tones),
                    "perceived_gender": ["woman" if i % 2 else "man" for i in range(n)]},
    )  # fmt: skip


def _gates(report: dict) -> dict[str, dict]:
    return {g["name"]: g for g in report["gates"]}


def test_degraded_group_fails_fairness_naming_it_while_iou_passes():
    report = build_release_report(_inputs(degrade=True), GateSettings(rounds=400))
    gates = _gates(report)
    assert gates["fairness: skin tone"]["status"] == "fail"
    assert gates["fairness: skin tone"]["group"] == "8-10"
    assert "Monk 8-10" in gates["fairness: skin tone"]["text"]
    assert gates["IoU non-inferiority"]["status"] == "pass"
    assert report["verdict"] == "fail" and report["exit_code"] == 3


def test_better_everywhere_passes_quality_and_fairness_and_waits_for_crowd():
    report = build_release_report(_inputs(degrade=False), GateSettings(rounds=400))
    gates = _gates(report)
    for g in report["gates"]:
        if g["kind"] in ("metric", "fairness"):
            assert g["status"] == "pass", g
    assert gates["crowd win rate"]["status"] == "insufficient"
    assert report["crowd"] is None  # no campaign: null, as the contract says
    assert report["verdict"] == "insufficient" and report["exit_code"] == 4
    no_crowd = GateSettings(rounds=400, min_win_rate=None, min_votes=0)
    assert build_release_report(_inputs(degrade=False), no_crowd)["verdict"] == "pass"


def test_holm_adjusts_across_the_gates_of_one_report():
    report = build_release_report(
        _inputs(degrade=False), GateSettings(rounds=400, min_win_rate=None, min_votes=0)
    )
    tested = [g for g in report["gates"] if "p_value" in g]
    assert len(tested) == 5  # three metrics, two fairness attributes
    adjusted = holm_adjust([g["p_value"] for g in tested])
    assert [g["p_holm"] for g in tested] == pytest.approx(list(adjusted))


def test_different_post_processing_is_named_and_lacks_evidence():
    inputs = _inputs(degrade=False)
    inputs = ReleaseInputs(
        **{
            **inputs.__dict__,
            "postprocess": {
                "baseline": {"gate_threshold": 0.5},
                "candidate": {"gate_threshold": 0.6},
            },
        }
    )
    report = build_release_report(inputs, GateSettings(rounds=200, min_win_rate=None,
                                                       min_votes=0))  # fmt: skip
    gate = _gates(report)["same post-processing"]
    assert gate["status"] == "insufficient" and "gate_threshold" in gate["text"]
    assert report["verdict"] == "insufficient"


def test_latency_budget_gate():
    inputs = _inputs(degrade=False)
    over = build_release_report(inputs, GateSettings(rounds=200, latency_budget_ms=20.0))
    assert _gates(over)["latency budget"]["status"] == "fail"
    under = build_release_report(inputs, GateSettings(rounds=200, latency_budget_ms=50.0))
    assert _gates(under)["latency budget"]["status"] == "pass"


def test_a_suite_runs_holm_once_over_the_gates_of_all_its_sets() -> None:
    from dataclasses import replace

    from pipelines.release import build_suite_report

    quality = replace(_inputs(degrade=False, seed=5), dataset="q:01", attributes=None)
    people = _inputs(degrade=True)
    settings = GateSettings(rounds=400, min_votes=0, min_win_rate=None)
    suite = build_suite_report([quality, people], settings)
    alone = build_release_report(people, settings)
    assert suite["datasets"] == ["q:01", "s:ab"] and suite["dataset"] == "q:01"
    by_set = {(g["name"], g["dataset"]): g for g in suite["gates"]}
    # metric gates on both sets, fairness only where people are labelled
    assert ("IoU non-inferiority", "q:01") in by_set and ("IoU non-inferiority", "s:ab") in by_set
    assert {g["dataset"] for g in suite["gates"] if g["kind"] == "fairness"} == {"s:ab"}
    assert by_set[("fairness: skin tone", "s:ab")]["status"] == "fail"
    # one Holm family: p-values as alone, adjusted over more tests (never smaller)
    raw = [g["p_value"] for g in suite["gates"] if g.get("p_value") is not None]
    expected = holm_adjust(np.array(raw))
    got = [g["p_holm"] for g in suite["gates"] if g.get("p_value") is not None]
    assert got == pytest.approx(list(expected))
    for gate in alone["gates"]:
        if gate.get("p_holm") is not None:
            assert by_set[(gate["name"], "s:ab")]["p_holm"] >= gate["p_holm"] - 1e-12
    assert suite["fairness"]["dataset"] == "s:ab" and suite["metrics"]["iou"]["delta"] > 0
    assert suite["verdict"] == "fail"


def test_latency_gate_uses_the_max_and_says_so_below_100_images():
    # Given 30 measured images whose slowest took 90 ms while their p99 would read ~87 ms
    inputs = _inputs(degrade=False)
    slow = latency_stats([10.0] * 28 + [80.0, 90.0])
    inputs = replace(inputs, latency={"candidate": slow})
    report = build_release_report(inputs, GateSettings(rounds=200, latency_budget_ms=88.0))
    gate = _gates(report)["latency budget"]
    # Then the gate compares the max, not an interpolated p99, and names it
    assert gate["status"] == "fail" and gate["value"] == 90.0
    assert "max 90.0 ms (n=30" in gate["text"] and "p99" not in gate["text"].split(";")[0]
    assert report["latency"]["candidate"]["p99"] is None
    assert report["latency"]["candidate"]["tail"] == "max"


def test_latency_gate_uses_the_p99_from_100_images():
    values = np.arange(1.0, 201.0)  # 200 images: p99 = 198.01, max = 200
    inputs = replace(_inputs(degrade=False), latency={"candidate": latency_stats(values)})
    report = build_release_report(inputs, GateSettings(rounds=200, latency_budget_ms=199.0))
    gate = _gates(report)["latency budget"]
    assert gate["status"] == "pass"
    assert gate["value"] == pytest.approx(np.percentile(values, 99))
    assert gate["text"].startswith("candidate p99 198.0 ms (n=200)")
