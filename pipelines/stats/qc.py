"""Per-annotator QC of pairwise ratings: gold accuracy, time, left bias, straight-lining.

Input: one row per rating, in submission order (per annotator, the order of the rows is the order
in which the ratings were given; sort by submit time first), with the choice as *shown* on screen
(``left`` / ``right`` / ``tie`` / ``both_bad``, see :mod:`pipelines.stats.pairs`), the seconds
spent, and for gold tasks the right answer (``left`` or ``right``; ``None`` or empty otherwise).

Definitions:
- Gold accuracy = correct / scored gold ratings. "Both bad" on a gold task is neither right nor
  wrong and is not scored; a tie on a gold task is wrong (gold tasks are gross failures, one side is
  clearly better). Wilson interval alongside.
- Flagged = gold accuracy strictly below ``threshold`` with at least ``min_gold`` scored gold
  ratings. With fewer, ``insufficient_gold`` is set and the annotator is not flagged.
- Time per task: median and mean of the seconds spent.
- Left bias: share of ``left`` among ``left``/``right`` choices, two-sided exact binomial test
  against 1/2 (side order is randomised per assignment, so an honest annotator is near 1/2).
- Straight-lining: the longest run of the same consecutive choice and the share of the modal choice.
  Reported (with a warning above ``max_run``), never a reason to exclude on its own.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.stats import binomtest

from .pairs import BOTH_BAD, CHOICES, LEFT, RIGHT, choice_codes, wilson_interval

DEFAULT_THRESHOLD = 0.7
# 10 scored gold ratings: a random clicker (accuracy 1/2) scores >= 0.7 with probability 0.17 there,
# and 0.06 at 20; below 10 the estimate is too noisy to exclude paid work on.
DEFAULT_MIN_GOLD = 10
DEFAULT_MAX_RUN = 15
LEFT_BIAS_ALPHA = 0.001


@dataclass(frozen=True)
class AnnotatorQC:
    """QC statistics of one annotator (NaN where undefined, e.g. no gold seen)."""

    annotator: str
    ratings: int
    gold_scored: int
    gold_correct: int
    gold_accuracy: float
    gold_low: float
    gold_high: float
    median_seconds: float
    mean_seconds: float
    left_share: float
    left_p_value: float
    longest_run: int
    modal_choice: str
    modal_share: float
    insufficient_gold: bool
    flagged: bool
    warnings: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _gold_codes(gold: ArrayLike | None, n: int) -> NDArray[np.int64]:
    """-1 for non-gold rows, else LEFT/RIGHT."""
    if gold is None:
        return np.full(n, -1, dtype=np.int64)
    arr = np.asarray(gold)
    if arr.dtype.kind in "iu":  # already codes: -1 none, LEFT / RIGHT
        codes = arr.astype(np.int64)
        bad = (codes != -1) & (codes != LEFT) & (codes != RIGHT)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"row {i}: a gold answer must be left or right, got {arr[i]!r}")
        return codes
    out = np.full(n, -1, dtype=np.int64)
    for i, g in enumerate(np.asarray(gold, dtype=object)):
        if g is None or (isinstance(g, float) and np.isnan(g)) or g == "" or g == -1:
            continue
        code = g if isinstance(g, int | np.integer) else CHOICES.index(str(g))
        if code not in (LEFT, RIGHT):
            raise ValueError(f"row {i}: a gold answer must be left or right, got {g!r}")
        out[i] = code
    return out


def longest_run(codes: NDArray[np.int64]) -> int:
    """Length of the longest run of equal consecutive values (0 for an empty sequence)."""
    if codes.size == 0:
        return 0
    breaks = np.flatnonzero(np.diff(codes) != 0)
    edges = np.concatenate([[-1], breaks, [codes.size - 1]])
    return int(np.diff(edges).max())


def annotator_qc(
    annotators: ArrayLike,
    choices: ArrayLike,
    seconds: ArrayLike,
    gold_answers: ArrayLike | None = None,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    min_gold: int = DEFAULT_MIN_GOLD,
    max_run: int = DEFAULT_MAX_RUN,
) -> list[AnnotatorQC]:
    """QC rows per annotator (sorted by annotator label) from one row per rating."""
    who = np.asarray(annotators).astype(str)
    code = choice_codes(choices)
    secs = np.asarray(seconds, dtype=np.float64)
    gold = _gold_codes(gold_answers, len(who))
    if not (who.shape == code.shape == secs.shape == gold.shape):
        raise ValueError("annotators, choices, seconds and gold answers need one entry per rating")
    out = []
    names, group = np.unique(who, return_inverse=True)
    order = np.argsort(group.reshape(-1), kind="stable")  # keeps each annotator's rating order
    starts = np.searchsorted(group.reshape(-1)[order], np.arange(len(names) + 1))
    for k, name in enumerate(names):
        rows = order[starts[k] : starts[k + 1]]
        c, s, g = code[rows], secs[rows], gold[rows]
        scored = (g >= 0) & (c != BOTH_BAD)
        correct = int(np.sum(scored & (c == g)))
        n_scored = int(scored.sum())
        gold_iv = wilson_interval(correct, n_scored)
        lr = c[(c == LEFT) | (c == RIGHT)]
        n_left = int(np.sum(lr == LEFT))
        left_p = float(binomtest(n_left, lr.size, 0.5).pvalue) if lr.size else float("nan")
        freq = np.bincount(c, minlength=4)
        modal = int(np.argmax(freq))
        run = longest_run(c)
        insufficient = n_scored < min_gold
        flagged = (not insufficient) and gold_iv.estimate < threshold
        warnings = []
        if flagged:
            warnings.append(f"gold accuracy {gold_iv.estimate:.2f} below {threshold:.2f}")
        if insufficient:
            warnings.append(f"insufficient gold ({n_scored} scored, {min_gold} needed)")
        if lr.size and left_p < LEFT_BIAS_ALPHA:
            warnings.append(f"left bias: {n_left}/{lr.size} left (p = {left_p:.1e})")
        if run > max_run:
            warnings.append(f"straight-lining: {run} identical answers in a row")
        out.append(
            AnnotatorQC(
                annotator=str(name),
                ratings=len(rows),
                gold_scored=n_scored,
                gold_correct=correct,
                gold_accuracy=gold_iv.estimate,
                gold_low=gold_iv.low,
                gold_high=gold_iv.high,
                median_seconds=float(np.median(s)) if s.size else float("nan"),
                mean_seconds=float(np.mean(s)) if s.size else float("nan"),
                left_share=n_left / lr.size if lr.size else float("nan"),
                left_p_value=left_p,
                longest_run=run,
                modal_choice=CHOICES[modal],
                modal_share=float(freq[modal] / len(c)),
                insufficient_gold=insufficient,
                flagged=flagged,
                warnings=tuple(warnings),
            )
        )
    return out


def flagged_annotators(rows: list[AnnotatorQC]) -> set[str]:
    """Labels of the flagged annotators."""
    return {r.annotator for r in rows if r.flagged}


def keep_mask(annotators: ArrayLike, excluded: set[str]) -> NDArray[np.bool_]:
    """Boolean mask of the ratings to keep when ``excluded`` annotators' ratings are left out."""
    who = np.asarray(annotators).astype(str)
    return np.asarray(~np.isin(who, sorted(excluded)))


__all__ = ["AnnotatorQC", "annotator_qc", "flagged_annotators", "keep_mask", "longest_run"]
