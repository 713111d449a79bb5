"""The reference implementation our SOD metrics are checked against: PySODMetrics.

Used by `tests/pipelines/test_metrics.py` and by `bench/metrics.py` as its in-run reference, never
by the platform's own scoring, so it lives beside the benches rather than in `pipelines/` (the
benches do not import the tests). The one way of importing it lives here: the package imports
scikit-image at import time for metrics we do not compare (and scikit-image is not among our
dependencies), so it is stubbed when absent.
"""

from __future__ import annotations

import sys
import types
import warnings

#: The PySODMetrics numbers our `pipelines.metrics` reproduces (same names on both sides).
SOD_KEYS = ("mae", "s_measure", "max_f", "mean_f", "adaptive_f", "max_e", "mean_e", "adaptive_e")


def load_pysod() -> types.ModuleType:
    """`py_sod_metrics.sod_metrics`, with scikit-image stubbed if it is not installed."""
    try:
        import skimage  # noqa: F401
    except ModuleNotFoundError:
        names = ("skimage", "skimage.color", "skimage.measure", "skimage.morphology")
        stubs = {name: types.ModuleType(name) for name in names}
        color = stubs["skimage.color"]
        color.deltaE_ciede2000 = color.rgb2lab = None  # type: ignore[attr-defined]
        for name in names[1:]:
            setattr(stubs["skimage"], name.split(".")[1], stubs[name])
        sys.modules.update(stubs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from py_sod_metrics import sod_metrics
    return sod_metrics


__all__ = ["SOD_KEYS", "load_pysod"]
