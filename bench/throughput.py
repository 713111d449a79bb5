"""Benchmark: evaluation throughput as a share of the bare model loop, both measured in one run.

The limit (the reference): the bare model loop — the same exported model, the same image files,
the same runtime threads (1), no platform: decode each photo, preprocess it to the model's input,
run the forward pass; images/s over the set after one warm-up forward.

The platform: one real Celery worker through the queue / database / sandbox path, as a user gets
it: `eval_run_start` → chunks on the broker → the worker → sandboxed model child → post-processing,
alpha PNGs, metrics → `ItemResult` rows → finalising; images/s = items / (run finished − run
created). The run is created once the worker reports live (its sandbox has imported torch; the
seconds until then are printed, not counted); loading the model, which a worker does for every
run, is counted.

Fixed setting (the only one judged): EVAL_RUNNER_THREADS=1 (the model's threads, as in the bare
loop) and EVAL_PREFETCH=1 (the worker's own thread post-processes image i while its model child
predicts image i+1: one worker uses up to two cores, the bare loop one). Each round measures the
bare loop and then the platform, and efficiency = platform / bare of that round; the goal
(efficiency ≥ 0.5) must hold in every round.

Also printed, not judged: the same ratio for a few 12 MP photos (bench photos upscaled 8×, saved
as JPEG), where decoding, guided upsampling and scoring at full resolution are the platform's
work. Judged too: 1 → 2 workers at one thread each, prefetch off (goal ≥ 1.8× in every pair;
`--pairs 0` skips it).

Photos: PASCAL-S (about 0.2 MP) — the first `--items` pairs of ../shared/data/pascal-s when that
folder exists, else fixtures/sets/pascal-s-demo repeated with flips. Everything runs in a
throw-away VAR_DIR (its own SQLite file, filesystem broker and media; with DATABASE_URL set to
PostgreSQL, a private database there: bench/support/workers.py). Exit status 1 on a missed
goal, or when per-image results or output digests differ between runs of one set or from
`pipelines.metrics` recomputed on the stored alpha PNGs.

Not a test: ``.venv/bin/python bench/throughput.py [--items 120] [--rounds 3] [--pairs 1]``;
`make bench` keeps its output, stamped, in bench/results/throughput.txt.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.support.judge import Judge  # noqa: E402
from bench.support.workers import (  # noqa: E402
    setup_django,
    start_workers,
    stop_workers,
    teardown_database,
    wait_live,
)

SHARED_SET = ROOT.parent / "shared" / "data" / "pascal-s"
DEMO_SET = ROOT / "fixtures" / "sets" / "pascal-s-demo"
MODEL = ROOT / "fixtures" / "models" / "subject-lift-1.0.0.pt2"
EFFICIENCY_GOAL = 0.5
SCALING_GOAL = 1.8
#: Upscaling factor of the large photos: a 500×375 PASCAL-S photo becomes 4000×3000 (12 MP).
LARGE_SCALE = 8


def out(line: str = "") -> None:
    print(line, flush=True)


#: Copies of each demo pair differ by a flip (identical files would be stored, and imported, once).
FLIPS = (None, Image.Transpose.FLIP_LEFT_RIGHT, Image.Transpose.FLIP_TOP_BOTTOM,
         Image.Transpose.ROTATE_180)  # fmt: skip


def source_pairs(items: int) -> tuple[list[tuple[Path, Path]], str]:
    if (SHARED_SET / "images").is_dir():
        images = sorted((SHARED_SET / "images").iterdir())[:items]
        pairs = [(p, SHARED_SET / "masks" / f"{p.stem}.png") for p in images]
        return pairs, f"PASCAL-S, first {len(pairs)} pairs of ../shared/data/pascal-s"
    images = sorted((DEMO_SET / "images").iterdir())
    pairs = [(p, DEMO_SET / "masks" / f"{p.stem}.png") for p in images]
    return pairs, "fixtures/sets/pascal-s-demo"


def bench_set(var_dir: Path, items: int) -> tuple[Any, str]:
    """The bench photos as an imported set (demo pairs repeated, flipped, up to `items`)."""
    from evalsite.datasets.importing import dataset_import

    pairs, label = source_pairs(items)
    folder = var_dir / "bench-set"
    for sub in ("images", "masks"):
        (folder / sub).mkdir(parents=True)
    copies = 1 if len(pairs) >= items else min(len(FLIPS), -(-items // len(pairs)))
    for k in range(copies):
        for image, mask in pairs:
            for src, sub, ext in ((image, "images", image.suffix), (mask, "masks", ".png")):
                target = folder / sub / f"{image.stem}-r{k}{ext}"
                if FLIPS[k] is None:
                    shutil.copyfile(src, target)
                else:
                    with Image.open(src) as im:
                        im.transpose(FLIPS[k]).save(target, quality=95)
    if copies > 1:
        label += f" ×{copies} (flipped copies)"
    return dataset_import(path=folder, name="bench-set").version, label


def large_set(var_dir: Path, count: int) -> Any:
    """`count` bench photos upscaled LARGE_SCALE× (bicubic, JPEG q92; masks nearest)."""
    from evalsite.datasets.importing import dataset_import

    pairs, _ = source_pairs(count)
    folder = var_dir / "bench-12mp"
    for sub in ("images", "masks"):
        (folder / sub).mkdir(parents=True)
    for image, mask in pairs[:count]:
        with Image.open(image) as im, Image.open(mask) as m:
            size = (im.width * LARGE_SCALE, im.height * LARGE_SCALE)
            im.convert("RGB").resize(size, Image.Resampling.BICUBIC).save(
                folder / "images" / f"{image.stem}.jpg", quality=92
            )
            m.resize(size, Image.Resampling.NEAREST).save(folder / "masks" / f"{image.stem}.png")
    return dataset_import(path=folder, name="bench-12mp").version


def bench_model() -> Any:
    import json

    from models.models import ModelVersion, VersionStatus
    from models.services import model_version_register

    spec = json.loads(Path(f"{MODEL}.spec.json").read_text())
    reg = model_version_register(
        family="bench", version="1.0.0", file=MODEL, spec=spec, validate="none"
    )
    ModelVersion.objects.filter(pk=reg.version.pk).update(status=VersionStatus.READY)
    return ModelVersion.objects.get(pk=reg.version.pk)


def bare_ips(paths: list[Path], threads: int) -> float:
    """The limit: decode, preprocess and forward each photo with nothing around it (images/s)."""
    import json

    import cv2
    import torch

    from pipelines.runners.images import load_image_rgb
    from pipelines.runners.torch_runners import TorchExportRunner

    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    runner = TorchExportRunner(device="cpu", threads=threads)
    runner.load(MODEL, json.loads(Path(f"{MODEL}.spec.json").read_text()))
    runner.forward(runner.prepare(load_image_rgb(paths[0]))[0])  # warm-up, not timed
    began = time.perf_counter()
    for path in paths:
        model_input, _ = runner.prepare(load_image_rgb(path))
        runner.forward(model_input)
    return len(paths) / (time.perf_counter() - began)


def set_paths(dataset_version: Any) -> list[Path]:
    from evalsite.datasets.models import Item

    return [Path(i.image.path) for i in Item.objects.filter(version=dataset_version).order_by("pk")]


#: (dataset version id, run id) of every measured run, for the integrity check.
RUNS: list[tuple[int, int]] = []


def measure(version: Any, dataset_version: Any, *, workers: int, chunk_size: int, var_dir: Path,
            prefetch: bool) -> dict[str, float]:  # fmt: skip
    from evalsite.evals.models import EvalRun, RunStatus
    from evalsite.evals.services.runs import eval_run_start

    procs = start_workers(workers, var_dir=var_dir, tag=f"{workers}-{time.monotonic_ns()}",
                          env={"EVAL_RUNNER_THREADS": "1", "OMP_NUM_THREADS": "1",
                               "EVAL_PREFETCH": "1" if prefetch else "0"})  # fmt: skip
    try:
        startup = wait_live(workers)
        run = eval_run_start(
            model_version=version, dataset_version=dataset_version, chunk_size=chunk_size
        )
        while True:
            run = EvalRun.objects.get(pk=run.pk)
            if run.is_finished:
                break
            time.sleep(0.1)
    finally:
        stop_workers(procs)
    if run.status != RunStatus.DONE:
        raise SystemExit(f"run #{run.pk} {run.status}: {run.error}")
    elapsed = (run.finished_at - run.created_at).total_seconds()
    RUNS.append((dataset_version.pk, run.pk))
    stages = next(iter(run.summary["latency"]["devices"].values()))["stages"]
    n = run.summary["counts"]["ok"]
    return {"ips": n / elapsed, "elapsed": elapsed, "items": n, "startup": startup,
            "model_p50": stages["model"]["p50"],
            "post_p50": stages["postprocess"]["p50"]}  # fmt: skip


def describe(r: dict[str, float]) -> str:
    return (f"{r['ips']:6.2f} images/s ({r['items']} in {r['elapsed']:.1f} s; model p50 "
            f"{r['model_p50']:.0f} ms, post-processing p50 {r['post_p50']:.0f} ms; worker live "
            f"{r['startup']:.1f} s after start)")  # fmt: skip


def integrity_errors() -> list[str]:
    """Runs of one set give identical per-image rows and output digests, and every row equals
    `pipelines.metrics` on its stored alpha PNG and the item's mask."""
    from django.conf import settings

    from evalsite.evals.models import EvalRun, ItemResult
    from pipelines.metrics import evaluate_pair
    from pipelines.metrics.io import read_gray8

    errors: list[str] = []
    results = ItemResult.objects.select_related("item")
    rows = {run_id: {r.item_id: r for r in results.filter(run_id=run_id)} for _, run_id in RUNS}
    digests = dict(EvalRun.objects.filter(pk__in=rows).values_list("pk", "output_digest"))
    for set_id in sorted({s for s, _ in RUNS}):
        same = [run_id for s, run_id in RUNS if s == set_id]
        for other in same[1:]:
            a, b = rows[same[0]], rows[other]
            differ = [i for i in a if i not in b or a[i].metrics != b[i].metrics]
            if differ or len(a) != len(b):
                errors.append(f"runs #{same[0]} and #{other} differ on {len(differ)} image(s)")
            if not digests[same[0]] or digests[same[0]] != digests[other]:
                errors.append(f"runs #{same[0]} and #{other} have different output digests")
    media = Path(settings.MEDIA_ROOT)
    for run_id, by_item in rows.items():
        for r in by_item.values():
            gt = read_gray8(Path(r.item.mask.path)) > 127
            ref = evaluate_pair(read_gray8(media / r.artefacts["alpha"]), gt)
            if r.metrics != {k: float(v) for k, v in ref.items() if k != "curves"}:
                errors.append(f"run #{run_id} item {r.item.stem}: metrics differ from pipelines")
    return errors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=120, help="bench photos (0.2 MP)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="bare-loop / platform measurements, each judged")  # fmt: skip
    parser.add_argument("--large", type=int, default=4, help="12 MP photos (0: skip)")
    parser.add_argument("--pairs", type=int, default=1,
                        help="1 / 2-worker pairs, each judged (0: skip)")  # fmt: skip
    parser.add_argument("--chunk-size", type=int, default=8)
    parser.add_argument("--keep", action="store_true", help="keep the temporary VAR_DIR")
    args = parser.parse_args()
    judge = Judge()
    var_dir = Path(tempfile.mkdtemp(prefix="bench-throughput-"))
    # SIGTERM unwinds like Ctrl-C, so the finally blocks stop the workers this script started.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        setup_django(var_dir, private_db="bench_throughput")
        dataset_version, label = bench_set(var_dir, args.items)
        version = bench_model()
        paths = set_paths(dataset_version)
        out(f"model: subject-lift 1.0.0 ({MODEL.relative_to(ROOT)}), 1 runtime thread\n"
            f"set: {len(paths)} photos, {label}; chunk size {args.chunk_size}; "
            f"{os.cpu_count()} CPU cores\n")  # fmt: skip
        for k in range(1, args.rounds + 1):
            bare = bare_ips(paths, threads=1)
            r = measure(version, dataset_version, workers=1, chunk_size=args.chunk_size,
                        var_dir=var_dir, prefetch=True)  # fmt: skip
            out(f"round {k}: bare model loop {bare:6.2f} images/s; platform, 1 worker, prefetch "
                f"on: {describe(r)}")  # fmt: skip
            judge.goal(f"round {k}: platform / bare model loop", round(r["ips"] / bare, 2),
                       EFFICIENCY_GOAL, "higher")  # fmt: skip
        if args.large:
            big = large_set(var_dir, args.large)
            bare = bare_ips(set_paths(big), threads=1)
            r = measure(version, big, workers=1, chunk_size=args.chunk_size, var_dir=var_dir,
                        prefetch=True)  # fmt: skip
            out(f"\n12 MP ({args.large} photos upscaled {LARGE_SCALE}×, JPEG): bare model loop "
                f"{bare:.2f} images/s; platform {describe(r)}\n  efficiency "
                f"{r['ips'] / bare:.2f} (reported, not judged: decoding, guided upsampling and "
                "scoring at 12 MP are the platform's work)")  # fmt: skip
        for k in range(1, args.pairs + 1):
            one = measure(version, dataset_version, workers=1, chunk_size=args.chunk_size,
                          var_dir=var_dir, prefetch=False)  # fmt: skip
            two = measure(version, dataset_version, workers=2, chunk_size=args.chunk_size,
                          var_dir=var_dir, prefetch=False)  # fmt: skip
            out(f"\nscaling pair {k} (1 thread per worker, prefetch off): 1 worker "
                f"{one['ips']:.2f}, 2 workers {two['ips']:.2f} images/s")  # fmt: skip
            judge.goal(f"scaling pair {k}: 2 workers / 1 worker", round(two["ips"] / one["ips"], 2),
                       SCALING_GOAL, "higher", "×")  # fmt: skip
        load, cores = os.getloadavg()[0], os.cpu_count() or 1
        out(f"\nload average (1 min) at the end: {load:.1f} on {cores} cores")
        errors = integrity_errors()
        judge.check(f"integrity, {len(RUNS)} runs: per-image results and output digests identical "
                    "per set, equal to pipelines", not errors, "; ".join(errors[:5]))  # fmt: skip
    finally:
        teardown_database()
        if args.keep:
            print(f"kept {var_dir}")
        else:
            shutil.rmtree(var_dir, ignore_errors=True)
    return judge.finish()


if __name__ == "__main__":
    sys.exit(main())
