"""Synthetic data for subject lifting: composites with exact masks, drawn people in Monk skin
tones with synthetic labels, and no-subject negatives — pure numpy/OpenCV, deterministic by seed.

Why it exists: real held-out sets rarely carry skin-tone/gender labels and never at controlled
contrast; a generator whose confounders are held fixed (or measured) lets the fairness stages tell
model gaps from data gaps, and phone-resolution composites exercise full-resolution post-processing.
"""

from .balance import ToneSummary, bg_luminance_spread, contrast_by_tone
from .composite import CompositeResult, Jitter, composite, composite_subjects
from .generate import GenerateOptions, generate
from .manifest import MANIFEST_COLUMNS, ItemRecord
from .monk import GENDERS, MONK_HEX, SKIN_TONES, ContrastStats, contrast_stats, monk_rgb
from .negatives import NEGATIVE_KINDS, make_negative
from .people import PersonSpec, draw_person, random_person_spec
from .sources import SourceError

__all__ = [
    "GENDERS",
    "MANIFEST_COLUMNS",
    "MONK_HEX",
    "NEGATIVE_KINDS",
    "SKIN_TONES",
    "CompositeResult",
    "ContrastStats",
    "GenerateOptions",
    "ItemRecord",
    "Jitter",
    "PersonSpec",
    "SourceError",
    "ToneSummary",
    "bg_luminance_spread",
    "composite",
    "composite_subjects",
    "contrast_by_tone",
    "contrast_stats",
    "draw_person",
    "generate",
    "make_negative",
    "monk_rgb",
    "random_person_spec",
]
