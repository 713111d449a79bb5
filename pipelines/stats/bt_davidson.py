"""Bradley–Terry with a side (home-advantage) term and Davidson ties, by Newton's method.

Model (Davidson 1970, "On extending the Bradley-Terry model to accommodate ties", JASA 65; with
the home-advantage term of Agresti, "Categorical Data Analysis", section 11.6): model ``i`` shown
left against model ``j`` shown right,

    P(left wins)  = exp(theta_i + h) / D
    P(right wins) = exp(theta_j) / D
    P(tie)        = nu exp((theta_i + h + theta_j) / 2) / D,    D = the sum of the three numerators

with ``theta_ref = 0`` (anchored at the reference model), ``h`` the log-odds bonus of the left
side (> 0: raters favour the left image) and ``nu >= 0`` the tie propensity. A "both bad" vote
counts as a tie here (neither side preferred). This is a multinomial logit whose linear predictors
are linear in ``beta = (theta without the reference, h, log nu)``, so the log-likelihood is concave
and Newton's method with step halving converges to the maximum; standard errors come from the
inverse observed information. :mod:`pipelines.stats.bradley_terry` (ties as half wins, no side) is
unchanged and keeps its callers.

Data: ``counts[o, i, j]`` = votes with ``i`` on the left and ``j`` on the right whose outcome is
``o`` (0 left wins, 1 right wins, 2 tie or both bad); :func:`side_counts` builds it from vote rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .pairs import BOTH_BAD, LEFT, RIGHT, TIE, choice_codes

FloatArray = NDArray[np.float64]

OUTCOME_LEFT, OUTCOME_RIGHT, OUTCOME_TIE = 0, 1, 2


def side_counts(
    model_left: ArrayLike, model_right: ArrayLike, choices: ArrayLike, n_models: int
) -> FloatArray:
    """``(3, K, K)`` counts by outcome (left wins, right wins, tie or both bad), left, right."""
    a = np.asarray(model_left, dtype=np.int64)
    b = np.asarray(model_right, dtype=np.int64)
    code = choice_codes(choices)
    if not a.shape == b.shape == code.shape:
        raise ValueError("model_left, model_right and choices need one entry per vote")
    if a.size and (min(a.min(), b.min()) < 0 or max(a.max(), b.max()) >= n_models):
        raise ValueError(f"model indices must be in 0..{n_models - 1}")
    if np.any(a == b):
        raise ValueError("a vote compares a model with itself")
    outcome = np.select(
        [code == LEFT, code == RIGHT, (code == TIE) | (code == BOTH_BAD)], [0, 1, 2]
    )
    out = np.zeros((3, n_models, n_models))
    np.add.at(out, (outcome, a, b), 1.0)
    return out


@dataclass(frozen=True)
class DavidsonFit:
    """Strengths (logits, reference 0), left-side bonus ``home``, tie propensity ``tie`` (nu),
    their standard errors, and the maximised log-likelihood."""

    strengths: FloatArray
    home: float
    tie: float
    reference: int
    strengths_se: FloatArray
    home_se: float
    log_tie_se: float
    log_likelihood: float
    iterations: int
    converged: bool

    def probabilities(self, left: ArrayLike, right: ArrayLike) -> FloatArray:
        """``(..., 3)`` probabilities (left wins, right wins, tie) for the given model pairs."""
        return outcome_probabilities(
            self.strengths[np.asarray(left)], self.strengths[np.asarray(right)], self.home, self.tie
        )


def outcome_probabilities(
    theta_left: ArrayLike, theta_right: ArrayLike, home: float, tie: float
) -> FloatArray:
    """Davidson probabilities ``(..., 3)``: left wins, right wins, tie."""
    tl = np.asarray(theta_left, dtype=np.float64) + home
    tr = np.asarray(theta_right, dtype=np.float64)
    with np.errstate(divide="ignore"):
        log_nu = np.log(tie)
    eta = np.stack([tl, tr, log_nu + (tl + tr) / 2.0], axis=-1)
    eta = eta - eta.max(axis=-1, keepdims=True)
    p = np.exp(eta)
    return np.asarray(p / p.sum(axis=-1, keepdims=True))


def _design(k: int, reference: int) -> FloatArray:
    """``(K, K, 3, P)``: the gradient of each outcome's linear predictor in ``beta``."""
    free = [m for m in range(k) if m != reference]
    p = len(free) + 2
    x = np.zeros((k, k, 3, p))
    for col, m in enumerate(free):
        x[m, :, 0, col] += 1.0  # left wins: theta_i
        x[:, m, 1, col] += 1.0  # right wins: theta_j
        x[m, :, 2, col] += 0.5  # tie: (theta_i + theta_j) / 2
        x[:, m, 2, col] += 0.5
    x[:, :, 0, -2] = 1.0  # h in left wins
    x[:, :, 2, -2] = 0.5  # and half of it in a tie
    x[:, :, 2, -1] = 1.0  # log nu
    return x


def fit_davidson(
    counts: ArrayLike,
    *,
    reference: int = 0,
    ridge: float = 1e-6,
    tol: float = 1e-10,
    max_iter: int = 100,
) -> DavidsonFit:
    """Maximum (ridge-penalised, 1e-6: finite under separation) likelihood fit to ``(3, K, K)``
    counts from :func:`side_counts`."""
    c = np.asarray(counts, dtype=np.float64)
    if c.ndim != 3 or c.shape[0] != 3 or c.shape[1] != c.shape[2]:
        raise ValueError(f"counts must have shape (3, K, K), got {c.shape}")
    if (c < 0).any():
        raise ValueError("counts must be non-negative")
    k = c.shape[1]
    if not 0 <= reference < k:
        raise ValueError(f"reference must be a model index in 0..{k - 1}")
    if c[2].sum() == 0:
        raise ValueError("no ties: the tie propensity is not estimable (use bradley_terry)")
    obs = np.moveaxis(c, 0, -1)  # (K, K, 3)
    n = obs.sum(axis=-1)
    x = _design(k, reference)
    beta = np.zeros(x.shape[-1])

    def objective(b: FloatArray) -> tuple[float, FloatArray]:
        eta = x @ b
        log_p = eta - np.logaddexp.reduce(eta, axis=-1, keepdims=True)
        return float((obs * log_p).sum() - 0.5 * ridge * b @ b), np.exp(log_p)

    obj, p = objective(beta)
    converged, iterations = False, 0
    for iterations in range(1, max_iter + 1):  # noqa: B007 (reported after the loop)
        resid = obs - n[..., None] * p
        grad = np.einsum("ijo,ijop->p", resid, x) - ridge * beta
        mean_x = np.einsum("ijo,ijop->ijp", p, x)
        info = np.einsum("ij,ijo,ijop,ijoq->pq", n, p, x, x) - np.einsum(
            "ij,ijp,ijq->pq", n, mean_x, mean_x
        )
        info += ridge * np.eye(len(beta))
        step = np.linalg.solve(info, grad)
        scale = 1.0
        while True:
            new_obj, new_p = objective(beta + scale * step)
            if new_obj >= obj - 1e-12 * abs(obj) or scale < 1e-8:
                break
            scale /= 2.0
        beta, obj, p = beta + scale * step, new_obj, new_p
        if np.max(np.abs(scale * step)) < tol:
            converged = True
            break
    mean_x = np.einsum("ijo,ijop->ijp", p, x)
    info = np.einsum("ij,ijo,ijop,ijoq->pq", n, p, x, x) - np.einsum(
        "ij,ijp,ijq->pq", n, mean_x, mean_x
    )
    se = np.sqrt(np.maximum(np.diag(np.linalg.inv(info + ridge * np.eye(len(beta)))), 0.0))
    strengths = np.zeros(k)
    strengths_se = np.zeros(k)
    free = [m for m in range(k) if m != reference]
    strengths[free], strengths_se[free] = beta[:-2], se[:-2]
    return DavidsonFit(
        strengths=strengths,
        home=float(beta[-2]),
        tie=float(np.exp(beta[-1])),
        reference=reference,
        strengths_se=strengths_se,
        home_se=float(se[-2]),
        log_tie_se=float(se[-1]),
        log_likelihood=float((obs * np.log(np.maximum(p, 1e-300))).sum()),
        iterations=iterations,
        converged=converged,
    )
