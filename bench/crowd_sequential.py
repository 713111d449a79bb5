"""Crowd evaluation that stops when the answer is certain: error rates and votes saved.

Prints (not a test), each figure judged against its goal:

1. 2 000 simulated campaigns between equal models (20 % ties), monitored after every vote for
   2 000 votes: share that ever decided "candidate" or "baseline" with the betting confidence
   sequence (goal <= alpha = 0.05), and beside it the naive rule — a percentile bootstrap interval
   (100 resamples) recomputed after every vote from vote 10 on, stopping when it excludes 1/2.
2. 2 000 campaigns at a true preference of 0.60 (margin 0.05, horizon 5 000 votes): share that
   decided "candidate" (goal >= 95 %), median votes to the decision.
3. A 6-version campaign (15 pairs; strengths 0, 0, 0.5, 1.0, 1.6, 2.3 logits: one re-release of
   equal quality, the rest apart), every pair at alpha / 15 with margin 0.1, voting until every
   pair is decided: uniform assignment vs adaptive (:mod:`pipelines.stats.routing`, 10 % uniform
   control stratum), 200 campaigns each. Goal: the adaptive median >= 30 % fewer votes, with a
   share of campaigns holding any wrong decision <= alpha for both.
4. ``monitor()`` on one pair's 10 000 votes, 7 times (every run judged: goal < 100 ms).

Exit 1 on a missed goal (``make bench BENCH=crowd_sequential`` writes
``bench/results/crowd_sequential.txt``).

    .venv/bin/python bench/crowd_sequential.py [--campaigns 2000] [--routed 200] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import binomtest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.support.judge import Judge  # noqa: E402
from pipelines.stats import routing  # noqa: E402
from pipelines.stats.sequential import decision_paths, monitor  # noqa: E402
from pipelines.stats.sequential_online import OnlineDecisions  # noqa: E402

ALPHA = 0.05
TIE_RATE = 0.2
STRENGTHS = np.array([0.0, 0.0, 0.5, 1.0, 1.6, 2.3])
ROUTED_MARGIN = 0.1
CONTROL_SHARE = 0.1
MAX_ROUTED_VOTES = 200_000
#: monitor() runs on page-building jobs: tens of milliseconds at most for a pair's 10 000 votes.
MONITOR_GOAL_S = 0.1


def vote_probs(s: np.ndarray) -> np.ndarray:
    """P(score 0, 1/2, 1) at preference ``s``: ties most likely between close models, as in
    :mod:`pipelines.stats.simulate` (P(tie) = 4 tie_rate s (1 - s))."""
    tie = 4 * TIE_RATE * s * (1 - s)
    return np.stack([1 - s - tie / 2, tie, s - tie / 2], axis=-1)


def draw(rng: np.random.Generator, shape: tuple[int, int], s: float) -> np.ndarray:
    return rng.choice([0.0, 0.5, 1.0], size=shape, p=vote_probs(np.asarray(s)))


def naive_bootstrap_peeking(x: np.ndarray, rng: np.random.Generator, rounds: int = 100) -> float:
    """Share of campaigns where a percentile bootstrap interval, recomputed after every vote from
    vote 10 on, ever excludes 1/2. Resampling t votes of three values is a multinomial draw of the
    three counts, done for all campaigns and rounds at once."""
    n_camp, horizon = x.shape
    ever = np.zeros(n_camp, dtype=bool)
    ones = np.cumsum(x == 1.0, axis=1)
    halves = np.cumsum(x == 0.5, axis=1)
    lo_q, hi_q = int(0.025 * rounds), int(np.ceil(0.975 * rounds)) - 1
    for t in range(10, horizon + 1):
        c1, ch = ones[:, t - 1, None], halves[:, t - 1, None]
        y1 = rng.binomial(t, np.broadcast_to(c1 / t, (n_camp, rounds)))
        rest = np.maximum(t - c1, 1)
        yh = rng.binomial(t - y1, np.broadcast_to(np.minimum(ch / rest, 1.0), (n_camp, rounds)))
        means = np.sort((y1 + 0.5 * yh) / t, axis=1)
        ever |= (means[:, lo_q] > 0.5) | (means[:, hi_q] < 0.5)
    return float(ever.mean())


def route_campaigns(
    n_camp: int, adaptive: bool, rng: np.random.Generator
) -> tuple[np.ndarray, float, int]:
    """Votes until every pair of each campaign is decided; share of campaigns with a wrong
    decision; campaigns cut off at the vote cap."""
    k = len(STRENGTHS)
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
    s = np.array([1 / (1 + np.exp(STRENGTHS[i] - STRENGTHS[j])) for i, j in pairs])
    probs = vote_probs(s)
    n_pairs = len(pairs)
    state = OnlineDecisions((n_camp, n_pairs), ALPHA / n_pairs, ROUTED_MARGIN)
    total = np.zeros(n_camp, dtype=np.int64)
    running = np.ones(n_camp, dtype=bool)
    rows = np.arange(n_camp)
    while running.any() and total.max() < MAX_ROUTED_VOTES:
        live = rows[running]
        if adaptive:
            pr = routing.priorities_from_sd(
                state.votes[live], np.sqrt(state.s2[live]), state.decided[live]
            )
            inf = np.isinf(pr)
            weights = np.where(inf.any(axis=1, keepdims=True), inf.astype(float), pr)
            cum = np.cumsum(weights, axis=1)
            u = rng.random(len(live)) * cum[:, -1]
            chosen = np.minimum((cum < u[:, None]).sum(axis=1), n_pairs - 1)
            control = rng.random(len(live)) < CONTROL_SHARE
            chosen = np.where(control, rng.integers(n_pairs, size=len(live)), chosen)
        else:
            chosen = rng.integers(n_pairs, size=len(live))
        u = rng.random(len(live))
        cdf = np.cumsum(probs[chosen], axis=1)
        votes = np.array([0.0, 0.5, 1.0])[(u[:, None] > cdf[:, :2]).sum(axis=1)]
        state.add((live, chosen), votes)
        total[live] += 1
        running[live] = ~state.decided[live].all(axis=1)
    d = state.decision
    wrong = (
        ((d == 1) & (s <= 0.5))
        | ((d == 2) & (s >= 0.5))
        | ((d == 3) & (np.abs(s - 0.5) >= ROUTED_MARGIN))
    )
    return total, float(wrong.any(axis=1).mean()), int(running.sum())


def run(args: argparse.Namespace) -> int:
    rng = np.random.default_rng(args.seed)
    judge = Judge()
    start = time.perf_counter()

    print(f"1. equal models: {args.campaigns} campaigns x 2000 votes, alpha = {ALPHA}")
    false, naive = 0, []
    for chunk in np.array_split(np.arange(args.campaigns), max(1, args.campaigns // 250)):
        x = draw(rng, (len(chunk), 2000), 0.5)
        stop, _ = decision_paths(x, ALPHA)
        false += int((stop > 0).sum())
        naive.append(naive_bootstrap_peeking(x, rng) * len(chunk))
    rate, naive_rate = false / args.campaigns, sum(naive) / args.campaigns
    ci = binomtest(false, args.campaigns).proportion_ci(0.95, method="exact")
    print(
        f"   false decisions, betting sequence checked after every vote: {rate:.2%} "
        f"(95% CI {ci.low:.2%}-{ci.high:.2%}); naive bootstrap with peeking: {naive_rate:.2%}"
    )
    judge.goal("false decisions, equal models", 100 * rate, 100 * ALPHA, unit="%")

    print(f"   ({time.perf_counter() - start:.0f} s)")
    print(f"2. true preference 0.60: {args.campaigns} campaigns, margin 0.05, up to 5000 votes")
    codes, stops = [], []
    for chunk in np.array_split(np.arange(args.campaigns), max(1, args.campaigns // 250)):
        stop, code = decision_paths(draw(rng, (len(chunk), 5000), 0.6), ALPHA, 0.05)
        codes.append(code)
        stops.append(stop)
    code, stop = np.concatenate(codes), np.concatenate(stops)
    right = float(np.mean(code == 1))
    print(
        f"   right decision (candidate): {right:.2%}; "
        f"wrong direction {np.mean(code == 2):.2%}; median votes {np.median(stop[code == 1]):.0f} "
        f"(p90 {np.percentile(stop[code == 1], 90):.0f})"
    )
    judge.goal("right decisions at a preference of 0.60", 100 * right, 95, "higher", "%")

    print(f"   ({time.perf_counter() - start:.0f} s)")
    print(
        f"3. 6 versions, 15 pairs at alpha/15, margin {ROUTED_MARGIN}: votes until every pair "
        f"is decided, {args.routed} campaigns per policy"
    )
    results = {}
    for name, adaptive in (("uniform", False), ("adaptive", True)):
        total, wrong, cut = route_campaigns(args.routed, adaptive, rng)
        results[name] = (total, wrong)
        spread = f"p10 {np.percentile(total, 10):.0f}, p90 {np.percentile(total, 90):.0f}"
        print(
            f"   {name:<8s} median {np.median(total):6.0f} votes ({spread}); campaigns with a "
            f"wrong decision {wrong:.1%}; {cut} cut off at {MAX_ROUTED_VOTES} votes"
        )
        judge.goal(f"{name}: campaigns with a wrong decision", 100 * wrong,
                   100 * ALPHA, unit="%")  # fmt: skip
        judge.check(f"{name}: every campaign decided within {MAX_ROUTED_VOTES} votes", cut == 0)
    saved = 1 - np.median(results["adaptive"][0]) / np.median(results["uniform"][0])
    print(f"   adaptive needs {saved:.0%} fewer votes than uniform (medians)")
    judge.goal("votes saved by adaptive assignment", 100 * saved, 30, "higher", "%")
    votes = draw(rng, (1, 10_000), 0.52)[0]
    times = []
    for _ in range(7):
        t0 = time.perf_counter()
        monitor(votes, ALPHA, 0.05)
        times.append(time.perf_counter() - t0)
    print(f"4. monitor() on 10000 votes, 7 runs: {' '.join(f'{t * 1000:.1f}' for t in times)} ms")
    judge.goal("monitor() on 10000 votes, every run (max)", max(times) * 1000,
               MONITOR_GOAL_S * 1000, unit="ms")  # fmt: skip
    print(f"({time.perf_counter() - start:.0f} s)")
    return judge.finish()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--campaigns", type=int, default=2000)
    parser.add_argument("--routed", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
