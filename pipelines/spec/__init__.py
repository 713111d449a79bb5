"""The model spec: the I/O contract of a model version (``docs/contracts/model-spec.md``).

``model-spec.schema.json`` beside this file is a verbatim copy of the contract's schema.
"""

from pipelines.spec.build import IMAGENET_MEAN, IMAGENET_STD, build_spec
from pipelines.spec.preprocess import (
    LetterboxInfo,
    crop_letterbox,
    normalise,
    preprocess,
    resize_for_spec,
    undo_letterbox,
)
from pipelines.spec.types import FORMATS, InputSpec, ModelSpec, OutputSpec
from pipelines.spec.validate import SpecError, load_spec, parse_spec, schema, validate_spec

__all__ = [
    "FORMATS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "InputSpec",
    "LetterboxInfo",
    "ModelSpec",
    "OutputSpec",
    "SpecError",
    "build_spec",
    "crop_letterbox",
    "load_spec",
    "normalise",
    "parse_spec",
    "preprocess",
    "resize_for_spec",
    "schema",
    "undo_letterbox",
    "validate_spec",
]
