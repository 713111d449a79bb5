"""Scripted raters for the demo campaign: a documented rule, deterministic by seed.

The demo seeds a pairwise campaign with votes so that its crowd section, QC and agreement have
something to show before any person rates. Every such vote is labelled *simulated* wherever it
appears; this module only decides what each scripted rater answers.

Scripted rater (an attentive person who prefers the cutout closer to the ground truth):
- d = IoU(output A, ground truth) − IoU(output B, ground truth), the two IoUs the campaign stored
  on the task when it was created.
- |d| < ``tie_margin`` (default 0.02): "tie" (the two cutouts are as good as each other).
- otherwise A with probability sigmoid(d / ``scale``) (default scale 0.05: a 0.05 IoU advantage
  wins 73 % of the time, 0.15 wins 95 %), else B.
- A task without both IoUs (an output that could not be scored): "both bad".

Random clicker (what quality control must catch): A, B or tie with probability 1/3 each, whatever
is shown. On gold tasks (one side is clearly better) a tie counts as wrong, so a clicker's gold
accuracy is about 1/3, far below the default 0.7 threshold.

Determinism: each answer draws from its own generator seeded with (seed, rater, task), so it does
not depend on the order in which tasks are served; the side shown on the left (randomised per
assignment by the rating service) only changes which button is pressed, never the answer.
"""

from __future__ import annotations

import math

import numpy as np

A, B, TIE, BOTH_BAD = "a", "b", "tie", "both_bad"
DEFAULT_SCALE = 0.05
DEFAULT_TIE_MARGIN = 0.02
DEFAULT_SEED = 20260


def _rng(seed: int, rater: int, task: int) -> np.random.Generator:
    return np.random.default_rng([seed, rater, task])


def prefer_a_probability(iou_a: float, iou_b: float, *, scale: float = DEFAULT_SCALE) -> float:
    """P(a scripted rater picks A) outside the tie margin: sigmoid((IoU A − IoU B) / scale)."""
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    return 1.0 / (1.0 + math.exp(-(iou_a - iou_b) / scale))


def scripted_answer(
    iou_a: float | None,
    iou_b: float | None,
    *,
    seed: int,
    rater: int,
    task: int,
    scale: float = DEFAULT_SCALE,
    tie_margin: float = DEFAULT_TIE_MARGIN,
) -> str:
    """ "a", "b", "tie" or "both_bad" for one scripted rater on one task (rule in the docstring)."""
    if iou_a is None or iou_b is None or math.isnan(iou_a) or math.isnan(iou_b):
        return BOTH_BAD
    if abs(iou_a - iou_b) < tie_margin:
        return TIE
    p = prefer_a_probability(iou_a, iou_b, scale=scale)
    return A if _rng(seed, rater, task).random() < p else B


def clicker_answer(*, seed: int, rater: int, task: int) -> str:
    """A random clicker's answer: "a", "b" or "tie", 1/3 each."""
    return (A, B, TIE)[int(_rng(seed, rater, task).integers(3))]


def shown_choice(answer: str, *, left_is_a: bool) -> str:
    """The button that gives `answer` when output A is shown on the left iff `left_is_a`."""
    if answer in (TIE, BOTH_BAD):
        return answer
    if answer not in (A, B):
        raise ValueError(f"unknown answer {answer!r}; expected a, b, tie or both_bad")
    return "left" if (answer == A) == left_is_a else "right"
