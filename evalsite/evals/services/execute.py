"""Running one chunk of a run: predict, post-process, write alpha PNGs, score, upsert `ItemResult`s
and keep the items' threshold curves for finalising (`scores.curves_save`).

Why one sandboxed session per chunk: loading a model (and importing torch / onnxruntime) costs far
more than one image, so the child process loads once and predicts the whole chunk; it runs under
the registry's memory/CPU limits, so a model that crashes or leaks costs that child only. A crash
fails the image it was working on, the session is restarted (a new warm-up, counted) and the
chunk goes on. Everything a chunk writes is keyed on (run, item) or on the item's stem, so a
retried chunk overwrites its previous attempt's rows and files.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import random
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from django.conf import settings
from PIL import Image, ImageOps

from evalsite.core.faults import is_storage_fault
from evalsite.core.files import is_local as storage_is_local
from evalsite.core.jobs import ChunkLost
from evalsite.core.models import Chunk, JobStatus
from evalsite.datasets.models import Item
from evalsite.datasets.storage import item_file
from evalsite.evals.models import SORTABLE_METRICS, EvalRun, ItemResult, ResultStatus, RunStatus
from evalsite.evals.services import runner as runners
from evalsite.evals.services.artefacts import (
    min_instance_area,
    remove_item_artefacts,
    write_item_artefacts,
)
from evalsite.evals.services.instances import instance_scores
from evalsite.evals.services.runs import eval_run_mark_running
from evalsite.evals.services.scores import curves_array, curves_save
from pipelines.masks import gt_foreground
from pipelines.metrics import evaluate_pair
from pipelines.metrics.instances import item_columns
from pipelines.metrics.io import read_gray8
from pipelines.postprocess.pipeline import PostResult, postprocess
from pipelines.runners.base import RawOutput
from pipelines.spec import ModelSpec, parse_spec

log = logging.getLogger(__name__)

#: Seed set in the worker before a chunk (recorded with the run). Inference itself is
#: deterministic; the seed only pins anything a runner might sample.
SEED = 0
#: Longest error text kept per item (a traceback tail is enough to say why).
ERROR_CHARS = 2000
#: How often a chunk asks whether it is still wanted (run cancelled, lease lost). Asking before
#: every image cost two queries per image; once a second bounds a cancel's delay to about a
#: second plus one image.
STILL_WANTED_SECONDS = 1.0


@dataclass
class ChunkState:
    run: EvalRun
    attempt: int
    session: runners.Session | None = None
    warmups: int = 0
    restarts: int = 0
    device: str = ""
    load_error: str = ""
    spec: ModelSpec | None = None
    environment: dict[str, Any] = field(default_factory=dict)


def load_photo(path: str | Path) -> np.ndarray:
    """The stored picture as the user sees it: EXIF-oriented RGB uint8 (what `predict` reads)."""
    with Image.open(path) as im:
        return np.asarray(ImageOps.exif_transpose(im).convert("RGB")).copy()


def _open(state: ChunkState) -> runners.Session:
    """The worker's warm session, or a new one with its warm-up (excluded from latency, counted)."""
    session, fresh = runners.session_acquire(state.run.model_version, state.run.runtime)
    if fresh:
        try:
            state.warmups += session.warmup()
        except Exception:
            runners.session_release(session, broken=True)
            raise
    state.device = state.device or session.device
    state.environment = state.environment or session.environment()
    return session


def _check_output(alpha: Any, spec: dict[str, Any]) -> np.ndarray:
    """The raw alpha must be finite and have the spec's size; anything else fails the item."""
    arr = np.asarray(alpha, dtype=np.float32)
    if arr.ndim == 4 and arr.shape[:2] == (1, 1):
        arr = arr[0, 0]
    expected = tuple(int(v) for v in spec["input"]["size"])
    if arr.shape != expected:
        raise runners.BadOutput(
            f"alpha has shape {tuple(np.asarray(alpha).shape)}, the spec says 1×1×{expected[0]}×"
            f"{expected[1]}"
        )
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).sum())
        raise runners.BadOutput(f"alpha has {bad} NaN/infinite value(s)")
    return arr


def _metric_row(result: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in result.items() if k != "curves"}


@dataclass
class Predicted:
    """A photo and the model's checked raw output (the first half of an item's work)."""

    photo: np.ndarray
    raw: RawOutput
    alpha: np.ndarray


@functools.lru_cache(maxsize=8)
def _parsed_spec(canonical: str) -> ModelSpec:
    """The checked spec of a canonical spec JSON (the schema check costs ~30 ms per chunk)."""
    return parse_spec(json.loads(canonical))


def _spec_parse(state: ChunkState) -> None:
    """The run's spec, parsed (schema-checked) once per spec and process, not per image."""
    if state.spec is None:
        state.spec = _parsed_spec(json.dumps(state.run.model_version.spec, sort_keys=True))


def predict_item(state: ChunkState, item: Item) -> Predicted:
    """Load the photo and run the model; raises on a bad output or a crashed session."""
    spec = state.run.model_version.spec
    _spec_parse(state)
    photo = load_photo(item_file(item.image))
    if state.session is None:
        state.session = _open(state)
    raw = state.session.predict(photo)
    return Predicted(photo=photo, raw=raw, alpha=_check_output(raw.alpha, spec))


#: An item's (gated, ungated) threshold curves, `scores.curves_array` each.
Curves = tuple[np.ndarray, np.ndarray]


def score_item(
    state: ChunkState, item: Item, predicted: Predicted
) -> tuple[dict[str, Any], Curves, PostResult]:
    """Post-process and score: the item's `ItemResult` fields but its files, its curves, and the
    output to write the files from (`write_item_artefacts`; the chunk may write them on another
    thread)."""
    run, raw, photo = state.run, predicted.raw, predicted.photo
    post_cfg = run.postprocess
    assert state.spec is not None  # set by predict_item
    t0 = time.perf_counter()
    post = postprocess(
        predicted.alpha,
        raw.confidence,
        photo,
        state.spec,
        gate=bool(post_cfg.get("gate", True)),
        threshold=post_cfg.get("gate_threshold"),
        upsample=post_cfg.get("upsample", "guided"),
        min_instance_area=min_instance_area(run.postprocess),
    )
    post_ms = (time.perf_counter() - t0) * 1000.0
    timings = dict(raw.timings or {})
    latency: dict[str, Any] = {
        "preprocess": float(timings.get("preprocess", 0.0)),
        "model": float(timings.get("model", 0.0)),
        "postprocess": post_ms,
    }
    latency["total"] = sum(latency.values())
    latency["device"] = state.device
    fields, curves = score_post(item=item, post=post, latency=latency)
    return fields, curves, post


def score_output(
    *, run_id: int, item: Item, post: PostResult, latency: dict[str, Any]
) -> tuple[dict[str, Any], Curves]:
    """Write an item's files and score them: the fields of its `ItemResult` (ok) and its curves.

    Shared by worker runs and imported runs (whose `post` wraps the imported PNG), so both are
    stored, scored, split into instances and made browsable by the same code.
    """
    files, sha = write_item_artefacts(run_id, item.stem, post)
    fields, curves = score_post(item=item, post=post, latency=latency)
    return {**fields, "artefacts": files, "alpha_sha256": sha}, curves


def score_post(
    *, item: Item, post: PostResult, latency: dict[str, Any]
) -> tuple[dict[str, Any], Curves]:
    """Score a post-processed output against the item's mask: its `ItemResult` fields but the
    files, and its (gated, ungated) curves for `scores.curves_save`. The arrays scored are
    exactly the ones `write_item_artefacts` stores as 8-bit PNGs."""
    gt = gt_foreground(read_gray8(item_file(item.mask)))
    gated_full = evaluate_pair(post.alpha_png, gt)
    # Not gated: the ungated file holds the gated pixels (artefacts write the same bytes).
    ungated_pred = post.ungated_png if post.gated else post.alpha_png
    ungated_full = evaluate_pair(ungated_pred, gt) if post.gated else gated_full
    gated = _metric_row(gated_full)
    ungated = gated if not post.gated else _metric_row(ungated_full)
    instances = instance_scores(item, post.instances)
    per_image = {**gated, **item_columns(instances)}
    fields = {
        "status": ResultStatus.OK,
        "error": "",
        **{k: per_image[k] for k in SORTABLE_METRICS},
        "metrics": gated,
        "ungated": ungated,
        "instance_scores": instances,
        "confidence": None if post.confidence is None else float(post.confidence),
        "gated": bool(post.gated),
        "instance_count": post.instance_count,
        "latency": latency,
        "artefacts": {},
        "alpha_sha256": "",
    }
    gated_curves = curves_array(gated_full)
    return fields, (gated_curves, curves_array(ungated_full) if post.gated else gated_curves)


def _failed(reason: str) -> dict[str, Any]:
    blank: dict[str, Any] = {k: None for k in SORTABLE_METRICS}
    return {
        "status": ResultStatus.FAILED,
        "error": reason[-ERROR_CHARS:],
        **blank,
        "metrics": {},
        "ungated": {},
        "instance_scores": {},
        "confidence": None,
        "gated": False,
        "instance_count": 0,
        "latency": {},
        "artefacts": {},
        "alpha_sha256": "",
    }


def _predict_guarded(state: ChunkState, item: Item) -> Predicted | dict[str, Any]:
    """`predict_item`, or the failed item's fields when the model or the photo is at fault.

    Storage faults (disk full, I/O errors) are the infrastructure's: they propagate, so the
    chunk is retried without consuming an attempt and no item is failed for them.
    """
    if state.load_error:  # loading again for every item would only repeat the same failure
        return _failed(state.load_error)
    for on_fresh_process in (False, True):
        try:
            return predict_item(state, item)
        except runners.SessionCrashed as exc:
            state.restarts += 1
            _close(state, broken=True)
            if on_fresh_process:
                return _failed(f"model process crashed on this image (also on a fresh process): "
                               f"{exc}")  # fmt: skip
            # The process may have died of something other than this image (killed from
            # outside, memory taken by a neighbour): only a crash on a fresh process is the
            # image's, so it gets one more try there.
            log.warning("model process died on item %s of run %s (%s); trying the image once "
                        "more on a fresh process", item.pk, state.run.pk, exc)  # fmt: skip
        except runners.ModelLoadError as exc:
            _close(state, broken=True)
            state.load_error = f"model could not be loaded: {exc}"
            return _failed(state.load_error)
        except (runners.BadOutput, runners.PredictError) as exc:
            return _failed(f"bad model output: {exc}")
        except (OSError, ValueError) as exc:
            return _item_fault(state, item, exc)
    raise AssertionError("unreachable: the second try returns")


def _item_fault(state: ChunkState, item: Item, exc: OSError | ValueError) -> dict[str, Any]:
    """The failed item's fields for an error of its own (an unreadable photo, a bad mask); a
    storage fault is re-raised, since it is the worker's disk and not the item."""
    if is_storage_fault(exc):
        raise exc
    log.warning("item %s of run %s failed", item.pk, state.run.pk, exc_info=True)
    return _failed(f"{type(exc).__name__}: {exc}")


def _score_guarded(
    state: ChunkState, item: Item, got: Predicted | dict[str, Any]
) -> tuple[dict[str, Any], Curves | None, PostResult | None]:
    """`score_item`, or the failed item's fields (and no curves, no output to write)."""
    if isinstance(got, dict):
        return got, None, None
    try:
        return score_item(state, item, got)
    except (OSError, ValueError) as exc:
        return _item_fault(state, item, exc), None, None


def _write_guarded(run_id: int, item: Item, fields: dict[str, Any], files: Future[Any]) -> None:
    """Put the item's written files (and their digest) into its fields, or fail the item when
    writing failed."""
    try:
        fields["artefacts"], fields["alpha_sha256"] = files.result()
    except (OSError, ValueError) as exc:
        if is_storage_fault(exc):  # the disk's fault: the chunk is retried, the item not failed
            remove_item_artefacts(run_id, item.stem)
            raise
        log.warning("item %s of run %s failed", item.pk, run_id, exc_info=True)
        attempt = fields.get("attempt")
        fields.clear()
        fields.update(_failed(f"{type(exc).__name__}: {exc}"), attempt=attempt)
        remove_item_artefacts(run_id, item.stem)


class _Inline:
    """The executor interface, running the call at once (prefetch off: one core per worker)."""

    def submit(self, fn: Any, /, *args: Any) -> Future[Any]:
        done: Future[Any] = Future()
        try:
            done.set_result(fn(*args))
        except Exception as exc:  # delivered by .result(), like a thread pool's future
            done.set_exception(exc)
        return done


def _close(state: ChunkState, *, broken: bool = False) -> None:
    if state.session is not None:
        runners.session_release(state.session, broken=broken)
        state.session = None


#: The first image of the job's next pending chunk, predicted while this chunk scores its last
#: one (EVAL_PREFETCH): (run id, item id, the session that predicted it, its output). Without
#: it every chunk starts with the model's pipeline empty, its first image predicted while the
#: worker waits and its last scored while the model idles: with the tail's small chunks that
#: was a sixth of a 120-image run. One worker process runs one chunk at a time, so one slot.
_AHEAD: list[tuple[int, int, runners.Session, Predicted]] = []


def _next_first_item(chunk: Chunk) -> Item | None:
    """The first item of the job's lowest pending chunk: the one a worker takes next, unless
    another worker is faster (then the guess is dropped unused)."""
    payload = (
        Chunk.objects.filter(job_id=chunk.job_id, status=JobStatus.PENDING)
        .order_by("index")
        .values_list("payload", flat=True)
        .first()
    )
    ids = (payload or {}).get("item_ids") or []
    return Item.objects.filter(pk=ids[0]).first() if ids else None


def _predict_ahead(state: ChunkState, item: Item) -> Predicted | None:
    """`predict_item` for a chunk not claimed yet: any failure is that chunk's to meet and
    report itself, so here it only means "no guess"."""
    try:
        return predict_item(state, item)
    except Exception:
        return None


def _predicted_ahead(state: ChunkState, item: Item) -> Predicted | None:
    """This item's output if the worker's previous chunk predicted it for this run with the
    session this chunk uses (the same model process: the same output); the slot is emptied
    either way."""
    kept = _AHEAD.pop() if _AHEAD else None
    if kept is None or kept[:2] != (state.run.pk, item.pk):
        return None
    try:
        state.session = state.session or _open(state)
    except Exception:  # cannot load: the first image's own prediction says why
        return None
    if state.session is not kept[2] or not state.session.alive:
        return None
    _spec_parse(state)
    return kept[3]


def _still_wanted(run_id: int, chunk: Chunk) -> bool:
    """False once the run was cancelled or this chunk was taken away (lease lost)."""
    if EvalRun.objects.filter(pk=run_id, status=RunStatus.CANCELLED).exists():
        return False
    return Chunk.objects.filter(
        pk=chunk.pk, status="running", claimed_by=chunk.claimed_by, attempts=chunk.attempts
    ).exists()


def save_results(run_id: int, rows: list[tuple[Item, dict[str, Any]]]) -> None:
    """Upsert a chunk's `ItemResult`s in one statement, keyed on (run, item).

    A retried chunk overwrites its previous attempt's rows, exactly as one `update_or_create`
    per image did, for one round trip instead of two per image.
    """
    if not rows:
        return
    update = sorted({key for _, fields in rows for key in fields} | {"updated_at"})
    ItemResult.objects.bulk_create(
        [ItemResult(run_id=run_id, item=item, **fields) for item, fields in rows],
        update_conflicts=True,
        unique_fields=["run", "item"],
        update_fields=update,
    )


def eval_chunk_run(chunk: Chunk) -> dict[str, Any]:
    """Job-kind handler for `evals.run`: evaluate the chunk's items, idempotently."""
    run_id = int(chunk.payload["run_id"])
    run = EvalRun.objects.select_related("model_version__family").get(pk=run_id)
    if run.status == RunStatus.CANCELLED:
        raise ChunkLost("run was cancelled")
    if run.status == RunStatus.QUEUED:  # the run's first chunk (a write less for the others)
        eval_run_mark_running(run_id=run_id)
    random.seed(SEED)
    np.random.seed(SEED)
    threads = runners.runner_threads()
    if threads:  # one budget for the worker: post-processing threads match the model's
        cv2.setNumThreads(threads)
    items = {i.pk: i for i in Item.objects.filter(pk__in=chunk.payload["item_ids"])}
    state = ChunkState(run=run, attempt=chunk.attempts)
    rows: list[tuple[Item, dict[str, Any]]] = []
    curves: dict[int, Curves] = {}
    # Just claimed, and the run just read: the first question is due a second from now.
    asked = time.monotonic()
    todo = [items[i] for i in chunk.payload["item_ids"] if i in items]  # deleted: nothing to do
    pipelined = bool(settings.EVAL_PREFETCH)
    # Files on a writer thread only where the model runtime leaves a core to it: next to a
    # runtime that already uses every core, a third busy thread only competes with its threads.
    spare_core = threads is not None and threads < (os.cpu_count() or 1)
    # A bucket's PUT is a round trip the writer waits on, not work for a core: there, up to
    # three images' files in flight, so one slow answer does not hold up the images behind it,
    # and a fourth writer thread, so the chunk's curves file goes up beside its last images
    # instead of after them. On a disk, one writer, one image ahead: writing is encoding, which
    # needs a core.
    local = storage_is_local()
    writers, in_flight = (1, 1) if local else (4, 3)
    try:
        # Pipelined (EVAL_PREFETCH): the model (in its sandboxed child) predicts image i+1 and,
        # with a core to spare, a writer thread encodes and writes image i-1's files while this
        # thread post-processes and scores image i; the stages overlap instead of waiting on each
        # other. Each stage computes exactly what it computes one image at a time, so results do
        # not change.
        with (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="predict") as ahead,
            ThreadPoolExecutor(max_workers=writers, thread_name_prefix="write") as pool,
        ):
            writer = pool if pipelined and spare_core else _Inline()
            next_up: Future[Predicted | dict[str, Any]] | None = None
            first = _predicted_ahead(state, todo[0]) if pipelined and todo else None
            guess: tuple[Item, Future[Predicted | None]] | None = None
            writing: deque[tuple[Item, dict[str, Any], Future[Any]]] = deque()
            for n, item in enumerate(todo):
                if time.monotonic() - asked >= STILL_WANTED_SECONDS:
                    if not _still_wanted(run_id, chunk):
                        raise ChunkLost("run cancelled or chunk taken over")
                    asked = time.monotonic()
                if next_up:
                    got = next_up.result()
                else:
                    got = first if n == 0 and first else _predict_guarded(state, item)
                next_up = None
                if pipelined and n + 1 < len(todo):
                    next_up = ahead.submit(_predict_guarded, state, todo[n + 1])
                elif pipelined and state.session is not None and not state.load_error:
                    upcoming = _next_first_item(chunk)  # the last image: guess the next chunk's
                    if upcoming is not None:
                        guess = (upcoming, ahead.submit(_predict_ahead, state, upcoming))
                fields, item_curves, post = _score_guarded(state, item, got)
                fields["attempt"] = chunk.attempts
                if item_curves is not None:
                    curves[item.pk] = item_curves
                while len(writing) >= in_flight:  # earlier images' files (written meanwhile)
                    _write_guarded(run_id, *writing.popleft())
                if post is None or not isinstance(got, Predicted):  # failed: no stale files
                    remove_item_artefacts(run_id, item.stem)
                else:
                    files = writer.submit(write_item_artefacts, run_id, item.stem, post)
                    writing.append((item, fields, files))
                rows.append((item, fields))
            # The curves file goes while the last images' files are still being written (in a
            # bucket, each is a round trip); a curve of an item whose write then fails is never
            # read, since finalising reads curves only for scored rows.
            kept = writer.submit(functools.partial(
                curves_save, run_id=run_id, name=f"chunk-{chunk.pk}", attempt=chunk.attempts,
                items=[(item.pk, *curves[item.pk]) for item, fields in rows
                       if fields["status"] == ResultStatus.OK and item.pk in curves]))  # fmt: skip
            while writing:
                _write_guarded(run_id, *writing.popleft())
            kept.result()
        if guess is not None and state.session is not None:
            predicted = guess[1].result()
            if predicted is not None:
                _AHEAD[:] = [(run_id, guess[0].pk, state.session, predicted)]
            elif not state.session.alive:  # the guess killed the model process: this chunk's
                state.restarts += 1
                _close(state, broken=True)
    finally:
        _close(state)
    ok = sum(fields["status"] == ResultStatus.OK for _, fields in rows)
    failed = sum(fields["status"] == ResultStatus.FAILED for _, fields in rows)
    # The curves (kept above) before the rows: a row is never there without the curves of its
    # attempt (a crash in between leaves curves no row refers to, and the retry replaces them).
    save_results(run_id, rows)
    if state.device and not run.device:
        EvalRun.objects.filter(pk=run_id, device="").update(device=state.device)
    return {
        "ok": ok,
        "failed": failed,
        "warmups": state.warmups,
        "restarts": state.restarts,
        "device": state.device,
        "worker": {**state.environment, "seed": SEED, "opencv_threads": cv2.getNumThreads()},
    }
