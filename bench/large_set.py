"""Benchmark: a 10 000-photo set end to end — generate, import, evaluate, report, browse.

What it does, in a throw-away VAR_DIR (its own SQLite file, filesystem broker and media; with
DATABASE_URL set to a PostgreSQL server, a private database on it, and CELERY_BROKER_URL as given):
1. generate: `--n` items — synthetic composites, drawn people in the 10 Monk tones (person labels,
   so fairness has groups) and no-subject negatives from `pipelines.synth`, plus real photos from
   fixtures/sets and ../shared/data (when present) resampled to new sizes; `--big-share` of all
   items are real photos resampled to 12 MP (4032×3024). File names are shuffled so the large
   photos spread over the whole run instead of arriving last;
2. import it through `dataset_import` (the CLI's and upload's path);
3. evaluate two model versions (fixtures/models subject-lift 1.0.0 and 1.1.0) with two real Celery
   worker processes (bench/support/workers), one run after the other (each run's memory is then
   one model's work); the resident memory of each worker's process tree (worker, pool child,
   sandbox) is sampled five times a second;
4. the fairness report of each run (`fairness_report_compute`), the compare intervals (the
   `evals.compare` job, run by the workers), the leaderboard rows (`leaderboard_refresh`) and the
   release report of 1.1.0 vs 1.0.0 with `--rounds` bootstrap rounds (`release_report_run_now`:
   gather from the database, compute, store);
5. the run, items, compare, fairness, leaderboard and report pages, `--views` requests each
   through Django's test client as a researcher; server time from the `Server-Timing` header.

Prints the time of each stage, each worker tree's resident memory over the run, the database
size and each page's p95. Goals (exit status 1 on a miss): worker memory flat in each run (peak
in the second half of the run after warm-up at most 5 % above the peak in the first half), the
release report with every item paired and 2 000 rounds under 10 s, every page's p95 under 500 ms.
The output is also written to bench/results/large_set.txt (or `--results`), stamped with commit,
date and load.

Not a test (tests/test_large_set_bench.py runs it small):
``.venv/bin/python bench/large_set.py [--n 10000] [--big-share 0.02] [--views 20]``
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.support.rating_browser import pct, server_timing_ms  # noqa: E402
from bench.support.stamp import stamp  # noqa: E402
from bench.support.workers import (  # noqa: E402
    database_bytes,
    files_bytes,
    setup_django,
    start_workers,
    stop_workers,
    teardown_database,
    trees_rss_bytes,
    wait_live,
)

RESULTS = ROOT / "bench" / "results" / "large_set.txt"
SHARED = ROOT.parent / "shared" / "data"
FIXTURE_SETS = ROOT / "fixtures" / "sets"
MODELS = ROOT / "fixtures" / "models"
#: Shares of the set: real resampled photos (the 12 MP ones among them), drawn people (person
#: labels for fairness; the generator draws them in strata of 10, one per Monk tone), negatives;
#: the rest are composites. Roughly the mix of a phone-photo test set with a labelled slice.
REAL_SHARE, PEOPLE_SHARE, NEGATIVE_SHARE = 0.10, 0.15, 0.05
BIG_SIZE = (4032, 3024)  # 12.2 MP, a phone camera's photo
SEED = 30
WORKERS = 2
MEMORY_GOAL = 0.05  # growth of a worker tree's peak after warm-up
WARM_UP = 0.2  # share of the evaluation's wall time before memory is judged
REPORT_GOAL_S = 10.0
PAGE_GOAL_MS = 500.0
SAMPLE_SECONDS = 0.2  # a 20-item test run lasts a few seconds per run
PROGRESS_SECONDS = 60.0
MIB = 1024 * 1024


def verdict(ok: bool, text: str, missed: list[str]) -> str:
    """One judged line: `OK` or `MISSED` before what was measured; a miss is also listed."""
    if not ok:
        missed.append(text)
    return f"{'OK    ' if ok else 'MISSED'} {text}"


class Log:
    """Lines printed as they come (a long run shows progress) and kept for the results file."""

    def __init__(self) -> None:
        self.lines = [stamp()]
        print(self.lines[0], flush=True)

    def __call__(self, line: str, keep: bool = True) -> None:
        print(line, flush=True)
        if keep:
            self.lines.append(line)


# --- 1. the set -------------------------------------------------------------------------------


def _real_sources() -> list[tuple[Path, Path, str]]:
    """(image, mask, where) of every real pair in fixtures/sets and ../shared/data."""
    folders = [FIXTURE_SETS / "pascal-s-demo", FIXTURE_SETS / "pascal-s-test"]
    folders += [SHARED / name for name in ("pascal-s", "pascal-s-test", "sod")]
    out = []
    for folder in folders:
        if not (folder / "images").is_dir():
            continue
        for image in sorted((folder / "images").iterdir()):
            mask = folder / "masks" / f"{image.stem}.png"
            if mask.is_file():
                out.append((image, mask, f"{folder.parent.name}/{folder.name}/{image.stem}"))
    return out


def _resampled(source: tuple[Path, Path, str], k: int, big: bool, out: Path) -> dict[str, str]:
    """Copy `k` of a real pair at a new size (12 MP when `big`), flipped on odd rounds; its
    manifest row. Every copy has its own framing (up to 4 % trimmed from each side, drawn from
    `k`): 12 MP copies all have one size, and two of the same photo were otherwise the same file,
    which the import skips as a duplicate."""
    from PIL import Image

    image_path, mask_path, where = source
    rng = random.Random(k)
    with Image.open(image_path) as im, Image.open(mask_path) as m:
        image, mask = im.convert("RGB"), m.convert("L")
    w, h = image.size
    box = (round(w * rng.uniform(0, 0.04)), round(h * rng.uniform(0, 0.04)),
           w - round(w * rng.uniform(0, 0.04)), h - round(h * rng.uniform(0, 0.04)))  # fmt: skip
    image, mask = image.crop(box), mask.crop(box)
    if big:
        size = BIG_SIZE if image.width >= image.height else BIG_SIZE[::-1]
    else:
        scale = rng.uniform(0.6, 1.3)
        size = (max(32, round(image.width * scale)), max(32, round(image.height * scale)))
    image = image.resize(size, Image.Resampling.LANCZOS)
    mask = mask.resize(size, Image.Resampling.BILINEAR).point(lambda v: 255 if v > 127 else 0)
    if k % 2:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        mask = mask.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    stem = f"real_{k:05d}"
    image.save(out / "images" / f"{stem}.jpg", quality=92)
    mask.save(out / "masks" / f"{stem}.png")
    return {
        "image": f"images/{stem}.jpg", "mask": f"masks/{stem}.png", "skin_tone": "unknown",
        "perceived_gender": "unknown", "tags": "real;resampled" + (";12mp" if big else ""),
        "source": f"{where} resampled to {size[0]}x{size[1]}", "attribute_source": "manifest",
        "licence": "research only (PASCAL VOC / BSDS500)", "kind": "real",
        "width": str(size[0]), "height": str(size[1]),
    }  # fmt: skip


def _shuffle_names(out: Path, rows: list[dict[str, str]]) -> None:
    """Prefix every item's files with its place in a seeded shuffle and order the rows by it
    (items are imported, and evaluated, in manifest order: the 12 MP photos would otherwise all
    come at the end, and the memory of the last stretch would not be comparable)."""
    order = list(range(len(rows)))
    random.Random(SEED).shuffle(order)
    for place, row in zip(order, rows, strict=True):
        for column in ("image", "mask", "instances"):
            old = row.get(column) or ""
            if not old:
                continue
            folder, name = old.split("/", 1)
            new = f"{folder}/{place:05d}_{name}"
            (out / old).rename(out / new)
            row[column] = new
    rows.sort(key=lambda row: row["image"])


def build_set(out: Path, n: int, big_share: float) -> dict[str, int]:
    """Write `n` items to `out` (images/, masks/, instances/, manifest.csv); counts by kind."""
    from pipelines.synth import generate

    sources = _real_sources()
    if not sources:
        raise SystemExit("no real photos found in fixtures/sets")
    n_big = round(n * big_share) if big_share > 0 else 0
    n_big = max(n_big, 1) if big_share > 0 else 0
    n_real = max(round(n * REAL_SHARE), n_big)
    n_synth = n - n_real
    people = max(10, 10 * round(n_synth * PEOPLE_SHARE / 10))
    negatives = max(1, round(n_synth * NEGATIVE_SHARE))
    if people + negatives > n_synth:
        raise SystemExit(f"--n {n} is too small for {people} people and {negatives} negatives")
    shared = SHARED / "pascal-s"
    fg = shared if (shared / "images").is_dir() else FIXTURE_SETS / "pascal-s-demo"
    bg = SHARED / "sod" if (SHARED / "sod" / "images").is_dir() else None
    generate(fg, bg, out, n_synth, SEED, people=people, negatives=negatives)
    with (out / "manifest.csv").open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        columns = list(reader.fieldnames or [])
        rows = list(reader)
    (out / "README.md").unlink()  # the generator's README says "all synthetic"; this set is not
    # Big copies are spread over the sources so they are not one photo twelve times.
    big_every = n_real // n_big if n_big else 0
    for k in range(n_real):
        big = bool(big_every) and k % big_every == 0 and k // big_every < n_big
        rows.append(_resampled(sources[k % len(sources)], k, big, out))
    _shuffle_names(out, rows)
    with (out / "manifest.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows({c: r.get(c, "") for c in columns} for r in rows)
    return {"composites": n_synth - people - negatives, "people": people,
            "negatives": negatives, "real": n_real - n_big, "real 12 MP": n_big}  # fmt: skip


# --- 3. evaluation ----------------------------------------------------------------------------


def register_models() -> list[Any]:
    """subject-lift 1.0.0 (baseline) and 1.1.0 (candidate) from fixtures/models, ready."""
    import json

    from models.models import ModelVersion, VersionStatus
    from models.services import model_version_register

    out = []
    for version in ("1.0.0", "1.1.0"):
        path = MODELS / f"subject-lift-{version}.pt2"
        spec = json.loads(Path(f"{path}.spec.json").read_text())
        reg = model_version_register(
            family="subject-lift", version=version, file=path, spec=spec, validate="none"
        )
        ModelVersion.objects.filter(pk=reg.version.pk).update(status=VersionStatus.READY)
        out.append(ModelVersion.objects.select_related("family").get(pk=reg.version.pk))
    return out


class Sampler(threading.Thread):
    """Resident memory of each worker's process tree, every SAMPLE_SECONDS, until stopped."""

    def __init__(self, pids: list[int]) -> None:
        super().__init__(daemon=True)
        self.pids = pids
        self.samples: list[tuple[float, list[int]]] = []
        self.done = threading.Event()

    def run(self) -> None:
        began = time.monotonic()
        while not self.done.is_set():
            self.samples.append((time.monotonic() - began, trees_rss_bytes(self.pids)))
            self.done.wait(SAMPLE_SECONDS)

    def stop(self) -> list[tuple[float, list[int]]]:
        self.done.set()
        self.join()
        return self.samples


def evaluate(
    versions: list[Any], dataset_version: Any, log: Log
) -> tuple[list[Any], list[tuple[float, list[int]]], list[tuple[str, float, float]], list[Any]]:
    """Each version's run on the two live workers, one run after the other; the finished runs,
    the memory samples (seconds since the first run was queued), each run's window in them
    (label, start, end) and the workers, left running for the compare job. One run at a time,
    so each run's memory is judged on one model's work: queued together, the first version's
    chunks go first and the second's fill the end, and the second model's own footprint read
    as growth."""
    from evalsite.evals.models import EvalRun
    from evalsite.evals.selectors import run_progress
    from evalsite.evals.services.runs import eval_run_start

    # One runtime thread each: two workers share two cores, and a runtime with more threads than
    # free cores waits on them (the default threads: 2.4 s per image in the model step at load 12).
    procs = start_workers(WORKERS, var_dir=Path(os.environ["VAR_DIR"]), tag="large",
                          env={"EVAL_RUNNER_THREADS": "1", "OMP_NUM_THREADS": "1"})  # fmt: skip
    try:
        live = wait_live(WORKERS)
        log(f"{WORKERS} workers live {live:.1f} s after start (not counted)")
        sampler = Sampler([p.pid for p in procs])
        sampler.start()
        began = time.monotonic()
        n = dataset_version.item_count
        runs, windows = [], []
        for version in versions:
            start = time.monotonic() - began
            run = eval_run_start(model_version=version, dataset_version=dataset_version)
            last = time.monotonic()
            while not run.is_finished:
                time.sleep(1.0)
                run = EvalRun.objects.select_related("job").get(pk=run.pk)
                if time.monotonic() - last >= PROGRESS_SECONDS:
                    last = time.monotonic()
                    rss = trees_rss_bytes([p.pid for p in procs])
                    log(f"  {last - began:6.0f} s: run #{run.pk} {run_progress(run)['done']}/{n}; "
                        "worker trees " + " / ".join(f"{b / MIB:.0f}" for b in rss) + " MiB",
                        keep=False)  # fmt: skip
            runs.append(run)
            windows.append((f"run #{run.pk} {version.ref}", start, time.monotonic() - began))
        return runs, sampler.stop(), windows, procs
    except BaseException:
        stop_workers(procs)
        raise


def memory_lines(samples: list[tuple[float, list[int]]], windows: list[tuple[str, float, float]],
                 log: Log, missed: list[str]) -> None:  # fmt: skip
    """Each tree's peak over ten slices of each run, and the verdict on its growth in that run:
    after the run's warm-up, the peak of its second half against the peak of its first."""
    for label, start, end in windows:
        inside = [(t - start, rss) for t, rss in samples if start <= t <= end]
        if len(inside) < 4:
            log(verdict(False, f"worker memory in {label}: only {len(inside)} samples", missed))
            continue
        span = end - start
        for w in range(len(inside[0][1])):
            series = [(t, rss[w]) for t, rss in inside]
            slices = [max((b for t, b in series if span * k / 10 <= t <= span * (k + 1) / 10),
                          default=0) for k in range(10)]  # fmt: skip
            log(f"worker {w + 1} tree resident memory in {label}, peak per tenth (MiB): "
                + " ".join(f"{b / MIB:.0f}" for b in slices))  # fmt: skip
            warm = span * WARM_UP
            middle = warm + (span - warm) / 2
            first = max((b for t, b in series if warm <= t < middle), default=0)
            second = max((b for t, b in series if t >= middle), default=0)
            growth = second / first - 1 if first else float("inf")
            log(verdict(growth <= MEMORY_GOAL,
                        f"worker {w + 1} memory in {label} after warm-up ({WARM_UP:.0%}): peak "
                        f"{first / MIB:.0f} MiB in the first half, {second / MIB:.0f} MiB in the "
                        f"second ({growth:+.1%}; goal <= +{MEMORY_GOAL:.0%}); overall peak "
                        f"{max(b for _, b in series) / MIB:.0f} MiB", missed))  # fmt: skip


# --- 4. reports -------------------------------------------------------------------------------


def compare_intervals(baseline: Any, candidate: Any) -> tuple[float, str]:
    """The compare page's intervals through their job, run by the live workers."""
    from evalsite.evals.models import ComparisonStatus, RunComparison
    from evalsite.evals.services.comparisons import run_comparison_request

    began = time.monotonic()
    row = run_comparison_request(baseline=baseline, candidate=candidate)
    while row.status not in (ComparisonStatus.DONE, ComparisonStatus.FAILED):
        time.sleep(0.2)
        row = RunComparison.objects.get(pk=row.pk)
    return time.monotonic() - began, f"{row.status}{': ' + row.error if row.error else ''}"


def release_report(candidate: Any, baseline: Any, dataset_version: Any, rounds: int) -> Any:
    """Built in this process through its job with `rounds` bootstrap rounds (the settings are
    stored on the report, so its page says how many)."""
    from evalsite.releases.models import ReleaseReport
    from evalsite.releases.services.reports import release_report_create, release_report_run_now

    report = release_report_create(candidate=candidate, baseline=baseline,
                                   dataset_versions=[dataset_version], enqueue=False)  # fmt: skip
    ReleaseReport.objects.filter(pk=report.pk).update(settings={**report.settings,
                                                                "rounds": rounds})  # fmt: skip
    report.refresh_from_db()
    return release_report_run_now(report=report)


def paired_count(report: Any) -> int:
    """Items both versions scored, as the report counted them."""
    return int(((report.payload or {}).get("items") or {}).get("paired", 0))


# --- 5. pages ---------------------------------------------------------------------------------


def page_times(urls: dict[str, str], views: int) -> dict[str, tuple[list[float], list[float]]]:
    """Server and wall milliseconds of `views` GETs of each page, as a researcher."""
    from django.contrib.auth.models import Group, User
    from django.test import Client

    from evalsite.core.roles import RELEASE_MANAGER, RESEARCHER, ensure_role_groups

    ensure_role_groups()
    user = User.objects.create_user("large-set-bench")
    user.groups.add(*Group.objects.filter(name__in=[RESEARCHER, RELEASE_MANAGER]))
    client = Client()
    client.force_login(user)
    out = {}
    for name, url in urls.items():
        server, wall = [], []
        for _ in range(views):
            began = time.perf_counter()
            response = client.get(url)
            wall.append((time.perf_counter() - began) * 1000.0)
            if response.status_code != 200:
                raise SystemExit(f"{name} page {url} answered {response.status_code}")
            ms = server_timing_ms(response.headers.get("Server-Timing", ""))
            server.append(wall[-1] if ms is None else ms)
        out[name] = (server, wall)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="items in the set")
    parser.add_argument(
        "--big-share",
        type=float,
        default=0.02,
        help="share of items that are 12 MP photos (at least one when > 0)",
    )
    parser.add_argument("--rounds", type=int, default=2000, help="release report rounds")
    parser.add_argument("--views", type=int, default=20, help="requests of each page")
    parser.add_argument("--results", type=Path, default=RESULTS, help="results file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary VAR_DIR")
    args = parser.parse_args()
    if args.n < 20:
        parser.error("--n must be at least 20 (10 drawn people, a negative and real photos)")
    log, missed = Log(), []
    var_dir = Path(tempfile.mkdtemp(prefix="bench-large-set-"))
    # SIGTERM unwinds like Ctrl-C, so the finally blocks stop the workers this script started.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    procs: list[Any] = []
    stages: list[tuple[str, float]] = []
    try:
        engine = setup_django(var_dir, private_db=f"large_set_bench_{os.getpid()}")
        log(f"{args.n} items, {engine}, {os.cpu_count()} CPU cores, {WORKERS} workers")

        began = time.monotonic()
        counts = build_set(var_dir / "set", args.n, args.big_share)
        stages.append(("generate the set", time.monotonic() - began))
        log("set: " + ", ".join(f"{v} {k}" for k, v in counts.items())
            + f"; generated in {stages[-1][1]:.1f} s")  # fmt: skip

        from evalsite.datasets.importing import dataset_import

        began = time.monotonic()
        imported = dataset_import(path=var_dir / "set", name="large-set",
                                  licence="research only (PASCAL VOC / BSDS500)")  # fmt: skip
        stages.append(("import", time.monotonic() - began))
        dataset_version = imported.version
        log(f"import: {imported.message} in {stages[-1][1]:.1f} s")
        if dataset_version.item_count != args.n:
            missed.append(f"imported {dataset_version.item_count} of {args.n} items")

        baseline, candidate = register_models()
        began = time.monotonic()
        runs, samples, windows, procs = evaluate([baseline, candidate], dataset_version, log)
        stages.append(("evaluate 2 versions, 2 workers", time.monotonic() - began))
        for run in runs:
            ok = run.summary.get("counts", {}).get("ok", 0)
            took = (run.finished_at - run.created_at).total_seconds()
            log(f"run #{run.pk} {run.model_version.ref}: {run.status}, {ok} items ok in "
                f"{took:.0f} s ({ok / took:.2f} images/s on both workers)")  # fmt: skip
            if run.status != "done" or ok != args.n:
                missed.append(f"run #{run.pk} {run.status} with {ok} of {args.n} items ok")
        memory_lines(samples, windows, log, missed)

        from evalsite.fairness.services import fairness_report_compute

        began = time.monotonic()
        for run in runs:
            fairness_report_compute(run=run)
        stages.append(("fairness reports (2 runs)", time.monotonic() - began))

        seconds, status = compare_intervals(runs[0], runs[1])
        stages.append(("compare intervals (job on a worker)", seconds))
        if status != "done":
            missed.append(f"compare intervals {status}")
        stop_workers(procs)
        procs = []

        from evalsite.releases.services.leaderboard import leaderboard_refresh

        began = time.monotonic()
        leaderboard_refresh(force=True)
        stages.append(("leaderboard rows", time.monotonic() - began))

        began = time.monotonic()
        report = release_report(candidate, baseline, dataset_version, args.rounds)
        report_s = time.monotonic() - began
        stages.append((f"release report ({args.rounds} rounds)", report_s))
        paired = paired_count(report)

        for name, seconds in stages:
            log(f"stage {name:<40} {seconds:8.1f} s")
        log(verdict(paired == args.n and report_s < REPORT_GOAL_S,
                    f"release report #{report.pk}: {paired} paired items, {args.rounds} rounds, "
                    f"{report_s:.2f} s (goal < {REPORT_GOAL_S:.0f} s, every item paired), "
                    f"verdict {report.verdict}", missed))  # fmt: skip

        size = database_bytes()
        media = files_bytes((var_dir / "media").rglob("*"))
        log(f"database size {size / MIB:.1f} MiB ({engine}); media {media / MIB:.0f} MiB")

        a, b = runs[0].pk, runs[1].pk
        urls = {"run": f"/runs/{b}/", "items": f"/runs/{b}/items/",
                "items, last page": f"/runs/{b}/items/?page=last",
                "compare": f"/runs/compare/?a={a}&b={b}", "fairness": f"/fairness/runs/{b}/",
                "leaderboard": "/releases/",
                "report": f"/releases/reports/{report.pk}/"}  # fmt: skip
        for name, (server, wall) in page_times(urls, args.views).items():
            p95 = pct(server, 95)
            log(verdict(p95 < PAGE_GOAL_MS,
                        f"page {name:<17} p95 {p95:7.1f} ms server, max {max(server):7.1f} ms "
                        f"(wall p95 {pct(wall, 95):7.1f} ms; {args.views} views; goal p95 < "
                        f"{PAGE_GOAL_MS:.0f} ms)", missed))  # fmt: skip
        load = os.getloadavg()[0]
        log(f"load average (1 min) at the end: {load:.1f} on {os.cpu_count()} cores")
    finally:
        if procs:
            stop_workers(procs)
        if "django" in sys.modules:
            teardown_database()
        if args.keep:
            print(f"kept {var_dir}")
        else:
            shutil.rmtree(var_dir, ignore_errors=True)
    log("ALL GOALS MET" if not missed else f"{len(missed)} GOAL(S) MISSED")
    if args.results:
        args.results.parent.mkdir(parents=True, exist_ok=True)
        args.results.write_text("\n".join(log.lines) + "\n")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
