"""Each item's threshold curves, kept by the chunk that scored it for the run's finalising step.

Why: a run's summary averages every image's 256-threshold precision, recall, F and E curves (the
set's curves, max F, mean E, …). The per-image scalars are in the `ItemResult` rows already, but
the curves are not, and recomputing them meant decoding every stored alpha PNG and mask again
when the run was finalised: a per-run cost paid after the last image. So each chunk keeps its
items' curves in one file beside the PNGs, `runs/<id>/.evaluations/chunk-<chunk id>.npz`, tagged
with the chunk attempt that computed them; finalising takes an item's curves from there when the
attempt is the one that wrote its row (so curves and row come from one computation of the same
arrays, which are the arrays the PNGs hold) and evaluates the stored PNGs otherwise (a lost file,
a run scored before this): a missing or stale file costs only time, never a different number.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from evalsite.core import files
from evalsite.evals.services.artefacts import run_prefix
from pipelines.metrics.functional import CURVE_KEYS

#: Hidden beside `alpha/` and `alpha_ungated/`, which stay exactly what `predict --out` writes.
FOLDER = ".evaluations"
#: Curves files read at once from a bucket when a run is finalised.
READERS = 8


@dataclass(frozen=True)
class ItemCurves:
    """One item's curves, (len(CURVE_KEYS), 256) float64 each, in `CURVE_KEYS` order."""

    gated: np.ndarray
    ungated: np.ndarray
    attempt: int


def curves_array(result: Mapping[str, Any]) -> np.ndarray:
    """The curves of an `evaluate_pair` result as one (len(CURVE_KEYS), 256) float64 array."""
    return np.stack([np.asarray(result["curves"][k], dtype=np.float64) for k in CURVE_KEYS])


def curves_dict(curves: np.ndarray) -> dict[str, np.ndarray]:
    """`evaluate_pair`'s `curves` entry from a `curves_array` (the same float64 values)."""
    return {k: curves[i] for i, k in enumerate(CURVE_KEYS)}


def curves_save(
    *, run_id: int, name: str, attempt: int, items: Iterable[tuple[int, np.ndarray, np.ndarray]]
) -> None:
    """Keep (item id, gated curves, ungated curves) of a chunk's scored items; atomic, so a
    retried chunk replaces its file whole and a crash never leaves half of one."""
    rows = list(items)
    if not rows:
        return
    buf = io.BytesIO()
    np.savez(
        buf,
        item_ids=np.array([r[0] for r in rows], dtype=np.int64),
        attempt=np.array(attempt, dtype=np.int64),
        gated=np.stack([r[1] for r in rows]),
        ungated=np.stack([r[2] for r in rows]),
    )
    files.save_bytes(f"{run_prefix(run_id)}/{FOLDER}/{name}.npz", buf.getvalue())


def curves_load(*, run_id: int) -> dict[int, ItemCurves]:
    """Every item's kept curves in a run, by item id; an unreadable file counts as missing."""
    found: dict[int, ItemCurves] = {}
    names = [n for n in files.names_under(f"{run_prefix(run_id)}/{FOLDER}") if n.endswith(".npz")]
    if files.is_local() or len(names) < 2:
        parts: Iterable[dict[int, ItemCurves]] = map(_read, names)
    else:  # from a bucket each file is a round trip: several at once
        with ThreadPoolExecutor(max_workers=min(READERS, len(names))) as pool:
            parts = list(pool.map(_read, names))
    for part in parts:
        found.update(part)
    return found


def _read(name: str) -> dict[int, ItemCurves]:
    shape = (len(CURVE_KEYS), 256)
    try:
        with np.load(io.BytesIO(files.read_bytes(name)), allow_pickle=False) as data:
            ids, attempt = data["item_ids"], int(data["attempt"])
            gated, ungated = data["gated"], data["ungated"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    if gated.shape != (len(ids), *shape) or ungated.shape != gated.shape:
        return {}
    return {
        int(i): ItemCurves(gated=gated[n], ungated=ungated[n], attempt=attempt)
        for n, i in enumerate(ids)
    }
