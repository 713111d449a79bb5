"""pipelines.stats.routing and sequential_online: priorities, sampling, online decisions."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.stats import routing
from pipelines.stats.sequential import decision_paths
from pipelines.stats.sequential_online import OnlineDecisions

pytestmark = pytest.mark.no_services


def test_online_decisions_match_the_batch_paths() -> None:
    rng = np.random.default_rng(0)
    p = np.array([0.5, 0.62, 0.35, 0.5, 0.55])
    x = np.stack([rng.choice([0.0, 0.5, 1.0], size=1500, p=[1 - q - 0.1, 0.2, q - 0.1]) for q in p])
    for margin in (None, 0.1):
        online = OnlineDecisions(len(p), 0.05, margin)
        for t in range(x.shape[1]):
            online.add(np.arange(len(p)), x[:, t])
        stop, code = decision_paths(x, 0.05, margin)
        np.testing.assert_array_equal(online.stopped_at, stop)
        np.testing.assert_array_equal(online.decision, code)
        np.testing.assert_allclose(online.rate, x.mean(axis=1))
    # Two-dimensional state, uneven arrival: each stream still matches its own batch path.
    grid = OnlineDecisions((2, 3), 0.05, 0.1)
    streams: dict[tuple[int, int], list[float]] = {}
    for _ in range(3000):
        i, j = int(rng.integers(2)), int(rng.integers(3))
        v = float(rng.choice([0.0, 0.5, 1.0], p=[0.2, 0.2, 0.6] if i else [0.4, 0.2, 0.4]))
        grid.add((np.array([i]), np.array([j])), np.array([v]))
        streams.setdefault((i, j), []).append(v)
    for (i, j), votes in streams.items():
        stop, code = decision_paths(np.array(votes), 0.05, 0.1)
        assert (grid.stopped_at[i, j], grid.decision[i, j]) == (stop, code)


def test_priorities_shrink_with_votes_and_vanish_once_decided() -> None:
    votes = np.array([0, 10, 100, 100, 100])
    means = np.array([0.0, 0.5, 0.5, 0.5, 0.9])
    sums = votes * means
    # Arms 2 and 3 have the same mean; arm 3's votes are all ties (no spread).
    sq = np.array([0.0, 5.0, 50.0, 25.0, 85.0])
    decided = np.array([False, False, False, False, True])
    pr = routing.priorities(votes, sums, sq, decided)
    assert np.isinf(pr[0]) and pr[4] == 0.0
    assert pr[1] > pr[2] > pr[3] > 0
    sd = routing.score_sd(votes, sums, sq)
    assert sd[2] == pytest.approx(np.sqrt((0.25 + 25.0) / 101))
    with pytest.raises(ValueError):
        routing.priorities([-1], [0], [0], [False])


def test_pick_serves_unvoted_arms_then_follows_priority_and_keeps_a_control_stratum() -> None:
    rng = np.random.default_rng(1)
    assert routing.pick([np.inf, 0.3, np.inf], rng, control_share=0.0).arm in (0, 2)
    pr = np.array([0.0, 1.0, 3.0, 0.0])
    picks = [routing.pick(pr, rng, control_share=0.2) for _ in range(20000)]
    arms = np.array([p.arm for p in picks if p is not None])
    control = np.array([p.control for p in picks if p is not None])
    assert abs(control.mean() - 0.2) < 0.02
    # Control tasks are uniform over all arms, decided ones included.
    assert np.allclose(np.bincount(arms[control], minlength=4) / control.sum(), 0.25, atol=0.03)
    routed = np.bincount(arms[~control], minlength=4) / (~control).sum()
    assert routed[0] == routed[3] == 0.0 and routed[2] == pytest.approx(0.75, abs=0.02)
    assert routing.pick([0.0, 0.0], rng, control_share=0.0) is None


def test_allocate_fills_the_widest_open_arms_first() -> None:
    rng = np.random.default_rng(2)
    votes = np.array([10, 40, 40, 5])
    sums = votes * 0.5
    sq = votes * 0.5  # scores 0 and 1 half each: variance 1/4
    decided = np.array([False, False, False, True])
    arms, control = routing.allocate(votes, sums, sq, decided, 60, rng, control_share=0.0)
    counts = np.bincount(arms, minlength=4)
    assert counts[3] == 0 and not control.any() and len(arms) == 60
    final = votes + counts
    # Water-filling: the open arms end within one vote of each other.
    assert final[:3].max() - final[:3].min() <= 1
    arms, _ = routing.allocate(votes, sums, sq, [True] * 4, 10, rng, control_share=0.0)
    assert len(arms) == 0
