"""The ground-truth binarisation rule: on the 8-bit scale, a value above 127 is foreground.

Every reader of a ground-truth mask applies it through `gt_foreground` (the set import that
stores masks as 0/255, the metrics, the worker scoring an item and its instance masks, the
synthetic and reference data builders), so a graded mask means the same thing everywhere.
A stored 8-bit prediction is foreground from 128 up (`pred_foreground`): the metrics' default
threshold on v / 255 (`metrics.functional.binarise` at 0.5), used wherever an alpha is cut into
a mask outside the metrics (instances, parity, the campaign's disagreement pick).

Kept apart from `pipelines.metrics` so the set import's process pool, which needs only this
rule, does not import the metrics (and OpenCV) in every child.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

#: Largest 8-bit ground-truth value that is still background.
GT_BACKGROUND_MAX = 127
#: Smallest 8-bit predicted alpha that is foreground (v / 255 > 0.5).
PRED_FOREGROUND_MIN = 128


def gt_foreground(values: ArrayLike) -> np.ndarray:
    """Boolean foreground of a ground-truth mask on the 8-bit scale (value > 127).

    Any real dtype is read on that scale: a 16-bit mask already shifted to 8 bits, a float mask
    times 255 (so 127.5 is foreground). A 0/1 mask is all background here; callers that accept
    one scale it first (`imaging._binarise`) or reject it (`metrics.functional.as_gt_mask`).
    """
    return np.asarray(values) > GT_BACKGROUND_MAX


def pred_foreground(alpha: ArrayLike) -> np.ndarray:
    """Boolean foreground of a stored 8-bit predicted alpha (value >= 128)."""
    return np.asarray(alpha) >= PRED_FOREGROUND_MIN
