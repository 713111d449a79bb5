"""Reading masks and pairing files for `python -m pipelines.metrics` (metrics.md, "Inputs").

Conversion rules: 8-bit greyscale as is; RGB, palette, bilevel etc. through Pillow's
`convert("L")`; 16-bit greyscale scaled to 8 bit as round(v16 / 257), never clipped (Pillow's own
`convert("L")` would clip everything above 255 to white). GT foreground = value > 127.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import IO

import cv2
import numpy as np
from PIL import Image

from pipelines.masks import gt_foreground

from .histograms import value_histogram

PRED_SUFFIX = ".png"
GT_SUFFIXES = (".png", ".bmp", ".jpg", ".jpeg")  # preference order when a stem has several
_SIXTEEN_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N", "I"}


class PairError(Exception):
    """A pair that cannot be evaluated; the message names the file and what to do."""


@dataclass(frozen=True)
class Pair:
    name: str
    pred: Path
    gt: Path


def _by_stem(folder: Path, suffixes: tuple[str, ...]) -> dict[str, Path]:
    """Visible files of `folder` whose suffix (any case) is in `suffixes`, keyed by stem."""
    found: dict[str, Path] = {}
    rank = {s: i for i, s in enumerate(suffixes)}
    for path in sorted(folder.iterdir()):
        suffix = path.suffix.lower()
        if path.name.startswith(".") or suffix not in rank or not path.is_file():
            continue
        current = found.get(path.stem)
        if current is None or rank[suffix] < rank[current.suffix.lower()]:
            found[path.stem] = path
    return found


def pair_files(pred_dir: Path, gt_dir: Path) -> tuple[list[Pair], list[dict[str, str]]]:
    """Pair `<stem>.png` predictions with `<stem>.png|.bmp|.jpg|.jpeg` GT masks.

    Returns (pairs, errors), both sorted by stem; a stem present on one side only is an error
    row `{"name": stem, "error": ...}`.
    """
    preds = _by_stem(pred_dir, (PRED_SUFFIX,))
    gts = _by_stem(gt_dir, GT_SUFFIXES)
    pairs: list[Pair] = []
    errors: list[dict[str, str]] = []
    for name in sorted(preds.keys() | gts.keys()):
        if name not in gts:
            wanted = "|".join(GT_SUFFIXES)
            message = f"no ground truth {name}{{{wanted}}} in {gt_dir}"
            errors.append({"name": name, "error": message})
        elif name not in preds:
            errors.append({"name": name, "error": f"no prediction {name}.png in {pred_dir}"})
        else:
            pairs.append(Pair(name, preds[name], gts[name]))
    return pairs, errors


def read_gray8(path: Path | IO[bytes]) -> np.ndarray:
    """Read an image (a path, or an open binary file) as 2-D uint8 by the conversion rules
    above; PairError when unreadable."""
    try:
        with Image.open(path) as im:
            mode, size = im.mode, im.size
            if mode == "L" and im.format == "PNG" and isinstance(path, str | Path):
                # Same values as Pillow, decoded faster; fall through on anything unexpected.
                fast = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
                if fast is not None and fast.dtype == np.uint8 and fast.shape == size[::-1]:
                    return fast
            if mode in _SIXTEEN_BIT_MODES:
                wide = np.asarray(im)
                if wide.size and (wide.min() < 0 or wide.max() > 65535):
                    raise PairError(f"{path}: values outside 0..65535 in mode {mode}")
                # round(v / 257) in integers; v / 257 is never exactly halfway.
                return ((wide.astype(np.uint32) + 128) // 257).astype(np.uint8)
            return np.asarray(im if mode == "L" else im.convert("L"), dtype=np.uint8).copy()
    except PairError:
        raise
    except (OSError, ValueError, SyntaxError) as exc:  # what Pillow raises on corrupt files
        raise PairError(f"cannot read {path}: {exc}") from exc


def load_pair(pair: Pair) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(uint8 prediction, bool GT mask, warnings) of a pair; PairError on a bad pair."""
    pred = read_gray8(pair.pred)
    gt = read_gray8(pair.gt)
    if pred.shape != gt.shape:
        (ph, pw), (gh, gw) = pred.shape, gt.shape
        raise PairError(
            f"size mismatch: prediction {pair.pred.name} is {pw}×{ph} but ground truth "
            f"{pair.gt.name} is {gw}×{gh} (W×H); masks are never resized, export the prediction "
            "at the ground-truth size"
        )
    warnings = []
    grey = int(value_histogram(gt)[1:255].sum())
    if grey:
        warnings.append(
            f"ground truth {pair.gt.name} is not binary ({grey} pixels neither 0 nor 255); "
            "foreground = value > 127"
        )
    return pred, gt_foreground(gt), warnings
