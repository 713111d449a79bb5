"""The ground-truth binarisation rule: on the 8-bit scale, a value above 127 is foreground.

Every reader of a ground-truth mask applies it through `gt_foreground` (the set import that
stores masks as 0/255, the metrics, the worker scoring an item and its instance masks, the
synthetic and reference data builders), so a graded mask means the same thing everywhere.
A prediction is binarised by the metrics' threshold on v / 255 instead (`metrics.functional.
binarise`: 128 and above at 0.5, the same cut on 8-bit values).

Kept apart from `pipelines.metrics` so the set import's process pool, which needs only this
rule, does not import the metrics (and OpenCV) in every child.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

#: Largest 8-bit ground-truth value that is still background.
GT_BACKGROUND_MAX = 127


def gt_foreground(values: ArrayLike) -> np.ndarray:
    """Boolean foreground of a ground-truth mask on the 8-bit scale (value > 127).

    Any real dtype is read on that scale: a 16-bit mask already shifted to 8 bits, a float mask
    times 255 (so 127.5 is foreground). A 0/1 mask is all background here; callers that accept
    one scale it first (`imaging._binarise`) or reject it (`metrics.functional.as_gt_mask`).
    """
    return np.asarray(values) > GT_BACKGROUND_MAX
