"""Which metric predicts people: how often a metric prefers the side of a pair that people chose.

Inputs are per rated item (one pairwise task: an item under a pair of runs, in an instance-lift
campaign one ground-truth instance of the item):

* **People's side.** The decisive votes of the item (``a`` or ``b``) decide: the side with more
  of them is the side people preferred. Tie and both-bad votes count for neither side. An item
  whose decisive votes are equal (including none at all: only ties or both-bad) is *not decided*
  and is left out of every share — people gave no preference a metric could agree with.
* **A metric's side.** The side with the better value in the registry's direction (higher or
  lower is better). Equal values, or a value missing on either side (an output the metric could
  not score), make the metric *abstain* on that item.
* **Agreement share** of a metric = (agreements + ½ · abstentions) / decided items. Why half a
  point for an abstention, not leaving the item out: every metric is then judged on the same
  items, so shares compare; and a metric that cannot tell the two sides apart does as well as a
  coin there, no better (a metric that abstains nearly everywhere would otherwise score 100 % on
  the few items it speaks on).

The interval is the seeded percentile bootstrap over decided items (`pipelines.stats.bootstrap`:
the unit that was sampled is the item, with all its votes), one shared draw for every metric, so
the difference between the best metric and each other one also has a paired interval
(``vs_best``). Metrics are ranked by share, highest first (ties by name).

Codes stored per item and metric (so that campaigns can be pooled later without the database):
2 = agrees, 1 = abstains, 0 = disagrees; the share is their mean divided by 2.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .bootstrap import (
    DEFAULT_LEVEL,
    DEFAULT_ROUNDS,
    Seed,
    bootstrap_mean_samples,
    percentile_interval,
)

AGREE, ABSTAIN, DISAGREE = 2, 1, 0
A_SIDE, B_SIDE, UNDECIDED = 1, -1, 0


@dataclass(frozen=True)
class MetricAgreement:
    """One metric's agreement with people over the decided items."""

    metric: str
    share: float
    low: float
    high: float
    n: int
    agree: int
    disagree: int
    abstain: int
    rank: int
    # Best metric's share minus this one's, with its paired interval (None for the best itself).
    vs_best: tuple[float, float, float] | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "share": self.share,
            "low": self.low,
            "high": self.high,
            "n": self.n,
            "agree": self.agree,
            "disagree": self.disagree,
            "abstain": self.abstain,
            "rank": self.rank,
            "vs_best": None if self.vs_best is None else list(self.vs_best),
        }


def people_side(a_votes: ArrayLike, b_votes: ArrayLike) -> NDArray[np.int64]:
    """Per item: 1 when people preferred A (more A than B votes), -1 for B, 0 undecided."""
    a = np.asarray(a_votes, dtype=np.int64)
    b = np.asarray(b_votes, dtype=np.int64)
    if a.shape != b.shape:
        raise ValueError(f"vote arrays differ in shape: {a.shape} vs {b.shape}")
    if (a < 0).any() or (b < 0).any():
        raise ValueError("vote counts must not be negative")
    return np.sign(a - b).astype(np.int64)


def metric_side(
    values_a: ArrayLike, values_b: ArrayLike, *, lower_is_better: bool
) -> NDArray[np.int64]:
    """Per item: 1 when the metric prefers A, -1 for B, 0 when it abstains (equal values, or
    a missing / non-finite value on either side)."""
    va = np.asarray(values_a, dtype=np.float64)
    vb = np.asarray(values_b, dtype=np.float64)
    if va.shape != vb.shape:
        raise ValueError(f"value arrays differ in shape: {va.shape} vs {vb.shape}")
    diff = vb - va if lower_is_better else va - vb
    side = np.sign(diff)
    side[~np.isfinite(diff)] = 0
    return side.astype(np.int64)


def item_codes(people: ArrayLike, metric: ArrayLike) -> NDArray[np.int64]:
    """Codes (2 agree, 1 abstain, 0 disagree) of one metric on the DECIDED items of `people`."""
    p = np.asarray(people, dtype=np.int64)
    m = np.asarray(metric, dtype=np.int64)
    decided = p != UNDECIDED
    p, m = p[decided], m[decided]
    return np.where(m == 0, ABSTAIN, np.where(m == p, AGREE, DISAGREE)).astype(np.int64)


def agreement_table(
    codes: Mapping[str, ArrayLike],
    *,
    rounds: int = DEFAULT_ROUNDS,
    level: float = DEFAULT_LEVEL,
    seed: Seed = 0,
) -> list[MetricAgreement]:
    """Ranked agreement of every metric from its per-item codes (same decided items for all).

    Empty list when there is no decided item (nothing to judge the metrics on)."""
    names = list(codes)
    if not names:
        return []
    mat = np.column_stack([np.asarray(codes[k], dtype=np.int64) for k in names])
    if mat.ndim != 2:
        raise ValueError("codes must be one 1-D array per metric")
    if not np.isin(mat, (AGREE, ABSTAIN, DISAGREE)).all():
        raise ValueError("codes must be 0 (disagree), 1 (abstain) or 2 (agree)")
    n = mat.shape[0]
    if n == 0:
        return []
    scores = mat.astype(np.float64) / 2.0
    shares = scores.mean(axis=0)
    samples = bootstrap_mean_samples(scores, rounds=rounds, seed=seed).reshape(rounds, len(names))
    bounds = percentile_interval(samples, level)
    order = sorted(range(len(names)), key=lambda k: (-shares[k], names[k]))
    best = order[0]
    diff_bounds = percentile_interval(samples[:, [best]] - samples, level)
    out = []
    for rank, k in enumerate(order, start=1):
        col = mat[:, k]
        vs = None
        if k != best:
            vs = (float(shares[best] - shares[k]), float(diff_bounds[0, k]),
                  float(diff_bounds[1, k]))  # fmt: skip
        out.append(
            MetricAgreement(
                metric=names[k],
                share=float(shares[k]),
                low=float(bounds[0, k]),
                high=float(bounds[1, k]),
                n=n,
                agree=int((col == AGREE).sum()),
                disagree=int((col == DISAGREE).sum()),
                abstain=int((col == ABSTAIN).sum()),
                rank=rank,
                vs_best=vs,
            )
        )
    return out


def pool_codes(parts: Sequence[Mapping[str, Sequence[int]]]) -> dict[str, NDArray[np.int64]]:
    """Concatenate several campaigns' codes over the metrics they ALL carry (a metric missing
    from one campaign is left out of the pool, so every share rests on the same items)."""
    parts = [p for p in parts if p]
    if not parts:
        return {}
    common = [k for k in parts[0] if all(k in p for p in parts[1:])]
    return {k: np.concatenate([np.asarray(p[k], dtype=np.int64) for p in parts]) for k in common}


def disagreements(
    people: ArrayLike,
    a_votes: ArrayLike,
    b_votes: ArrayLike,
    metric: ArrayLike,
    gap: ArrayLike,
    *,
    limit: int = 12,
) -> list[int]:
    """Indices of the items where a metric and people disagree most, strongest first.

    Strength: people's margin (|A − B| decisive votes over all decisive ones: 5-0 is stronger
    than 3-2), then the number of decisive votes, then the metric's own gap |value A − value B|
    (a metric confidently wrong before one that barely preferred the other side)."""
    p = np.asarray(people, dtype=np.int64)
    m = np.asarray(metric, dtype=np.int64)
    a = np.asarray(a_votes, dtype=np.float64)
    b = np.asarray(b_votes, dtype=np.float64)
    g = np.nan_to_num(np.abs(np.asarray(gap, dtype=np.float64)), nan=0.0)
    wrong = np.flatnonzero((p != UNDECIDED) & (m != 0) & (m != p))
    decisive = a + b
    margin = np.abs(a - b) / np.maximum(decisive, 1.0)
    ranked = sorted(wrong.tolist(), key=lambda i: (-margin[i], -decisive[i], -g[i], i))
    return ranked[:limit]


def sentence(rows: Sequence[Mapping[str, Any]], labels: Mapping[str, str], *, top: int = 2) -> str:
    """'boundary IoU agreed with people on 74 % [68, 80] of 212 items, IoU on 61 % [55, 67]'."""
    if not rows:
        return "no decided item yet: no metric can be compared with people"
    parts = []
    for i, r in enumerate(rows[:top]):
        name = labels.get(r["metric"], r["metric"])
        verb = "agreed with people on " if i == 0 else "on "
        pct = f"{100 * r['share']:.0f} % [{100 * r['low']:.0f}, {100 * r['high']:.0f}]"
        text = f"{name} {verb}{pct}"
        if i == 0:
            text += f" of {r['n']} decided items"
        parts.append(text)
    return ", ".join(parts)


__all__ = ["ABSTAIN", "AGREE", "DISAGREE", "MetricAgreement", "agreement_table", "disagreements",
           "item_codes", "metric_side", "people_side", "pool_codes", "sentence"]  # fmt: skip


def codes_pack(codes: Mapping[str, ArrayLike]) -> bytes:
    """A campaign's codes as compact bytes (a JSON line of metric → length, then one byte per
    code, zlib-compressed): stored beside its report, not inside it, so a page reading the report
    never parses a code per item."""
    arrays = {m: np.asarray(c, dtype=np.uint8) for m, c in codes.items()}
    header = json.dumps({m: int(a.size) for m, a in arrays.items()}).encode()
    return zlib.compress(header + b"\n" + b"".join(a.tobytes() for a in arrays.values()))


def codes_unpack(data: bytes | memoryview) -> dict[str, NDArray[np.int64]]:
    """`codes_pack`'s bytes back as {metric: codes}; empty bytes are no codes."""
    if not data:
        return {}
    header, _, body = zlib.decompress(bytes(data)).partition(b"\n")
    out, start = {}, 0
    for metric, size in json.loads(header).items():
        out[metric] = np.frombuffer(body, dtype=np.uint8, count=size, offset=start).astype(np.int64)
        start += size
    return out
