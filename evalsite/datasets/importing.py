"""`dataset_import`: the one import service behind the CLI, the web upload job and the demo.

Order of work, chosen so that a fatal problem writes nothing:
1. name, archive safety and manifest are checked (fatal → ImportRejected, nothing touched);
2. items are decoded/normalised/hashed in a process pool into a private staging folder;
3. zero valid items → fatal, staging removed; same name + same content hash → "unchanged";
4. only then are staged files renamed into the content-addressed store and the rows written in
   one transaction (files created by this import are removed again if it fails).
"""

from __future__ import annotations

import multiprocessing
import time
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError

from evalsite.core.tempdirs import scrub_paths, temp_folder
from evalsite.core.text import text_problem
from evalsite.datasets import selectors, storage
from evalsite.datasets.archive import archive_extract
from evalsite.datasets.errors import ImportRejected, entry
from evalsite.datasets.models import (
    DatasetVersion,
)
from evalsite.datasets.validation import Plan, PlannedItem, plan_import
from evalsite.datasets.writing import ImportResult, version_create, version_unchanged
from pipelines.hashing import sha256_chunks
from pipelines.imaging import ItemOutcome, ItemTask, pool_init, process_item

Progress = Callable[[int, int], None]

# Below this many items a pool costs more (fork + pickling) than it saves; measured ~0.3 s.
POOL_MIN_ITEMS = 16
# Items per pool task: large enough to amortise pickling, small enough for a smooth progress bar.
POOL_CHUNKSIZE = 4


def dataset_import(
    *,
    path: Path | str,
    name: str,
    manifest: Path | str | None = None,
    user: User | None = None,
    description: str = "",
    licence: str = "",
    source_label: str | None = None,
    progress: Progress | None = None,
) -> ImportResult:
    """Import a folder or .zip as a new version of set `name` (or say it is unchanged)."""
    started = time.monotonic()
    problem = selectors.set_name_problem(name)
    if problem:
        raise ImportRejected([entry("--name", problem, "choose another name")])
    for field, value in (("description", description), ("licence", licence)):
        too_long = text_problem(field, value)
        if too_long:
            raise ImportRejected([entry(f"--{field}", too_long, "shorten it")])
    path = Path(path)
    with temp_folder("dataset-import-") as tmp:
        try:
            return _import_in(
                path, Path(tmp), name, manifest, user, description, licence, source_label,
                progress, started,
            )  # fmt: skip
        except ImportRejected as exc:  # messages name files inside the archive, not the server
            folders = (Path(tmp) / "x", tmp)
            scrubbed = [{k: scrub_paths(v, *folders) for k, v in e.items()} for e in exc.entries]
            raise ImportRejected(scrubbed, exc.report) from None


def _import_in(
    path: Path,
    tmp: Path,
    name: str,
    manifest: Path | str | None,
    user: User | None,
    description: str,
    licence: str,
    source_label: str | None,
    progress: Progress | None,
    started: float,
) -> ImportResult:
    """Extract (into `tmp`), plan, process and write; `dataset_import` scrubs the messages."""
    if path.is_file() and zipfile.is_zipfile(path):
        root = archive_extract(
            path,
            tmp / "x",
            max_total_bytes=settings.DATASET_ZIP_MAX_BYTES,
        )
    elif path.is_dir():
        root = path
    else:
        why = "is not a zip archive" if path.is_file() else "does not exist"
        raise ImportRejected(
            [
                entry(
                    source_label or str(path),  # a web upload's stored path is not shown
                    f"path {why}",
                    "give a folder with images/ and masks/, or a .zip of it",
                )
            ]
        )
    plan = plan_import(root, Path(manifest) if manifest else None)
    report: dict[str, Any] = {
        "source": source_label or str(path),
        "manifest": plan.manifest_label,
        "max_pixels": settings.DATASET_MAX_PIXELS,
        "candidates": plan.candidates,
    }
    if not plan.items:
        raise ImportRejected(_zero_items(path), {**report, "skipped": plan.skipped})
    staging = storage.staging_create()
    try:
        outcomes = list(_process(plan, staging, report["max_pixels"], progress))
        return _finish(
            plan,
            outcomes,
            report,
            name=name,
            user=user,
            description=description,
            licence=licence,
            started=started,
        )
    finally:
        storage.staging_remove(staging)


def _zero_items(path: Path) -> list[dict[str, str]]:
    return [
        entry(
            str(path.name or path),
            "zero valid items: every item was skipped",
            "fix the skipped files listed in the report and import again",
        )
    ]


def _process(
    plan: Plan, staging: Path, max_pixels: int, progress: Progress | None
) -> Iterator[ItemOutcome]:
    tasks = [
        ItemTask(
            stem=p.stem,
            image=str(p.image),
            image_label=p.image_label,
            mask=str(p.mask),
            mask_label=p.mask_label,
            staging=str(staging),
            max_pixels=max_pixels,
            instances=tuple((str(a), b) for a, b in p.instances),
        )
        for p in plan.items
    ]
    total = len(tasks)
    workers = min(settings.DATASET_IMPORT_PROCESSES, total)
    if progress:
        progress(0, total)
    if total < POOL_MIN_ITEMS or workers <= 1:
        results: Iterator[ItemOutcome] = map(process_item, tasks)
        yield from _reporting(results, total, progress)
        return
    if multiprocessing.current_process().daemon:
        # A Celery prefork child is daemonic and may not start processes; threads still overlap
        # well because Pillow, zlib and hashlib release the GIL while decoding/encoding/hashing.
        with ThreadPoolExecutor(
            max_workers=workers, initializer=pool_init, initargs=(max_pixels,)
        ) as threads:
            yield from _reporting(threads.map(process_item, tasks), total, progress)
        return
    # forkserver, not fork: forking a process that has threads (a DB driver's, a test runner's)
    # can leave a lock held forever in the child; the fork server is single-threaded. Children
    # need only the pure imaging module.
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=ctx, initializer=pool_init, initargs=(max_pixels,)
    ) as pool:
        yield from _reporting(
            pool.map(process_item, tasks, chunksize=POOL_CHUNKSIZE), total, progress
        )


def _reporting(
    results: Iterator[ItemOutcome], total: int, progress: Progress | None
) -> Iterator[ItemOutcome]:
    for done, outcome in enumerate(results, start=1):
        if progress:
            progress(done, total)
        yield outcome


def content_hash(triples: list[tuple[str, str, str]]) -> str:
    """sha256 over the sorted (stem, image sha256, mask sha256) of the stored files."""
    return sha256_chunks(f"{stem}\t{i}\t{m}\n".encode() for stem, i, m in sorted(triples))


__all__ = ["ImportResult", "content_hash", "dataset_import"]


def _finish(
    plan: Plan,
    outcomes: list[ItemOutcome],
    report: dict[str, Any],
    *,
    name: str,
    user: User | None,
    description: str,
    licence: str,
    started: float,
) -> ImportResult:
    skipped = list(plan.skipped)
    recorded: list[dict[str, str]] = []
    kept: list[tuple[PlannedItem, ItemOutcome]] = []
    by_sha: dict[str, str] = {}
    for planned, outcome in zip(plan.items, outcomes, strict=True):
        if not outcome.ok or outcome.image is None:
            skipped.append(outcome.skip or entry(planned.image_label, "not processed", "retry"))
            continue
        first = by_sha.get(outcome.image.sha256)
        if first is not None:
            skipped.append(
                entry(
                    planned.image_label,
                    f"duplicate image: same sha256 as {first}",
                    "remove one of the two copies",
                )
            )
            continue
        by_sha[outcome.image.sha256] = planned.image_label
        recorded.extend(outcome.notes)
        kept.append((planned, outcome))
    report.update(
        skipped=skipped,
        recorded=recorded,
        recorded_summary=dict(Counter(n["kind"] for n in recorded)),
    )
    if not kept:
        raise ImportRejected(_zero_items(Path(report["source"])), report)
    digest = content_hash(
        [
            (p.stem, o.image.sha256, o.mask.sha256)  # type: ignore[union-attr]
            for p, o in kept
        ]
    )
    report.update(
        imported=len(kept),
        no_subject=sum(1 for _, o in kept if o.fg_fraction == 0),
        duration_s=round(time.monotonic() - started, 2),
    )
    existing = DatasetVersion.objects.filter(dataset__name=name, content_hash=digest).first()
    if existing is not None:
        return version_unchanged(existing, plan, kept, user)
    try:
        return version_create(
            plan,
            kept,
            report,
            digest,
            name=name,
            user=user,
            description=description,
            licence=licence,
        )
    except IntegrityError:
        # A concurrent import of the same content won the race: that is "unchanged", not an error.
        existing = DatasetVersion.objects.filter(dataset__name=name, content_hash=digest).first()
        if existing is None:
            raise
        return version_unchanged(existing, plan, kept, user)
