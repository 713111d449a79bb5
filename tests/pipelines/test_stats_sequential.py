"""pipelines.stats.sequential: betting confidence sequence, anytime-valid decisions, CLI."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipelines.stats import sequential as sq

pytestmark = pytest.mark.no_services

ROOT = Path(__file__).resolve().parents[2]


def draw(rng: np.random.Generator, shape: tuple[int, ...], p: float, tie: float = 0.2):
    """Votes with preference rate ``p``: candidate / baseline / tie-or-both-bad."""
    probs = [1.0 - p - tie / 2, tie, p - tie / 2]  # scores 0, 0.5, 1
    return rng.choice([0.0, 0.5, 1.0], size=shape, p=probs)


def reference_capital(x: np.ndarray, m: float, alpha: float) -> np.ndarray:
    """Loop transcription of the hedged capital of Waudby-Smith & Ramdas (confseq's
    ``betting_mart`` with ``lambda_predmix_eb``, theta = 1/2, trunc_scale = 1/2, m_trunc)."""
    theta, c = 0.5, 0.5
    kp = km = 1.0
    mu, s2 = 0.5, 0.25  # prior mean / variance with one fake observation
    total, sq_dev = 0.0, 0.0
    out = []
    for i, xi in enumerate(x, start=1):
        lam = math.sqrt(2 * math.log(1 / (alpha * theta)) / (s2 * i * math.log(1 + i)))
        lp = min(lam, c / m) if m > 0 else lam
        lm = min(lam, c / (1 - m)) if m < 1 else lam
        kp *= 1 + lp * (xi - m)
        km *= 1 - lm * (xi - m)
        out.append(max(theta * kp, (1 - theta) * km))
        total += xi
        mu = (0.5 + total) / (i + 1)
        sq_dev += (xi - mu) ** 2
        s2 = (0.25 + sq_dev) / (i + 1)
    return np.array(out)


def test_parse_votes_scores_and_names_the_bad_line() -> None:
    x = sq.parse_votes(["candidate", " Baseline ", "tie", "both_bad"])
    assert x.tolist() == [1.0, 0.0, 0.5, 0.5]
    with pytest.raises(ValueError, match="line 3: 'left'"):
        sq.parse_votes(["tie", "tie", "left"])
    with pytest.raises(ValueError, match="line 2"):
        sq.parse_votes(["tie", ""])


@pytest.mark.parametrize("m", [0.0, 0.2, 0.5, 0.71, 1.0])
def test_capital_matches_a_loop_transcription_of_the_paper(m: float) -> None:
    x = draw(np.random.default_rng(3), (300,), 0.58)
    bets = sq.predictable_bets(x, 0.05)
    ours = np.maximum(
        0.5 * np.exp(sq.log_capital(x, bets, m, +1)), 0.5 * np.exp(sq.log_capital(x, bets, m, -1))
    )
    np.testing.assert_allclose(ours, reference_capital(x, m, 0.05), rtol=1e-10)


def test_grid_sequence_brackets_the_exact_ends() -> None:
    x = draw(np.random.default_rng(4), (500,), 0.45)
    lo, hi = sq.confidence_sequence(x, 0.05, resolution=400)
    e_lo, e_hi = sq.cs_at(x, 0.05, np.arange(1, 501))
    assert np.all(lo <= e_lo + 1e-12) and np.all(e_lo - lo <= 1 / 400 + 1e-12)
    assert np.all(hi >= e_hi - 1e-12) and np.all(hi - e_hi <= 1 / 400 + 1e-12)
    # Running intersection: never widens; holds the running mean after enough votes.
    assert np.all(np.diff(e_lo) >= -1e-12) and np.all(np.diff(e_hi) <= 1e-12)
    assert e_lo[-1] < x.mean() < e_hi[-1]
    # The exact end is where the running maximum of the capital crosses 1/alpha.
    bets = sq.predictable_bets(x, 0.05)
    thr = math.log(1 / (0.05 * 0.5))
    assert np.maximum.accumulate(sq.log_capital(x, bets, e_lo[-1], +1)).max() >= thr
    assert np.maximum.accumulate(sq.log_capital(x, bets, e_lo[-1] + 1e-6, +1)).max() < thr


def test_decisions_agree_with_the_interval_after_every_vote() -> None:
    rng = np.random.default_rng(5)
    for p, margin in ((0.7, None), (0.3, None), (0.5, 0.12), (0.55, 0.15)):
        x = draw(rng, (600,), p)
        res = sq.monitor(x, 0.05, margin)
        lo, hi = sq.cs_at(x, 0.05, np.arange(1, 601), margin)
        band = margin or 0.0
        decided = (lo >= 0.5) | (hi <= 0.5)
        if margin is not None:
            decided |= (lo >= 0.5 - band) & (hi <= 0.5 + band)
        first = int(np.argmax(decided)) + 1 if decided.any() else None
        assert res.stopped_at == first, (p, margin)
        assert first is not None
        t = first - 1
        expected = "candidate" if lo[t] >= 0.5 else "baseline" if hi[t] <= 0.5 else "equivalent"
        assert res.decision == expected
        assert res.cs == pytest.approx((lo[t], hi[t]), abs=1e-8)
        assert res.rate == pytest.approx(x[:first].mean())
        assert res.expected_more == 0


def test_false_decisions_between_equal_models_stay_under_alpha() -> None:
    """Monitored after every vote, 400 campaigns x 1500 votes: the betting sequence errs at most
    alpha; stopping at the first peek where a fixed-sample Wald interval excludes 1/2 errs far
    more often (the failure the sequence exists to prevent)."""
    rng = np.random.default_rng(6)
    x = draw(rng, (400, 1500), 0.5)
    stop, _ = sq.decision_paths(x, 0.05)
    false_rate = float(np.mean(stop > 0))
    assert false_rate <= 0.05
    t = np.arange(1, 1501)
    mean = np.cumsum(x, axis=1) / t
    sd = np.sqrt(np.maximum(np.cumsum(x * x, axis=1) / t - mean**2, 1e-12))
    naive = np.abs(mean - 0.5) > 1.96 * sd / np.sqrt(t)
    naive_rate = float(np.mean(naive[:, 9:].any(axis=1)))  # from vote 10 on
    assert naive_rate > 3 * 0.05 > false_rate


@pytest.mark.parametrize("p", [0.3, 0.62])
def test_coverage_of_the_true_rate_at_all_times(p: float) -> None:
    rng = np.random.default_rng(7)
    x = draw(rng, (400, 1000), p)
    bets = sq.predictable_bets(x, 0.05)
    thr = math.log(1 / (0.05 * 0.5))
    miss = (sq.log_capital(x, bets, p, +1) >= thr).any(axis=1)
    miss |= (sq.log_capital(x, bets, p, -1) >= thr).any(axis=1)
    assert float(np.mean(miss)) <= 0.05


def test_power_at_a_true_preference_of_060() -> None:
    rng = np.random.default_rng(8)
    x = draw(rng, (300, 3000), 0.6)
    stop, code = sq.decision_paths(x, 0.05, margin=0.05)
    right = np.mean(code == 1)
    assert right >= 0.95
    assert np.mean(code == 2) == 0.0
    assert 100 < np.median(stop[code == 1]) < 1500


def test_futility_ends_equal_campaigns_and_rarely_calls_a_real_difference_equivalent() -> None:
    rng = np.random.default_rng(9)
    _, code = sq.decision_paths(draw(rng, (300, 3000), 0.5), 0.05, margin=0.1)
    assert np.mean(code == 3) >= 0.95
    assert np.mean((code == 1) | (code == 2)) <= 0.05
    # True rate 0.62 lies outside the band 0.5 +- 0.1: "equivalent" would be a false decision.
    _, code = sq.decision_paths(draw(rng, (300, 3000), 0.62), 0.05, margin=0.1)
    assert np.mean(code == 3) <= 0.05


def test_e_bh_matches_its_definition() -> None:
    rng = np.random.default_rng(10)
    for _ in range(50):
        e = np.exp(rng.normal(1.5, 2.0, size=12))
        alpha = 0.1
        got = sq.e_bh(e, alpha)
        k = len(e)
        ranked = np.sort(e)[::-1]
        kstar = max([j for j in range(1, k + 1) if ranked[j - 1] >= k / (alpha * j)], default=0)
        assert got.sum() == kstar
        if kstar:
            assert e[got].min() >= ranked[kstar - 1]
    assert not sq.e_bh([], 0.05).any()
    with pytest.raises(ValueError):
        sq.e_bh([1.0, -1.0], 0.05)


@pytest.mark.parametrize("probs", [(0.4, 0.2, 0.4), (0.1, 0.8, 0.1), (0.5, 0.0, 0.5)])
def test_e_value_has_expectation_one_under_no_preference(probs: tuple[float, ...]) -> None:
    """Exact expectation over all 3^7 vote paths: the e-value is a test martingale at p = 1/2."""
    import itertools

    values, pr = np.array([0.0, 0.5, 1.0]), np.array(probs)
    paths = np.array(list(itertools.product(range(3), repeat=7)))
    weight = pr[paths].prod(axis=1)
    e = np.stack([sq.e_values(values[path], 0.05) for path in paths])
    np.testing.assert_allclose(weight @ e, np.ones(7), rtol=1e-12)
    res = sq.monitor(draw(np.random.default_rng(11), (800,), 0.75), 0.05)
    assert res.decision == "candidate" and res.e_value >= 1 / 0.05


def test_monitor_pairs_uses_bonferroni() -> None:
    rng = np.random.default_rng(12)
    streams = {("a", "b"): draw(rng, (400,), 0.7), ("a", "c"): draw(rng, (300,), 0.5)}
    out = sq.monitor_pairs(streams, 0.05, margin=0.1)
    assert isinstance(out, dict)
    for key, res in out.items():
        assert res.alpha == pytest.approx(0.025)
        assert res == sq.monitor(streams[key], 0.025, 0.1)


def test_undecided_result_forecasts_more_votes() -> None:
    rng = np.random.default_rng(13)
    near = sq.monitor(draw(rng, (100,), 0.55), 0.05)
    far = sq.monitor(draw(rng, (40,), 0.8), 0.05)
    assert near.decision is None and near.stopped_at is None and near.votes == 100
    assert near.rate == near.current_rate and near.cs == near.current_cs
    assert near.expected_more is not None and near.expected_more > 0
    if far.decision is None:
        assert far.expected_more is not None and far.expected_more < near.expected_more
    flat = sq.monitor(np.full(50, 0.5), 0.05)
    assert flat.decision is None and flat.expected_more is None
    assert sq.monitor(np.full(50, 0.5), 0.05, margin=0.1).expected_more is not None
    empty = sq.monitor(np.array([]), 0.05)
    assert empty.stopped_at is None and empty.rate is None and empty.cs == (0.0, 1.0)
    assert "about" in sq.describe(near) and "more votes expected" in sq.describe(near)


def test_bad_arguments_are_refused() -> None:
    for alpha in (0.0, 1.0, float("nan")):
        with pytest.raises(ValueError, match="alpha"):
            sq.monitor([1.0], alpha)
    for margin in (0.0, 0.5, -0.1):
        with pytest.raises(ValueError, match="margin"):
            sq.monitor([1.0], 0.05, margin)
    with pytest.raises(ValueError, match="scores"):
        sq.monitor([1.5], 0.05)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipelines.stats.sequential", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_prints_the_contract_object(tmp_path: Path) -> None:
    rng = np.random.default_rng(14)
    names = rng.choice(
        ["candidate", "baseline", "tie", "both_bad"], p=[0.6, 0.2, 0.1, 0.1], size=500
    )
    path = tmp_path / "votes.txt"
    path.write_text("\n".join(names) + "\n")
    proc = run_cli("--votes", str(path), "--alpha", "0.05", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert set(out) == {"stopped_at", "decision", "rate", "cs", "votes"}
    ref = sq.monitor(sq.parse_votes(names), 0.05)
    assert out == ref.as_contract()
    assert out["decision"] == "candidate" and out["votes"] == 500
    assert out["cs"][0] >= 0.5 and out["stopped_at"] < 500

    short = tmp_path / "short.txt"
    short.write_text("candidate\nbaseline\ntie\n")
    proc = run_cli("--votes", str(short), "--alpha", "0.05", "--margin", "0.1", "--json")
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["stopped_at"] is None
    proc = run_cli("--votes", str(short), "--alpha", "0.05")
    assert proc.returncode == 0 and "no decision yet after 3 votes" in proc.stdout


def test_cli_bad_file_exits_1_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.txt"
    path.write_text("candidate\ntie\nmaybe\n")
    proc = run_cli("--votes", str(path), "--alpha", "0.05", "--json")
    assert proc.returncode == 1 and "line 3" in proc.stderr and proc.stdout == ""
    proc = run_cli("--votes", str(tmp_path / "missing.txt"), "--alpha", "0.05", "--json")
    assert proc.returncode == 1
    proc = run_cli("--votes", str(path), "--alpha", "2", "--json")
    assert proc.returncode == 2 and "alpha" in proc.stderr
