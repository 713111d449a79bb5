"""Inter-rater agreement: Krippendorff's alpha, Fleiss' kappa, Dawid–Skene annotator confusions.

Pairwise choices must be mapped to run identity before agreement is computed (e.g. 0 = run A better,
1 = run B better, 2 = tie, 3 = both bad), otherwise the randomised side order would look like
disagreement. Units are rating tasks (item + pair of runs).

Krippendorff's alpha (Krippendorff 2011, "Computing Krippendorff's Alpha-Reliability"):
reliability data = matrix raters x units, NaN = missing. Units with fewer than two values are not
pairable and are dropped. Coincidences o_ck = sum_u (number of c-k pairs of values from different
raters in u) / (m_u - 1); n_c = sum_k o_ck; n = sum_c n_c.
alpha = 1 - (n - 1) * sum_ck o_ck d_ck / sum_ck n_c n_k d_ck, with squared differences d_ck:
nominal 1[c != k]; ordinal (sum_{g=c..k} n_g - (n_c + n_k) / 2)^2 over the ordered values observed;
interval (c - k)^2. When every pairable value is the same, alpha is undefined (0/0): NaN.

Fleiss' kappa (Fleiss 1971): table items x categories of counts, every item rated by the same
number of raters m. P_i = (sum_j n_ij^2 - m) / (m (m - 1)); P_bar = mean P_i;
p_j = sum_i n_ij / (N m); P_e = sum_j p_j^2; kappa = (P_bar - P_e) / (1 - P_e).
Same formula as statsmodels'
``fleiss_kappa(method="fleiss")``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .bootstrap import FloatArray

Level = Literal["nominal", "ordinal", "interval"]


def _value_counts(data: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Per-unit counts of each observed value ``(units, V)`` and the sorted values ``(V,)``."""
    observed = ~np.isnan(data)
    values = np.unique(data[observed])
    counts = np.zeros((data.shape[1], len(values)))
    rater_idx, unit_idx = np.nonzero(observed)
    codes = np.searchsorted(values, data[rater_idx, unit_idx])
    np.add.at(counts, (unit_idx, codes), 1.0)
    return counts, values


def coincidence_matrix(reliability_data: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Krippendorff's coincidence matrix ``o`` (V x V) and its value labels, pairable units only."""
    data = np.asarray(reliability_data, dtype=np.float64)
    if data.ndim != 2:
        raise ValueError("reliability data must be a 2-D matrix raters x units (NaN = missing)")
    counts, values = _value_counts(data)
    return coincidence_from_counts(counts), values


def coincidence_from_counts(counts: ArrayLike) -> FloatArray:
    """Krippendorff's coincidence matrix from per-unit value counts ``(units, V)``."""
    counts = np.asarray(counts, dtype=np.float64)
    m = counts.sum(axis=1)
    pairable = m >= 2
    c = counts[pairable]
    weights = 1.0 / (m[pairable] - 1.0)
    return np.asarray((c * weights[:, None]).T @ c - np.diag((c * weights[:, None]).sum(axis=0)))


#: Why an agreement statistic is absent: with one label (or rating) per item there is no pair of
#: labels to agree or disagree, so agreement is undefined — never 1.00.
ONE_LABEL_PER_ITEM = "not measurable (one label per item)"
NO_LABELS = "not measurable (no labels yet)"
NO_VARIATION = "not measurable (every label is the same value)"


def not_measurable_reason(labels_per_item: ArrayLike) -> str | None:
    """Why agreement over items with these label counts is undefined, or None when at least one
    item has two or more labels (the only items agreement is measured on)."""
    m = np.asarray(labels_per_item, dtype=np.float64)
    if m.size == 0 or not np.any(m > 0):
        return NO_LABELS
    if not np.any(m >= 2):
        return ONE_LABEL_PER_ITEM
    return None


def krippendorff_alpha(reliability_data: ArrayLike, level: Level = "nominal") -> float:
    """Krippendorff's alpha for a raters x units matrix with NaN for missing ratings."""
    o, values = coincidence_matrix(reliability_data)
    return _alpha(o, values, level)


def krippendorff_alpha_from_counts(
    counts: ArrayLike, values: ArrayLike, level: Level = "nominal"
) -> float:
    """Krippendorff's alpha from per-unit value counts ``(units, V)`` (a ``GROUP BY unit, value``
    of the ratings) with the value of each column; values nobody gave are dropped, as the
    reliability-matrix form never sees them."""
    table = np.asarray(counts, dtype=np.float64)
    vals = np.asarray(values, dtype=np.float64)
    if table.ndim != 2 or table.shape[1] != len(vals):
        raise ValueError("counts must be units x values with one column per value")
    used = table.sum(axis=0) > 0
    return _alpha(coincidence_from_counts(table[:, used]), vals[used], level)


def _alpha(o: FloatArray, values: FloatArray, level: Level) -> float:
    n_c = o.sum(axis=1)
    n = n_c.sum()
    if n < 2:
        return float("nan")
    if level == "nominal":
        delta = 1.0 - np.eye(len(values))
    elif level == "ordinal":
        cum = np.concatenate([[0.0], np.cumsum(n_c)])
        lo = np.minimum.outer(np.arange(len(values)), np.arange(len(values)))
        hi = np.maximum.outer(np.arange(len(values)), np.arange(len(values)))
        between = cum[hi + 1] - cum[lo]  # sum of n_g for g from c to k inclusive
        delta = (between - (n_c[:, None] + n_c[None, :]) / 2.0) ** 2
    elif level == "interval":
        delta = np.subtract.outer(values, values) ** 2
    else:
        raise ValueError(f"level must be nominal, ordinal or interval, got {level!r}")
    expected = float(n_c @ delta @ n_c)
    if expected == 0.0:
        return float("nan")
    return float(1.0 - (n - 1.0) * float((o * delta).sum()) / expected)


def ratings_to_table(ratings: ArrayLike, n_categories: int | None = None) -> FloatArray:
    """Items x categories counts from an items x raters matrix of codes 0..C-1 (NaN = missing)."""
    arr = np.asarray(ratings, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError("ratings must be items x raters")
    observed = ~np.isnan(arr)
    codes = arr[observed].astype(np.int64)
    cats = int(n_categories if n_categories is not None else (codes.max() + 1 if codes.size else 0))
    table = np.zeros((arr.shape[0], cats))
    np.add.at(table, (np.nonzero(observed)[0], codes), 1.0)
    return table


def equal_rater_items(table: ArrayLike, raters: int | None = None) -> NDArray[np.bool_]:
    """Mask of items rated by exactly ``raters`` raters (default: the most common count, >= 2)."""
    totals = np.asarray(table, dtype=np.float64).sum(axis=1)
    if raters is None:
        usable = totals[totals >= 2]
        if usable.size == 0:
            return np.zeros(len(totals), dtype=bool)
        values, freq = np.unique(usable, return_counts=True)
        raters = int(values[np.argmax(freq)])
    return np.asarray(totals == raters)


def fleiss_kappa(table: ArrayLike) -> float:
    """Fleiss' kappa of an items x categories count table with equal rater counts per item."""
    t = np.asarray(table, dtype=np.float64)
    if t.ndim != 2 or t.shape[0] == 0:
        raise ValueError("table must be a non-empty items x categories matrix")
    totals = t.sum(axis=1)
    m = totals[0]
    if not np.all(totals == m) or m < 2:
        raise ValueError(
            "Fleiss' kappa needs the same number (>= 2) of raters on every item; "
            "select items with equal_rater_items() first"
        )
    p_i = ((t * t).sum(axis=1) - m) / (m * (m - 1.0))
    p_j = t.sum(axis=0) / (len(t) * m)
    p_e = float((p_j * p_j).sum())
    if p_e == 1.0:
        return float("nan")
    return float((p_i.mean() - p_e) / (1.0 - p_e))


@dataclass(frozen=True)
class DawidSkene:
    """Dawid–Skene (1979) EM result.

    ``confusion[a, k, l]`` = P(annotator a answers l | true class k); ``posterior[i, k]`` = P(item i
    is class k | answers); ``accuracy[a]`` = sum_k prior_k confusion[a, k, k], usable as a weight.
    """

    posterior: FloatArray
    confusion: FloatArray
    prior: FloatArray
    accuracy: FloatArray
    iterations: int


def dawid_skene(
    labels: ArrayLike,
    n_classes: int,
    *,
    max_iter: int = 100,
    tol: float = 1e-6,
    smoothing: float = 0.01,
) -> DawidSkene:
    """EM for annotator confusion matrices from an items x annotators matrix (codes, -1 = missing).

    Initialised from the per-item vote shares (soft majority vote); ``smoothing`` is a pseudo-count
    added to each confusion cell so an annotator seen on one class stays well defined.
    """
    lab = np.asarray(labels, dtype=np.int64)
    if lab.ndim != 2:
        raise ValueError("labels must be items x annotators (-1 = missing)")
    n_items, n_ann = lab.shape
    onehot = np.zeros((n_items, n_ann, n_classes))
    i_idx, a_idx = np.nonzero(lab >= 0)
    onehot[i_idx, a_idx, lab[i_idx, a_idx]] = 1.0
    post = onehot.sum(axis=1) + 1e-9
    post /= post.sum(axis=1, keepdims=True)
    confusion = np.full((n_ann, n_classes, n_classes), 1.0 / n_classes)
    prior = np.full(n_classes, 1.0 / n_classes)
    iterations = 0
    for iterations in range(1, max_iter + 1):  # noqa: B007 (reported)
        prior = post.mean(axis=0)
        confusion = np.einsum("ik,ial->akl", post, onehot) + smoothing
        confusion /= confusion.sum(axis=2, keepdims=True)
        log_post = np.log(prior)[None, :] + np.einsum("ial,akl->ik", onehot, np.log(confusion))
        log_post -= log_post.max(axis=1, keepdims=True)
        new = np.exp(log_post)
        new /= new.sum(axis=1, keepdims=True)
        change = float(np.abs(new - post).max())
        post = new
        if change < tol:
            break
    accuracy = np.einsum("k,akk->a", prior, confusion)
    return DawidSkene(post, confusion, prior, accuracy, iterations)
