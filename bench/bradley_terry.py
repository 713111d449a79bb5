"""Bradley–Terry speed: 1 000 000 comparisons among 20 models on 20 000 rated items.

Prints (not a test): building the per-item count tensor, one fit from aggregated counts (goal
< 0.1 s), a 1000-round item bootstrap (goal < 10 s), and next to them scikit-learn's
LogisticRegression on one row per vote (x_i = +1, x_j = -1, no intercept, no penalty; a tie or
both-bad vote is two rows of weight 1/2), one fit timed and 1000 rounds extrapolated, with the
largest difference between the two sets of anchored strengths. Each goal is judged on its one
timed run. Exit 1 when a goal is missed, the fit did not converge, or the strengths differ from
scikit-learn's by more than 1e-4.

    .venv/bin/python bench/bradley_terry.py [--votes N] [--models K] [--items N] [--rounds R]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.support.judge import Judge
from pipelines.stats.bradley_terry import (
    bootstrap_strengths,
    bradley_terry,
    fit_bradley_terry,
)
from pipelines.stats.pairs import LEFT, RIGHT, ItemPairCounts, bt_wins
from pipelines.stats.simulate import honest_choices


def timed(label: str, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    elapsed = time.perf_counter() - start
    print(f"  {label:<52s} {elapsed:8.3f} s")
    return out, elapsed


def sklearn_design(
    a: np.ndarray, b: np.ndarray, choice: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One row per vote (x_a = +1, x_b = -1, y = a won); a tie / both-bad is two half rows."""
    decisive = (choice == LEFT) | (choice == RIGHT)
    half = ~decisive
    rows_a = np.concatenate([a, a[half]])
    rows_b = np.concatenate([b, b[half]])
    y = np.concatenate([np.where(decisive, (choice == LEFT).astype(int), 1), np.zeros(half.sum())])
    w = np.concatenate([np.where(decisive, 1.0, 0.5), np.full(half.sum(), 0.5)])
    x = np.zeros((len(rows_a), k))
    x[np.arange(len(rows_a)), rows_a] = 1.0
    x[np.arange(len(rows_a)), rows_b] = -1.0
    return x, y.astype(int), w


def sklearn_fit(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=np.inf, fit_intercept=False, tol=1e-6, max_iter=1000)
    model.fit(x, y, sample_weight=w)
    coef = model.coef_[0]
    return np.asarray(coef - coef[0])


#: Agreement with scikit-learn's fit of the same likelihood (both stop at tolerance ~1e-6).
MAX_SKLEARN_DIFF = 1e-4


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--votes", type=int, default=1_000_000)
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-sklearn", action="store_true")
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    k = args.models
    truth = rng.normal(0.0, 0.8, k)
    truth -= truth[0]
    item = rng.integers(0, args.items, args.votes)
    a = rng.integers(0, k, args.votes)
    b = (a + rng.integers(1, k, args.votes)) % k
    choice = honest_choices(truth, a, b, rng, tie_rate=0.3)
    print(
        f"{args.votes:,} comparisons, {k} models, {args.items:,} rated items, "
        f"{np.mean(choice > RIGHT):.1%} ties/both-bad; {os.cpu_count()} CPU cores visible"
    )

    print("pipelines.stats (aggregated counts, Newton, batched item bootstrap):")
    counts, t_build = timed(
        "build per-item counts from vote rows", ItemPairCounts.from_votes, item, a, b, choice, k
    )
    agg, t_agg = timed("aggregate counts (all items)", counts.aggregate)
    fit, t_fit = timed("one fit from aggregated counts", fit_bradley_terry, bt_wins(agg))
    timed(
        f"{args.rounds}-round item bootstrap (strengths)",
        bootstrap_strengths,
        counts,
        rounds=args.rounds,
        seed=1,
    )
    report, t_report = timed(
        f"{args.rounds}-round full report (+ pair rates, both-bad)",
        bradley_terry,
        counts,
        rounds=args.rounds,
        seed=1,
    )
    print(
        f"  Newton iterations {fit.iterations}, converged {fit.converged}; max |theta - truth| "
        f"{np.abs(fit.strengths - truth).max():.4f}; mean CI width "
        f"{np.mean([iv.high - iv.low for iv in report.strengths.values()][1:]):.4f}"
    )

    judge = Judge()
    judge.check("Newton fit converged", bool(fit.converged), f"{fit.iterations} iterations")
    if not args.skip_sklearn:
        print("scikit-learn LogisticRegression (one row per vote, lbfgs), same run:")
        design, _ = timed("build design matrix (not counted)", sklearn_design, a, b, choice, k)
        sk, t_sk = timed("one fit", sklearn_fit, *design)
        print(
            f"  {args.rounds} rounds extrapolated {'':<33s} {t_sk * args.rounds:8.0f} s "
            f"(~{t_sk * args.rounds / 60:.0f} min)"
        )
        diff = np.abs(sk - fit.strengths).max()
        print(f"  max |strength difference| ours vs sklearn: {diff:.2e}")
        print(f"  one fit: ours {t_agg + t_fit:.3f} s, sklearn {t_sk:.2f} s")
        judge.check(
            "strengths agree with scikit-learn",
            diff <= MAX_SKLEARN_DIFF,
            f"{diff:.2e} (limit {MAX_SKLEARN_DIFF:.0e})",
        )
    print(f"count build {t_build:.2f} s (once per vote table, not a goal)")
    judge.goal("one fit incl. aggregation", t_agg + t_fit, 0.1, unit="s")
    judge.goal(f"{args.rounds}-round full report (bootstrap)", t_report, 10, unit="s")
    return judge.finish()


if __name__ == "__main__":
    sys.exit(main())
