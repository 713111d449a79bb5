"""pipelines.fairness: planted gaps flagged (and only they), means as fairlearn, Holm as a hand
computation over scipy's Welch p-values, groups, paired deltas, crowd rates, contrast strata."""

from __future__ import annotations

import numpy as np
import pytest
from fairlearn.metrics import MetricFrame
from scipy.stats import ttest_ind

from pipelines.fairness import (
    FairnessSettings,
    attribute_labels,
    contrast_stratified_gaps,
    crowd_group_rates,
    fairness_report,
    paired_group_deltas,
    parse_tone_groups,
)
from pipelines.fairness.paired import paired_attribute_deltas
from pipelines.stats.bootstrap import paired_bootstrap

pytestmark = pytest.mark.no_services

GENDERS = np.array(["woman", "man", "other", "unknown"])


def random_set(
    seed: int, n: int = 1200, degrade: float = 0.0
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Random labels; per-image metrics from one distribution, minus ``degrade`` on Monk 8-10."""
    rng = np.random.default_rng(seed)
    tone = rng.integers(1, 11, n).astype(str).astype(object)
    tone[rng.random(n) < 0.05] = "unknown"
    gender = rng.choice(GENDERS, n, p=[0.42, 0.42, 0.08, 0.08]).astype(object)
    dark = np.isin(tone, ["8", "9", "10"])
    quality = np.clip(rng.normal(0.8, 0.12, n) - degrade * dark, 0, 1)
    metrics = {
        "iou": quality,
        "precision": np.clip(quality + rng.normal(0.05, 0.05, n), 0, 1),
        "recall": np.clip(quality + rng.normal(0.03, 0.05, n), 0, 1),
        "boundary_f": np.clip(quality - 0.2 + rng.normal(0, 0.05, n), 0, 1),
        "mae": np.clip((1 - quality) * 0.2 + rng.normal(0, 0.01, n), 0, 1),
        "gated_rate": (rng.random(n) < 0.04).astype(np.float64),
    }
    return metrics, tone, gender


FAST = FairnessSettings(rounds=200)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_planted_gap_flags_that_tone_group_and_no_other(seed):
    metrics, tone, gender = random_set(seed, degrade=0.08)
    report = fairness_report(metrics, tone, gender, FAST)
    tone_flags = {
        (f["group"], f["metric"]) for f in report["flags"] if f["attribute"] == "skin_tone"
    }
    assert ("8-10", "iou") in tone_flags and ("8-10", "boundary_f") in tone_flags
    # MAE moved by 0.08 * 0.2 = 0.016: a real difference, but inside the 0.03 margin.
    assert ("8-10", "mae") not in tone_flags
    assert {g for g, _ in tone_flags} == {"8-10"}
    assert not any(f["attribute"] == "perceived_gender" for f in report["flags"])
    iou = next(g for g in report["groups"] if g["group"] == "8-10")["metrics"]["iou"]
    assert iou["gap_ci"][1] < 0 and iou["ci"][0] < iou["mean"] < iou["ci"][1]
    flag = next(f for f in report["flags"] if f["group"] == "8-10" and f["metric"] == "iou")
    assert flag["text"].startswith(f"Monk 8-10: IoU {iou['mean']:.3f} [")
    assert flag["text"].endswith(f"{abs(iou['gap']):.2f} below the other images")
    # The strip shows the group's worst images for that metric, worst first.
    worst = flag["worst"]
    assert all(tone[i] in {"8", "9", "10"} for i in worst)
    assert metrics["iou"][worst[0]] == metrics["iou"][np.isin(tone, ["8", "9", "10"])].min()
    assert report["summary"]["iou"]["largest_gap"]["group"] in {"8-10"} | {
        f"8-10 x {g}" for g in GENDERS
    }


def test_without_a_planted_gap_nothing_is_flagged_in_at_least_95_percent_of_seeds():
    seeds = range(20)
    flagged = [bool(fairness_report(*random_set(100 + s), FAST)["flags"]) for s in seeds]
    assert sum(flagged) <= 1, f"{sum(flagged)} of {len(flagged)} null seeds raised a flag"


def test_flags_list_exactly_the_flagged_cells_and_only_in_the_harmful_direction():
    metrics, tone, gender = random_set(7, degrade=-0.08)  # Monk 8-10 is *better* here
    report = fairness_report(metrics, tone, gender, FAST)
    cells = {
        (g["attribute"], g["group"], m)
        for g in report["groups"]
        for m, v in g["metrics"].items()
        if v["flagged"]
    }
    assert cells == {(f["attribute"], f["group"], f["metric"]) for f in report["flags"]}
    # 8-10 is better, so 8-10 is not flagged; the rest of the tones are now worse than the rest.
    assert not any(f["group"].startswith("8-10") for f in report["flags"])


def test_group_means_equal_fairlearn_metricframe_for_each_attribute():
    metrics, tone, gender = random_set(3)
    report = fairness_report(metrics, tone, gender, FAST)
    labels = attribute_labels(tone, gender, parse_tone_groups("1-3,4-7,8-10"))
    for attribute in ("skin_tone", "perceived_gender", "skin_tone_x_perceived_gender"):
        keep = np.array([x is not None for x in labels[attribute]])
        by_group = {
            m: MetricFrame(
                metrics=lambda y_true, y_pred: float(np.mean(y_pred)),
                y_true=np.zeros(keep.sum()),
                y_pred=metrics[m][keep],
                sensitive_features=labels[attribute][keep].astype(str),
            ).by_group.to_dict()
            for m in metrics
        }
        ours = [g for g in report["groups"] if g["attribute"] == attribute]
        assert {g["group"] for g in ours} == set(by_group["iou"])
        for g in ours:
            for m in metrics:
                assert g["metrics"][m]["mean"] == pytest.approx(by_group[m][g["group"]], abs=1e-6)


def test_holm_runs_over_every_eligible_cell_of_the_report():
    metrics, tone, gender = random_set(5, degrade=0.05)
    report = fairness_report(metrics, tone, gender, FAST)
    labels = attribute_labels(tone, gender, parse_tone_groups("1-3,4-7,8-10"))
    cells = []
    for g in report["groups"]:
        if g["too_small"]:
            assert all(v["p_holm"] is None and not v["flagged"] for v in g["metrics"].values())
            continue
        lab = labels[g["attribute"]]
        inside = np.array([x == g["group"] for x in lab])
        rest = np.array([x is not None and x != g["group"] for x in lab])
        for m, v in g["metrics"].items():
            p = ttest_ind(metrics[m][inside], metrics[m][rest], equal_var=False).pvalue
            assert v["p"] == pytest.approx(p, rel=1e-6, abs=1e-12)
            cells.append((p, v["p_holm"]))
    # Holm by hand: sort ascending, multiply the k-th smallest by (m - k), running maximum, cap 1.
    ps = sorted(cells)
    m = len(ps)
    running = 0.0
    for k, (p, p_holm) in enumerate(ps):
        running = max(running, min(1.0, (m - k) * p))
        assert p_holm == pytest.approx(running, rel=1e-6, abs=1e-12)
    assert m > 40  # one family: tones, genders and intersections over six metrics


def test_not_applicable_is_excluded_unknown_is_a_group_and_small_groups_are_never_flagged():
    metrics, tone, gender = random_set(8, n=900)
    tone[:40], gender[:40] = "not_applicable", "not_applicable"
    gender[40:50] = "other"
    metrics["iou"][40:50] = 0.0  # a huge gap in a group of 10 + chance members
    report = fairness_report(
        metrics, tone, gender, FairnessSettings(rounds=200, min_group_size=200)
    )
    groups = {(g["attribute"], g["group"]): g for g in report["groups"]}
    assert not any("not_applicable" in g for _, g in groups)
    assert ("skin_tone", "unknown") in groups and ("perceived_gender", "unknown") in groups
    assert sum(g["n"] for (a, _), g in groups.items() if a == "skin_tone") == 860
    other = groups[("perceived_gender", "other")]
    assert other["too_small"] and other["metrics"]["iou"]["ci"] == [None, None]
    assert not other["metrics"]["iou"]["flagged"]
    assert other["metrics"]["iou"]["mean"] < 0.7


def test_a_grouping_that_misses_tones_is_refused_naming_the_gap():
    with pytest.raises(ValueError, match="tones 4-5 are in no group"):
        parse_tone_groups("1-3,6-10")
    with pytest.raises(ValueError, match="tone 5 is in more than one group"):
        FairnessSettings(skin_tone_groups="1-5,5-10")
    with pytest.raises(ValueError, match="tone 10 is in no group"):
        fairness_report(*random_set(0, n=100), FairnessSettings(skin_tone_groups="1-9"))
    assert FairnessSettings(skin_tone_groups="1..3, 4-7,8 - 10").skin_tone_groups == "1-3,4-7,8-10"


def test_the_gating_rate_flags_the_group_the_gate_hides_more():
    metrics, tone, gender = random_set(9)
    rng = np.random.default_rng(0)
    women = gender == "woman"
    metrics["gated_rate"] = (rng.random(len(tone)) < np.where(women, 0.15, 0.02)).astype(float)
    report = fairness_report(metrics, tone, gender, FAST)
    flags = {(f["attribute"], f["group"], f["metric"]) for f in report["flags"]}
    assert ("perceived_gender", "woman", "gated_rate") in flags
    assert ("perceived_gender", "man", "gated_rate") not in flags  # hidden less: not harmful
    text = next(f["text"] for f in report["flags"] if f["group"] == "woman")
    assert text.startswith("woman: gated rate ") and text.endswith("above the other images")


def test_paired_deltas_of_one_group_equal_the_plain_paired_bootstrap():
    metrics, _, _ = random_set(11, n=400)
    candidate = {m: np.clip(v + 0.01, 0, 1) for m, v in metrics.items()}
    ours = paired_group_deltas(
        metrics, candidate, ["all"] * 400, rounds=300, seed=4, min_group_size=30
    )
    ref = paired_bootstrap(metrics, candidate, rounds=300, seed=4)
    assert len(ours) == 1 and ours[0]["n"] == 400
    for m in metrics:
        cell = ours[0]["metrics"][m]
        assert cell["delta"] == pytest.approx(ref[m].delta.estimate, abs=1e-6)
        assert cell["ci"] == pytest.approx([ref[m].delta.low, ref[m].delta.high], abs=1e-6)
        assert cell["candidate"] == pytest.approx(ref[m].candidate.estimate, abs=1e-6)


def test_paired_deltas_find_the_group_a_candidate_made_worse_and_zero_for_identical_runs():
    metrics, tone, gender = random_set(12, n=1500)
    dark = np.isin(tone, ["8", "9", "10"])
    candidate = dict(metrics, iou=np.clip(metrics["iou"] - 0.06 * dark, 0, 1))
    rows = paired_attribute_deltas(metrics, candidate, tone, gender, rounds=300)
    by = {(r["attribute"], r["group"]): r["metrics"]["iou"] for r in rows}
    assert by[("skin_tone", "8-10")]["ci"][1] < 0 and by[("skin_tone", "8-10")]["delta_gap"] < 0
    assert by[("skin_tone", "1-3")]["delta"] == 0.0
    same = paired_attribute_deltas(metrics, metrics, tone, gender, rounds=100)
    assert all(r["metrics"]["iou"]["ci"] in ([0.0, 0.0], [None, None]) for r in same)
    with pytest.raises(ValueError, match="different numbers of images"):
        paired_group_deltas(metrics, {m: v[:-1] for m, v in metrics.items()}, tone)


def test_crowd_rates_by_group_count_votes_and_resample_items():
    rng = np.random.default_rng(1)
    items = np.repeat(np.arange(200), 3)
    group = np.where(items < 100, "8-10", "1-3").astype(object)
    p_win = np.where(items < 100, 0.3, 0.6)
    outcome = np.where(
        rng.random(600) < p_win, "win", rng.choice(["loss", "tie", "both_bad"], 600)
    ).astype(object)
    group[:3] = None  # an item without a person is left out
    out = crowd_group_rates(items, group, outcome, rounds=500)
    rows = {r["group"]: r for r in out["groups"]}
    dark = (items < 100) & (items > 0)
    assert rows["8-10"]["votes"] == dark.sum() and rows["8-10"]["items"] == 99
    assert rows["8-10"]["win_rate"] == pytest.approx(np.mean(outcome[dark] == "win"), abs=1e-6)
    assert rows["8-10"]["both_bad_rate"] == pytest.approx(
        np.mean(outcome[dark] == "both_bad"), abs=1e-6
    )
    assert rows["8-10"]["win_ci"][1] < rows["1-3"]["win_ci"][0]
    assert 0 <= rows["1-3"]["agreement"] <= 1 and out["agreement_p"] is not None
    with pytest.raises(ValueError, match="unknown outcome"):
        crowd_group_rates([1], ["a"], ["left"])


def test_crowd_agreement_differs_when_one_group_is_split_votes():
    items = np.repeat(np.arange(120), 4)
    group = np.where(items < 60, "a", "b").astype(object)
    rng = np.random.default_rng(2)
    outcome = np.where(items < 60, "win", rng.choice(["win", "loss", "tie", "both_bad"], 480))
    out = crowd_group_rates(items, group, outcome, rounds=200)
    rows = {r["group"]: r for r in out["groups"]}
    assert rows["a"]["agreement"] == 1.0 and rows["b"]["agreement"] < 0.5
    assert out["agreement_differs"] is True


def test_contrast_strata_tell_a_rendering_gap_from_a_model_gap():
    rng = np.random.default_rng(3)
    n = 3000
    dark = rng.random(n) < 0.4
    contrast = np.where(dark, rng.uniform(5, 25, n), rng.uniform(15, 35, n))
    rendering = np.clip(0.5 + contrast / 70 + rng.normal(0, 0.05, n), 0, 1)  # contrast only
    model = rendering - 0.05 * dark  # plus a real model gap
    labels = np.where(dark, "8-10", "1-7").astype(object)
    out = contrast_stratified_gaps(
        {"render": rendering, "model": model}, labels, contrast, strata=8, rounds=300
    )
    adj = {r["group"]: r["metrics"] for r in out["adjusted"]}
    assert adj["8-10"]["render"]["raw_gap"] < -0.05  # looks like a gap ...
    lo, hi = adj["8-10"]["render"]["adjusted_ci"]
    assert abs(adj["8-10"]["render"]["adjusted_gap"]) < 0.02  # ... that contrast explains
    assert adj["8-10"]["model"]["adjusted_gap"] == pytest.approx(-0.05, abs=0.02)
    assert adj["8-10"]["model"]["adjusted_ci"][1] < 0 and lo < hi
    assert len(out["strata"]) == 8 and out["edges"][0] == pytest.approx(contrast.min())
