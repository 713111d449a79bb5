"""Benchmark: evaluation throughput (images/s) through the real queue / database / sandbox path.

What it measures, end to end as a user gets it: `eval_run_start` → chunks on the broker → N real
Celery worker processes → sandboxed model child per chunk → post-processing, PNGs, metrics →
`ItemResult` rows → aggregation; images/s = items / (run finished − run created).

* best single-worker setting: one worker, runtime threads 1 … all cores (EVAL_RUNNER_THREADS);
* scaling: 1 vs 2 worker processes with one thread each (goal ≥ 1.8×, i.e. the queue/DB path adds
  little and chunks spread evenly).

Everything runs in a throw-away VAR_DIR (its own SQLite file, filesystem broker and media), so a
running demo is never touched. The model is fixtures/models/subject-lift-1.0.0.pt2 when present,
else the reference network architecture exported untrained (same compute per image). The set is
fixtures/sets/pascal-s-demo repeated `--repeat` times.

Not a test: ``.venv/bin/python bench/throughput.py [--repeat 2] [--chunk-size 4]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
QUEUES = "default,torch,onnx"


def setup_django(var_dir: Path) -> None:
    os.environ["VAR_DIR"] = str(var_dir)
    os.environ["DJANGO_SETTINGS_MODULE"] = "evalsite.settings"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)


#: Copies of each pair differ by a flip (identical files would be stored, and imported, once).
FLIPS = (None, Image.Transpose.FLIP_LEFT_RIGHT, Image.Transpose.FLIP_TOP_BOTTOM,
         Image.Transpose.ROTATE_180)  # fmt: skip


def bench_set(var_dir: Path, repeat: int) -> object:
    """pascal-s-demo with every pair repeated `repeat` (≤ 4) times, flipped, under new stems."""
    from evalsite.datasets.importing import dataset_import

    src = ROOT / "fixtures" / "sets" / "pascal-s-demo"
    folder = var_dir / "bench-set"
    for sub in ("images", "masks"):
        (folder / sub).mkdir(parents=True)
        for path in sorted((src / sub).iterdir()):
            for k in range(min(repeat, len(FLIPS))):
                with Image.open(path) as im:
                    flipped = im if FLIPS[k] is None else im.transpose(FLIPS[k])
                    flipped.save(folder / sub / f"{path.stem}-r{k}.png")
    return dataset_import(path=folder, name="bench-set").version


def bench_model(var_dir: Path) -> tuple[object, str]:
    import json

    from models.models import ModelVersion, VersionStatus
    from models.services import model_version_register

    shipped = ROOT / "fixtures" / "models" / "subject-lift-1.0.0.pt2"
    if shipped.exists():
        spec = json.loads(Path(f"{shipped}.spec.json").read_text())
        path, label = shipped, "subject-lift 1.0.0 (fixtures/models)"
    else:
        import torch

        from pipelines.reference.export import export_program, make_spec
        from pipelines.reference.model import CONFIGS, build_model

        path = var_dir / "untrained-small.pt2"
        torch.export.save(export_program(build_model(CONFIGS["small"])), str(path))
        spec = make_spec("untrained", [])
        label = "reference network 'small' (1.0.0's architecture), untrained weights"
    reg = model_version_register(
        family="bench", version="1.0.0", file=path, spec=spec, validate="none"
    )
    ModelVersion.objects.filter(pk=reg.version.pk).update(status=VersionStatus.READY)
    return ModelVersion.objects.get(pk=reg.version.pk), label


def start_workers(n: int, threads: int, var_dir: Path) -> list[subprocess.Popen[bytes]]:
    env = dict(os.environ)
    env.update({"EVAL_RUNNER_THREADS": str(threads), "OMP_NUM_THREADS": str(threads),
                "WORKER_HEARTBEAT_SECONDS": "1"})  # fmt: skip
    procs = []
    for i in range(n):
        log = open(var_dir / f"worker-{threads}-{n}-{i}.log", "wb")  # noqa: SIM115
        cmd = [sys.executable, "-m", "celery", "-A", "evalsite", "worker", "-Q", QUEUES, "-c",
               "1", "-n", f"bench{i}-{os.getpid()}@%h", "-l", "warning", "--without-mingle",
               "--without-gossip"]  # fmt: skip
        procs.append(subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=log,
                                      start_new_session=True))  # fmt: skip
    return procs


def stop_workers(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    from evalsite.core.models import WorkerHeartbeat

    WorkerHeartbeat.objects.all().delete()


def wait_live(n: int, timeout: float = 90) -> None:
    from evalsite.core.selectors import workers_by_queue

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if workers_by_queue()["torch"]["live"] >= n:
            return
        time.sleep(0.3)
    raise SystemExit(f"{n} worker(s) did not come up in {timeout:.0f} s")


def measure(version: object, dataset_version: object, *, workers: int, threads: int,
            chunk_size: int, var_dir: Path) -> dict[str, float]:  # fmt: skip
    from evalsite.evals.models import EvalRun, RunStatus
    from evalsite.evals.services.runs import eval_run_start

    procs = start_workers(workers, threads, var_dir)
    try:
        wait_live(workers)
        run = eval_run_start(
            model_version=version, dataset_version=dataset_version, chunk_size=chunk_size
        )
        while True:
            run = EvalRun.objects.get(pk=run.pk)
            if run.is_finished:
                break
            time.sleep(0.2)
    finally:
        stop_workers(procs)
    if run.status != RunStatus.DONE:
        raise SystemExit(f"run #{run.pk} {run.status}: {run.error}")
    elapsed = (run.finished_at - run.created_at).total_seconds()
    devices = run.summary["latency"]["devices"]
    stages = next(iter(devices.values()))["stages"]
    n = run.summary["counts"]["ok"]
    return {"ips": n / elapsed, "elapsed": elapsed, "items": n,
            "model_p50": stages["model"]["p50"], "total_p50": stages["total"]["p50"]}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=4, help="copies of pascal-s-demo (30 each)")
    parser.add_argument("--chunk-size", type=int, default=8)
    parser.add_argument("--keep", action="store_true", help="keep the temporary VAR_DIR")
    args = parser.parse_args()
    var_dir = Path(tempfile.mkdtemp(prefix="bench-throughput-"))
    # SIGTERM unwinds like Ctrl-C, so the finally blocks stop the workers this script started.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        setup_django(var_dir)
        dataset_version, (version, label) = bench_set(var_dir, args.repeat), bench_model(var_dir)
        cores = os.cpu_count() or 1
        print(f"model: {label}\nset: {dataset_version.item_count} items, chunk size "  # type: ignore[attr-defined]
              f"{args.chunk_size}; {cores} CPU cores\n")  # fmt: skip
        thread_options = sorted({1, max(1, cores // 2), cores})
        single = {}
        for t in thread_options:
            r = measure(version, dataset_version, workers=1, threads=t,
                        chunk_size=args.chunk_size, var_dir=var_dir)  # fmt: skip
            single[t] = r
            print(f"1 worker  × {t} thread(s): {r['ips']:6.2f} images/s  ({r['items']} in "
                  f"{r['elapsed']:.1f} s; model p50 {r['model_p50']:.0f} ms, "
                  f"total p50 {r['total_p50']:.0f} ms)")  # fmt: skip
        best = max(single, key=lambda t: single[t]["ips"])
        print(f"best single-worker setting: {best} thread(s), {single[best]['ips']:.2f} images/s\n")
        two = measure(version, dataset_version, workers=2, threads=1,
                      chunk_size=args.chunk_size, var_dir=var_dir)  # fmt: skip
        one = single[1]
        print(f"2 workers × 1 thread : {two['ips']:6.2f} images/s  ({two['elapsed']:.1f} s)")
        ratio = two["ips"] / one["ips"]
        verdict = "meets" if ratio >= 1.8 else "misses"
        print(f"scaling 1 → 2 workers (1 thread each): {ratio:.2f}× ({verdict} the 1.8× goal)")
        if cores < 2:
            print("note: fewer than 2 cores, so 2 workers cannot run in parallel here")
    finally:
        if args.keep:
            print(f"kept {var_dir}")
        else:
            shutil.rmtree(var_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
