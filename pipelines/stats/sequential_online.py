"""The decisions of :mod:`pipelines.stats.sequential`, updated one vote at a time for many streams.

:class:`OnlineDecisions` holds, for an array of streams (pairs of a campaign, campaigns of a
simulation, or both), the running statistics the predictable bets need and the log capital at the
decision points 1/2 and 1/2 +- margin; :meth:`OnlineDecisions.add` folds in one vote per chosen
stream in O(1). It reproduces :func:`pipelines.stats.sequential.decision_paths` vote for vote
(tested), so a simulation or an assignment loop can ask "is this pair decided?" after every vote
without re-reading the history.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .sequential import THETA, TRUNCATION, check_alpha, check_margin

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


class OnlineDecisions:
    """Running state of ``shape`` independent streams (e.g. ``(campaigns, pairs)``), each tested at
    level ``alpha`` (pass ``alpha / K`` for a Bonferroni correction over K pairs)."""

    def __init__(
        self, shape: int | tuple[int, ...], alpha: float, margin: float | None = None
    ) -> None:
        self.alpha = check_alpha(alpha)
        self.margin = check_margin(margin)
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        self.votes: IntArray = np.zeros(shape, dtype=np.int64)
        self.sums: FloatArray = np.zeros(shape)
        self.sq_dev: FloatArray = np.zeros(shape)
        self.s2: FloatArray = np.full(shape, 0.25)
        # Log capital at (1/2, +), (1/2, -), (1/2 - margin, +), (1/2 + margin, -).
        self.log_cap: FloatArray = np.zeros((4, *shape))
        self.crossed: IntArray = np.zeros((4, *shape), dtype=np.int64)  # vote of first crossing
        self.stopped_at: IntArray = np.zeros(shape, dtype=np.int64)
        self.decision: IntArray = np.zeros(shape, dtype=np.int64)  # 0 none, 1-3 as DECISIONS
        m = margin if margin is not None else 0.0
        self._points = np.array([0.5, 0.5, 0.5 - m, 0.5 + m])
        self._sides = np.array([1.0, -1.0, 1.0, -1.0])
        up = math.log(1.0 / (self.alpha * THETA))
        down = math.log(1.0 / (self.alpha * (1.0 - THETA)))
        self._thresholds = np.array([up, down, up, down])
        self._c = math.log(1.0 / (self.alpha * THETA))

    @property
    def decided(self) -> NDArray[np.bool_]:
        return self.decision > 0

    @property
    def rate(self) -> FloatArray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.asarray(self.sums / self.votes)

    def add(self, index: tuple[ArrayLike, ...] | ArrayLike, x: ArrayLike) -> None:
        """One vote score ``x`` (0, 1/2, 1) for each stream named by ``index`` (a tuple of index
        arrays for a multi-dimensional shape); a stream may appear at most once per call."""
        parts = index if isinstance(index, tuple) else (index,)
        idx = tuple(np.asarray(p, dtype=np.int64) for p in parts)
        xs = np.asarray(x, dtype=np.float64)
        n = self.votes[idx] + 1
        t = n.astype(np.float64)
        lam = np.sqrt(2.0 * self._c / (self.s2[idx] * t * np.log1p(t)))
        for k in range(4 if self.margin is not None else 2):
            m, side = self._points[k], self._sides[k]
            room = m if side > 0 else 1.0 - m
            bet = np.minimum(lam, TRUNCATION / room)
            cap = self.log_cap[k][idx] + np.log1p(side * bet * (xs - m))
            self.log_cap[k][idx] = cap
            newly = (cap >= self._thresholds[k]) & (self.crossed[k][idx] == 0)
            self.crossed[k][idx] = np.where(newly, n, self.crossed[k][idx])
        sums = self.sums[idx] + xs
        mu = (0.5 + sums) / (t + 1.0)
        sq_dev = self.sq_dev[idx] + (xs - mu) ** 2
        self.sums[idx], self.sq_dev[idx] = sums, sq_dev
        self.s2[idx] = (0.25 + sq_dev) / (t + 1.0)
        self.votes[idx] = n
        open_ = self.decision[idx] == 0
        code = np.zeros_like(n)
        c = [self.crossed[k][idx] > 0 for k in range(4)]
        if self.margin is not None:
            code = np.where(c[2] & c[3], 3, code)
        code = np.where(c[1], 2, code)
        code = np.where(c[0], 1, code)
        self.decision[idx] = np.where(open_, code, self.decision[idx])
        self.stopped_at[idx] = np.where(open_ & (code > 0), n, self.stopped_at[idx])
