"""Each item's full evaluation, computed once by its chunk and reused when the run is finalised.

Why: finalising recomputed `evaluate_pair` (every metric and its 256-threshold curves) for every
stored PNG, twice (gated and ungated), after the chunks had just computed the same numbers: a
sixth of a run's wall time on the demo set. The chunk now keeps its result beside the PNGs, keyed
by a digest of the exact prediction and mask arrays it scored; finalising uses it when the arrays
it loads from the files have the same digest, and evaluates from scratch otherwise. So the page
still equals `python -m pipelines.metrics` on the folder (same arrays, same function), and a
missing, stale or unreadable file costs only time.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from evalsite.core import files
from evalsite.evals.services.artefacts import file_stem, run_prefix
from pipelines.hashing import sha256_arrays
from pipelines.metrics import SCALAR_KEYS, evaluate_pair

#: Hidden beside `alpha/` and `alpha_ungated/`, which stay exactly what `predict --out` writes.
FOLDER = ".evaluations"


def _digest(pred_u8: np.ndarray, gt: np.ndarray) -> str:
    return sha256_arrays(pred_u8, gt.astype(bool, copy=False))


def _name(run_id: int, stem: str, key: str) -> str:
    return f"{run_prefix(run_id)}/{FOLDER}/{file_stem(stem)}.{key}.json"


def evaluation_save(
    *, run_id: int, stem: str, key: str, pred_u8: np.ndarray, gt: np.ndarray, result: dict[str, Any]
) -> None:
    """Keep `evaluate_pair(pred_u8, gt)`'s result for the finalising step (atomic write)."""
    doc = {
        "digest": _digest(pred_u8, gt),
        "result": {
            **{k: float(v) for k, v in result.items() if k != "curves"},
            "curves": {
                k: np.asarray(v, dtype=np.float64).tolist() for k, v in result["curves"].items()
            },
        },
    }
    files.save_bytes(_name(run_id, stem, key), json.dumps(doc).encode())


def evaluation_of(
    *, run_id: int, stem: str, key: str, pred_u8: np.ndarray, gt: np.ndarray
) -> dict[str, Any]:
    """The stored evaluation of exactly these arrays, or `evaluate_pair` computed now."""
    try:
        doc = json.loads(files.read_bytes(_name(run_id, stem, key)))
        result: dict[str, Any] = doc["result"]
        # A file written before a metric was added lacks its key: evaluate again.
        if doc.get("digest") == _digest(pred_u8, gt) and all(k in result for k in SCALAR_KEYS):
            return result
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return evaluate_pair(pred_u8, gt)
