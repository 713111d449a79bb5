"""Anytime-valid decisions on one compared pair: a betting confidence sequence for its preference.

Votes. Each vote on a (candidate, baseline) pair is one of ``candidate``, ``baseline``, ``tie``,
``both_bad`` and is scored 1, 0, 1/2, 1/2 (:data:`VOTE_VALUES`): a tie and a "both bad" vote are
half a win each way, the convention of the Bradley–Terry code (``pairs.bt_wins``). The preference
rate ``p`` is the mean score, P(candidate) + (P(tie) + P(both bad)) / 2; "no preference" is
``p = 1/2``. Votes are assumed to be independent draws with a common mean (the guarantee also holds
when the conditional mean given the past stays ``p``).

Confidence sequence. Waudby-Smith & Ramdas (2024), "Estimating means of bounded random variables by
betting", JRSS-B 86(1) 1-27, section 4: the hedged capital process with predictable plug-in
empirical-Bernstein bets (their "hedged capital CS", the default of the authors' ``confseq``
package, ``confseq.betting.hedged_cs``). For a candidate mean ``m`` and ``theta = 1/2``:

    K+_t(m) = prod_{i<=t} (1 + l+_i(m) (x_i - m)),   l+_i(m) = min(l_i, c / m)
    K-_t(m) = prod_{i<=t} (1 - l-_i(m) (x_i - m)),   l-_i(m) = min(l_i, c / (1 - m))
    K_t(m)  = max(theta K+_t(m), (1 - theta) K-_t(m)),       c = 1/2
    l_i     = sqrt(2 log(1 / (alpha theta)) / (s2_{i-1} i log(1 + i)))
    s2_t    = (1/4 + sum_{i<=t} (x_i - mu_i)^2) / (t + 1),  mu_t = (1/2 + sum_{i<=t} x_i) / (t + 1)

The bets use only earlier votes, so under ``m = p`` both products are non-negative martingales and
``theta K+ + (1 - theta) K-`` (which bounds ``K``) is a test martingale: by Ville's inequality
P(exists t: K_t(p) >= 1/alpha) <= alpha. The confidence sequence is ``C_t = {m : K_s(m) < 1/alpha
for all s <= t}`` (the running intersection, valid because the guarantee holds for all ``t`` at
once). ``K+_t`` falls and ``K-_t`` rises with ``m`` (each factor does, truncation included), so
``C_t`` is an interval ``(lo_t, hi_t)``: ``lo_t`` is where ``max_{s<=t} theta K+_s`` drops below
``1/alpha``, ``hi_t`` where ``max_{s<=t} (1 - theta) K-_s`` rises above it.

Decisions at level ``alpha`` (one sequence serves all three, so together they err with probability
at most ``alpha``, however often anyone looks):

- ``candidate``: 1/2 is out of ``C_t`` from below, i.e. ``theta K+_s(1/2) >= 1/alpha`` for some
  ``s <= t``; ``baseline``: the mirror image with ``K-``;
- ``equivalent`` (futility, only with a ``margin`` M): ``C_t`` lies inside ``[1/2 - M, 1/2 + M]``,
  i.e. ``K+`` crossed at ``1/2 - M`` and ``K-`` crossed at ``1/2 + M``.

Decisions are read from the capital at those fixed points (exact, O(t)); the reported interval's
ends are found by bisection on the running maximum of the capital (exact to 1e-8, never narrower
than the true interval), so a reported decision and its interval always agree. When two decisions
start on the same vote, ``candidate``/``baseline`` (a direction is certain) is reported before
``equivalent``.

Several pairs or groups: :func:`monitor_pairs` runs each stream at ``alpha / K`` (Bonferroni), so
every interval and decision of the K streams holds simultaneously with probability ``1 - alpha`` —
what the campaign page and the release gate should use. :func:`e_bh` (Wang & Ramdas 2022) turns the
per-pair e-values (the capital at 1/2, :attr:`SequentialResult.e_value`) into a list of pairs that
differ with false discovery rate ``alpha`` under any dependence: a discovery list, not a gate.

Checked against the paper: ``tests/pipelines/test_stats_sequential.py`` compares the vectorised
capital with a loop transcription of ``confseq.betting.betting_mart`` (hedged, ``trunc_scale=1/2``,
``m_trunc=True``, ``lambda_predmix_eb``) and measures coverage and false decisions by simulation;
``bench/crowd_sequential.py`` runs the full 2 000-campaign check. A one-off run of confseq 0.0.11's
own ``hedged_cs`` (``breaks=1000``, running intersection; the package needs a C++ build, so it is
not a dependency) on 400 votes at alpha 0.05 and 0.01 gave the ends of
``confidence_sequence(resolution=1000)`` to 1e-16 and the capital to 1e-14.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]
Decision = Literal["candidate", "baseline", "equivalent"]

VOTE_VALUES: dict[str, float] = {"candidate": 1.0, "baseline": 0.0, "tie": 0.5, "both_bad": 0.5}
#: Weight of the "candidate better" side of the hedge (the paper's theta).
THETA = 0.5
#: Bet truncation (the paper's c): a bet never risks more than half the capital.
TRUNCATION = 0.5
#: Decision codes of :func:`decision_paths` (0 = undecided).
DECISIONS: tuple[Decision, ...] = ("candidate", "baseline", "equivalent")
_BISECT_TOL = 1e-8
_MAX_EXPECTED = 10**8


def check_alpha(alpha: float) -> float:
    """``alpha`` as a float in (0, 1), or ``ValueError`` (the CLI and the app share this check)."""
    value = float(alpha)
    if not (math.isfinite(value) and 0.0 < value < 1.0):
        raise ValueError(f"alpha must be between 0 and 1 (exclusive), got {alpha}")
    return value


def check_margin(margin: float | None) -> float | None:
    """``margin`` as a float in (0, 1/2), ``None`` kept, or ``ValueError``."""
    if margin is None:
        return None
    value = float(margin)
    if not (math.isfinite(value) and 0.0 < value < 0.5):
        raise ValueError(f"margin must be between 0 and 0.5 (exclusive), got {margin}")
    return value


def parse_votes(lines: Iterable[str]) -> FloatArray:
    """Scores of votes given one per line (names of :data:`VOTE_VALUES`, case and surrounding
    spaces ignored). A bad line raises ``ValueError`` naming its 1-based number."""
    values = []
    for number, line in enumerate(lines, start=1):
        name = line.strip().lower()
        if name not in VOTE_VALUES:
            expected = ", ".join(VOTE_VALUES)
            raise ValueError(f"line {number}: {line.strip()!r} is not a vote (expected {expected})")
        values.append(VOTE_VALUES[name])
    return np.asarray(values, dtype=np.float64)


def as_scores(x: ArrayLike) -> FloatArray:
    """Scores as a float array with time on the last axis, each in [0, 1]."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.size and not (np.all(np.isfinite(arr)) and arr.min() >= 0.0 and arr.max() <= 1.0):
        raise ValueError("vote scores must lie in [0, 1]")
    return arr


def predictable_bets(x: ArrayLike, alpha: float, theta: float = THETA) -> FloatArray:
    """The paper's predictable plug-in bets ``l_i`` (before truncation), shape of ``x``; bet ``i``
    uses votes ``1..i-1`` only."""
    arr = as_scores(x)
    t = np.arange(1, arr.shape[-1] + 1, dtype=np.float64)
    mu = (0.5 + np.cumsum(arr, axis=-1)) / (t + 1.0)
    s2 = (0.25 + np.cumsum((arr - mu) ** 2, axis=-1)) / (t + 1.0)
    prev = np.concatenate([np.full((*arr.shape[:-1], 1), 0.25), s2[..., :-1]], axis=-1)
    return np.asarray(np.sqrt(2.0 * np.log(1.0 / (alpha * theta)) / (prev * t * np.log1p(t))))


def log_capital(x: FloatArray, bets: FloatArray, m: ArrayLike, side: int) -> FloatArray:
    """``log K+_t(m)`` (``side`` = +1) or ``log K-_t(m)`` (``side`` = -1) for every ``t``;
    ``m`` broadcasts against ``x`` (e.g. shape ``(M, 1)`` for a grid of means)."""
    mm = np.asarray(m, dtype=np.float64)
    room = mm if side > 0 else 1.0 - mm
    with np.errstate(divide="ignore"):
        cap = np.where(room > 0, TRUNCATION / np.where(room > 0, room, 1.0), np.inf)
    lam = np.minimum(bets, cap)
    # Each factor is >= 1 - c > 0 by the truncation, so the logarithm is finite.
    return np.asarray(np.cumsum(np.log1p(side * lam * (x - mm)), axis=-1))


def _threshold(alpha: float, theta: float) -> float:
    return math.log(1.0 / (alpha * theta))


def _first_true(flags: NDArray[np.bool_]) -> NDArray[np.int64]:
    """1-based index of the first true entry along the last axis, 0 when none."""
    hit = flags.any(axis=-1)
    return np.where(hit, flags.argmax(axis=-1) + 1, 0).astype(np.int64)


def decision_paths(
    x: ArrayLike, alpha: float, margin: float | None = None
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """For votes ``x`` of shape ``(..., T)`` (a batch of campaigns), the 1-based vote at which the
    sequence first decides (0 = never) and the decision code (index into :data:`DECISIONS` plus 1,
    0 = none). O(T) per campaign: the capital at 1/2 and 1/2 +- margin only."""
    alpha, margin = check_alpha(alpha), check_margin(margin)
    arr = as_scores(x)
    if arr.shape[-1] == 0:
        none = np.zeros(arr.shape[:-1], dtype=np.int64)
        return none, none.copy()
    bets = predictable_bets(arr, alpha)
    up = _threshold(alpha, THETA)
    down = _threshold(alpha, 1.0 - THETA)
    times = [
        _first_true(log_capital(arr, bets, 0.5, +1) >= up),
        _first_true(log_capital(arr, bets, 0.5, -1) >= down),
    ]
    if margin is not None:
        low = _first_true(log_capital(arr, bets, 0.5 - margin, +1) >= up)
        high = _first_true(log_capital(arr, bets, 0.5 + margin, -1) >= down)
        times.append(np.where((low > 0) & (high > 0), np.maximum(low, high), 0))
    big = np.iinfo(np.int64).max
    stacked = np.stack([np.where(t > 0, t, big) for t in times])
    first = stacked.min(axis=0)
    code = stacked.argmin(axis=0) + 1  # ties: the earlier entry (candidate, baseline, equivalent)
    decided = first < big
    return np.where(decided, first, 0), np.where(decided, code, 0)


def _running_max_capital(
    x: FloatArray, bets: FloatArray, m: FloatArray, ends: NDArray[np.int64], side: int
) -> FloatArray:
    """``max_{s <= ends[j]} log K(side)_s(m[j])`` for each probe ``j``."""
    horizon = int(ends.max())
    caps = log_capital(x[None, :horizon], bets[None, :horizon], m[:, None], side)
    mask = np.arange(horizon)[None, :] < ends[:, None]
    return np.asarray(np.where(mask, caps, -np.inf).max(axis=1))


def _bisect(
    g: Callable[[FloatArray], FloatArray], out: FloatArray, inside: FloatArray
) -> FloatArray:
    """Boundary of the monotone ``g`` between ``out`` (g >= 0: excluded) and ``inside`` (g < 0);
    returns the excluded end, within ``_BISECT_TOL`` of the boundary. (False position, Illinois
    variant, was tried: the running maximum's kinks keep it at as many steps as bisection.)"""
    out, inside = out.copy(), inside.copy()
    while np.abs(inside - out).max() > _BISECT_TOL:
        mid = (out + inside) / 2.0
        excl = g(mid) >= 0
        out, inside = np.where(excl, mid, out), np.where(excl, inside, mid)
    return out


def cs_at(
    x: ArrayLike, alpha: float, times: ArrayLike, margin: float | None = None
) -> tuple[FloatArray, FloatArray]:
    """Ends ``(lo, hi)`` of the running-intersection sequence after each of ``times`` (1-based
    vote counts, 0 = before any vote: [0, 1]), to 1e-8 and never narrower than the exact set.
    ``margin`` only adds probe points so that ends agree exactly with the decisions."""
    alpha = check_alpha(alpha)
    arr = as_scores(x)
    asked = np.asarray(times, dtype=np.int64).reshape(-1)
    ends, back = np.unique(asked, return_inverse=True)
    lo, hi = np.zeros(len(ends)), np.ones(len(ends))
    live = ends > 0
    if not live.any():
        return lo[back], hi[back]
    bets = predictable_bets(arr, alpha)
    ends_live = ends[live]
    n_live = len(ends_live)
    points = [0.0, 0.5, 1.0] + ([] if margin is None else [0.5 - margin, 0.5 + margin])
    probes = np.array(sorted(points))
    n_p = len(probes)
    for side, theta, result in ((+1, THETA, lo), (-1, 1.0 - THETA, hi)):
        thr = _threshold(alpha, theta)

        def g(m: FloatArray, side: int = side, thr: float = thr) -> FloatArray:
            return _running_max_capital(arr, bets, m, ends_live, side) - thr

        # All probes at all times in one evaluation: rows probe-major.
        vals = (
            _running_max_capital(
                arr, bets, np.repeat(probes, n_live), np.tile(ends_live, n_p), side
            )
            .reshape(n_p, n_live)
            .T
            - thr
        )  # (times, probes)
        excl = vals >= 0
        if side > 0:  # excluded probes form a lower set: bracket above the largest one
            k = np.where(excl.any(axis=1), n_p - 1 - excl[:, ::-1].argmax(axis=1), -1)
            o, i = np.clip(k, 0, n_p - 1), np.clip(k + 1, 0, n_p - 1)
            settled_value = np.where(k < 0, 0.0, 1.0)
            settled = (k < 0) | (k == n_p - 1)
        else:  # an upper set: bracket below the smallest one
            k = np.where(excl.any(axis=1), excl.argmax(axis=1), n_p)
            o, i = np.clip(k, 0, n_p - 1), np.clip(k - 1, 0, n_p - 1)
            settled_value = np.where(k == n_p, 1.0, 0.0)
            settled = (k == n_p) | (k == 0)
        end = _bisect(g, probes[o], np.where(settled, probes[o], probes[i]))
        result[live] = np.where(settled, settled_value, end)
    return lo[back], hi[back]


def confidence_sequence(
    x: ArrayLike, alpha: float, *, resolution: int = 1000
) -> tuple[FloatArray, FloatArray]:
    """``(lo, hi)`` after every vote, on a grid of ``resolution + 1`` means in [0, 1]: each end is
    the nearest grid point outside the exact interval (conservative by at most ``1/resolution``).
    O(T x resolution); for a few times use :func:`cs_at` (exact)."""
    alpha = check_alpha(alpha)
    arr = as_scores(x)
    if arr.ndim != 1:
        raise ValueError("confidence_sequence takes one stream of votes")
    n = len(arr)
    lo, hi = np.zeros(n), np.ones(n)
    if n == 0:
        return lo, hi
    bets = predictable_bets(arr, alpha)
    grid = np.linspace(0.0, 1.0, resolution + 1)
    step = max(1, 2_000_000 // n)
    for start in range(0, len(grid), step):
        g = grid[start : start + step, None]
        plus = np.maximum.accumulate(log_capital(arr, bets, g, +1), axis=1)
        minus = np.maximum.accumulate(log_capital(arr, bets, g, -1), axis=1)
        lo = np.maximum(lo, np.where(plus >= _threshold(alpha, THETA), g, 0.0).max(axis=0))
        hi = np.minimum(hi, np.where(minus >= _threshold(alpha, 1 - THETA), g, 1.0).min(axis=0))
    return lo, hi


def e_values(x: ArrayLike, alpha: float) -> FloatArray:
    """The test martingale ``theta K+_t(1/2) + (1 - theta) K-_t(1/2)`` after every vote: at any
    stopping time it is an e-value against "no preference" (it bounds the hedged capital)."""
    alpha = check_alpha(alpha)
    arr = as_scores(x)
    bets = predictable_bets(arr, alpha)
    plus = log_capital(arr, bets, 0.5, +1)
    minus = log_capital(arr, bets, 0.5, -1)
    return np.asarray(THETA * np.exp(plus) + (1.0 - THETA) * np.exp(minus))


def e_bh(e: ArrayLike, alpha: float) -> NDArray[np.bool_]:
    """e-Benjamini–Hochberg (Wang & Ramdas 2022): reject the ``k*`` largest e-values, ``k*`` the
    largest ``k`` with ``e_(k) >= K / (alpha k)``. FDR <= ``alpha`` under any dependence."""
    alpha = check_alpha(alpha)
    ev = np.asarray(e, dtype=np.float64).reshape(-1)
    if np.any(np.isnan(ev)) or np.any(ev < 0):
        raise ValueError("e-values must be non-negative numbers")
    k = len(ev)
    reject = np.zeros(k, dtype=bool)
    if k == 0:
        return reject
    order = np.argsort(-ev, kind="stable")
    ranks = np.arange(1, k + 1)
    ok = ev[order] >= k / (alpha * ranks)
    if ok.any():
        reject[order[: int(ranks[ok].max())]] = True
    return reject


@dataclass(frozen=True)
class SequentialResult:
    """Outcome of monitoring one pair after every vote (see the module docstring).

    ``rate``, ``cs`` and ``e_value`` are at ``stopped_at`` (or the last vote when undecided);
    ``current_rate`` / ``current_cs`` at the last vote. ``expected_more``: 0 once decided, else a
    rough forecast of the votes still needed (:func:`expected_more_votes`), ``None`` when no
    decision is in sight (no margin and the rate sits at 1/2)."""

    stopped_at: int | None
    decision: Decision | None
    rate: float | None
    cs: tuple[float, float]
    votes: int
    expected_more: int | None
    e_value: float
    alpha: float
    margin: float | None
    current_rate: float | None
    current_cs: tuple[float, float]

    def as_contract(self) -> dict[str, Any]:
        """The JSON object of ``python -m pipelines.stats.sequential --json``."""
        return {
            "stopped_at": self.stopped_at,
            "decision": self.decision,
            "rate": self.rate,
            "cs": list(self.cs),
            "votes": self.votes,
        }

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["cs"], out["current_cs"] = list(self.cs), list(self.current_cs)
        return out


def _width_scale(n: FloatArray) -> FloatArray:
    """How the interval's half-width shrinks with ``n`` votes: sqrt(log(1 + n) / n), the rate of
    the plug-in bets ``l_i ~ 1 / sqrt(i log i)`` (the paper's section 3.3)."""
    return np.asarray(np.sqrt(np.log1p(n) / n))


def expected_more_votes(
    rate: float, cs: tuple[float, float], votes: int, margin: float | None = None
) -> int | None:
    """Votes still needed, forecast by shrinking the current interval's two half-widths about the
    current rate like :func:`_width_scale` until it leaves 1/2 or fits in the margin band.
    ``None`` when that never happens or lies beyond 10^8 votes. A forecast, not a guarantee."""
    if votes <= 0:
        return None
    lo_w, hi_w = max(rate - cs[0], 0.0), max(cs[1] - rate, 0.0)
    base = float(_width_scale(np.asarray(float(votes))))

    def decided(n: int) -> bool:
        f = float(_width_scale(np.asarray(float(n)))) / base
        lo, hi = rate - lo_w * f, rate + hi_w * f
        if lo >= 0.5 or hi <= 0.5:
            return True
        return margin is not None and lo >= 0.5 - margin and hi <= 0.5 + margin

    if decided(votes):
        return 0
    high = votes
    while not decided(high):
        if high > _MAX_EXPECTED:
            return None
        high *= 2
    low = high // 2 if high > votes else votes
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if decided(mid) else (mid, high)
    return high - votes


def monitor(x: ArrayLike, alpha: float, margin: float | None = None) -> SequentialResult:
    """Monitor one pair's votes (scores, :data:`VOTE_VALUES`) as if someone looked after every
    vote: the first decision, and the rate and interval then. Milliseconds for 10 000 votes."""
    alpha, margin = check_alpha(alpha), check_margin(margin)
    arr = as_scores(x)
    if arr.ndim != 1:
        raise ValueError("monitor takes one stream of votes; see monitor_pairs for several")
    n = len(arr)
    stop, code = (int(v) for v in decision_paths(arr, alpha, margin))
    at = stop if stop else n
    lo, hi = cs_at(arr, alpha, [at, n], margin)
    e = e_values(arr[:at], alpha)
    rate = float(arr[:at].mean()) if at else None
    current = float(arr.mean()) if n else None
    cur_cs = (float(lo[1]), float(hi[1]))
    more = (
        0
        if stop
        else (None if current is None else expected_more_votes(current, cur_cs, n, margin))
    )
    return SequentialResult(
        stopped_at=stop or None,
        decision=DECISIONS[code - 1] if code else None,
        rate=rate,
        cs=(float(lo[0]), float(hi[0])),
        votes=n,
        expected_more=more,
        e_value=float(e[-1]) if at else 1.0,
        alpha=alpha,
        margin=margin,
        current_rate=current,
        current_cs=cur_cs,
    )


def monitor_pairs(
    streams: Mapping[Any, ArrayLike] | Sequence[ArrayLike],
    alpha: float,
    margin: float | None = None,
) -> dict[Any, SequentialResult] | list[SequentialResult]:
    """:func:`monitor` for K pairs or groups at once, each at ``alpha / K`` (Bonferroni): all K
    intervals and decisions hold together with probability ``1 - alpha``. Returns the same shape
    as given (a dict keyed like ``streams``, or a list)."""
    alpha = check_alpha(alpha)
    k = max(len(streams), 1)
    if isinstance(streams, Mapping):
        return {key: monitor(v, alpha / k, margin) for key, v in streams.items()}
    return [monitor(v, alpha / k, margin) for v in streams]


def describe(
    result: SequentialResult,
    *,
    candidate: str = "candidate",
    baseline: str = "baseline",
    family_alpha: float | None = None,
    pairs: int = 1,
) -> str:
    """One line in words for pages, reports and the CLI, e.g. "candidate preferred — certain at
    α = 0.05 after 312 votes". `family_alpha` and `pairs`: the error level of all a campaign's
    decisions together when this pair's sequence ran at family_alpha / pairs (Bonferroni)."""
    alpha = result.alpha if family_alpha is None else family_alpha
    where = f"α = {alpha:g}" + (f" (Bonferroni over {pairs} pairs)" if pairs > 1 else "")
    if result.decision == "candidate":
        return f"{candidate} preferred — certain at {where} after {result.stopped_at} votes"
    if result.decision == "baseline":
        return f"{baseline} preferred — certain at {where} after {result.stopped_at} votes"
    if result.decision == "equivalent":
        return (
            f"no difference larger than the margin {result.margin:g} — certain at {where} "
            f"after {result.stopped_at} votes"
        )
    if result.expected_more is None:
        return f"no decision yet after {result.votes} votes (no decision in sight at this rate)"
    return f"no decision yet: about {result.expected_more} more votes expected"


def _arg(check: Any) -> Any:
    def parse(value: str) -> float:
        try:
            return float(check(float(value)))
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pipelines.stats.sequential --votes FILE --alpha A [--margin M] [--json]``:
    exit 0 decided or not, 1 on an unreadable or bad file (the line named), 2 on bad arguments."""
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.stats.sequential",
        description="Anytime-valid decision on one pair's votes, monitored after every vote.",
    )
    parser.add_argument(
        "--votes", required=True, help="one vote per line: " + ", ".join(VOTE_VALUES)
    )
    parser.add_argument("--alpha", required=True, type=_arg(check_alpha))
    parser.add_argument("--margin", type=_arg(check_margin), default=None)
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    args = parser.parse_args(argv)
    try:
        with open(args.votes, encoding="utf-8") as fh:
            scores = parse_votes(fh.read().splitlines())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        print(f"error: {args.votes}: {exc}", file=sys.stderr)
        return 1
    result = monitor(scores, args.alpha, args.margin)
    if args.json:
        print(json.dumps(result.as_contract()))
    else:
        print(describe(result))
        if result.rate is not None:
            lo, hi = result.cs
            at = result.stopped_at or result.votes
            print(f"rate {result.rate:.3f}, interval [{lo:.3f}, {hi:.3f}] at vote {at}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
