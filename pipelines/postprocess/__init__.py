"""Post-processing of subject-lifting outputs (pure numpy/OpenCV): undo the spec's resize, gate on
confidence, upsample the low-resolution alpha to the photo with the fast guided filter, separate
instances and build RGBA cutouts. See :func:`postprocess` for the whole chain.
"""

from .cutout import instance_cutouts, rgba_cutout, web_copy, web_size
from .gate import DEFAULT_GATE_THRESHOLD, GateDecision, apply_gate, decide, resolve_threshold
from .guided import (
    DEFAULT_EPS,
    DEFAULT_RADIUS,
    bilinear_upsample,
    fast_guided_upsample,
    guided_filter,
    upsample,
)
from .instances import MIN_INSTANCE_AREA_FRACTION, Instance, Instances, separate_instances
from .pipeline import PostResult, postprocess, to_png
from .resize import content_region, undo_resize

__all__ = [
    "DEFAULT_EPS",
    "DEFAULT_GATE_THRESHOLD",
    "DEFAULT_RADIUS",
    "MIN_INSTANCE_AREA_FRACTION",
    "GateDecision",
    "Instance",
    "Instances",
    "PostResult",
    "apply_gate",
    "bilinear_upsample",
    "content_region",
    "decide",
    "fast_guided_upsample",
    "guided_filter",
    "instance_cutouts",
    "postprocess",
    "resolve_threshold",
    "rgba_cutout",
    "separate_instances",
    "to_png",
    "undo_resize",
    "upsample",
    "web_copy",
    "web_size",
]
