"""Benchmark: evaluation throughput with S3 storage vs filesystem storage, same machine, same run;
and how long a cold worker cache takes to fetch the demo set.

The reference: the same evaluation on the filesystem store (`STORAGE_URL=file://`, the worker
reads MEDIA_ROOT). The same photos are imported once into each store and the same exported model
registered in each; each run goes through one real Celery worker (bench/throughput.py's path:
queue, database, sandboxed model, alpha PNGs, metrics, finalising); images/s = items / (run
finished − run created), the run created once the worker reports live.

S3: a bucket on moto's standalone server (`tests/support/s3server.py`; a test server on loopback,
since no production-grade S3 server is packaged where these machines install from). The S3
worker's MEDIA_ROOT is an empty folder of its own and its cache (`WORKER_CACHE_DIR`) another,
kept across its runs: the first S3 run fetches every photo and the model (cold, reported, not
judged), then each round runs the filesystem store and then S3 with the cache warm; goal: S3 /
filesystem ≥ 0.85 in every round. Uploads (alpha PNGs, the chunks' curves) go to the bucket
in every S3 run.

Cold-cache fetch: the demo set's photos and masks (fixtures/sets/pascal-s-demo, imported into the
bucket) fetched into an empty cache through the worker's own read path
(`evalsite.datasets.storage.item_file`: download, sha256 check, rename into place); reported.

Also printed: each run's time split into its chunks and the finishing step (which reads the
chunks' curves files), what one PUT, HEAD and GET of an alpha-sized object costs on the test
server, the CPU one PUT costs client and server together, and the CPU the server used per
image during each S3 run: with the server on the same cores, that CPU is taken from the
evaluation, which is the ratio's floor here.

Integrity (exit status 1 when it fails): every S3 run has the same per-image results and output
digest as the filesystem runs of the same photos, and the worker's cache ended under its cap.

The judged runs use the platform's default chunk size (`CHUNK_SIZE`); one more pair at chunk
size 8 is reported, not judged: a chunk ends waiting for its last uploads, so smaller chunks
cost a bucket more than a disk.

Not a test: ``.venv/bin/python bench/storage.py [--items 60] [--rounds 3]``; `make bench` keeps
its output, stamped, in bench/results/storage.txt.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.support.judge import Judge, pct  # noqa: E402
from bench.support.workers import (  # noqa: E402
    setup_django,
    start_workers,
    stop_workers,
    teardown_database,
    wait_live,
)
from bench.throughput import DEMO_SET, MODEL, bench_set  # noqa: E402
from tests.support.s3server import MotoServer, S3Endpoint  # noqa: E402

RATIO_GOAL = 0.85
#: The S3 worker's cache cap: room for the bench set and the model with little to spare, so the
#: bench also shows the cap holds (checked at the end).
CACHE_MAX_MB = 64


def out(line: str = "") -> None:
    print(line, flush=True)


def s3_storages(endpoint: S3Endpoint) -> dict[str, Any]:
    from django.conf import settings

    from evalsite.env import storages_from_url

    default = storages_from_url(
        "STORAGE_URL", endpoint.storage_url, endpoint_url=endpoint.url, region=endpoint.region,
        access_key=endpoint.access_key, secret_key_=endpoint.secret_key,
    )  # fmt: skip
    return {**settings.STORAGES, "default": default}


@contextmanager
def stored_in(endpoint: S3Endpoint | None, **extra: Any) -> Iterator[None]:
    """This process reads and writes stored files in the bucket (None: the filesystem store)."""
    from django.test import override_settings

    if endpoint is None:
        yield
        return
    with override_settings(STORAGES=s3_storages(endpoint), STORAGE_URL=endpoint.storage_url,
                           S3_ENDPOINT_URL=endpoint.url, **extra):  # fmt: skip
        yield


def register_model(family: str) -> Any:
    from models.models import ModelVersion, VersionStatus
    from models.services import model_version_register

    spec = json.loads(Path(f"{MODEL}.spec.json").read_text())
    reg = model_version_register(
        family=family, version="1.0.0", file=MODEL, spec=spec, validate="none"
    )
    ModelVersion.objects.filter(pk=reg.version.pk).update(status=VersionStatus.READY)
    return ModelVersion.objects.get(pk=reg.version.pk)


def measure(version: Any, dataset_version: Any, *, var_dir: Path, chunk_size: int,
            endpoint: S3Endpoint | None, worker_env: dict[str, str],
            server_pid: int) -> dict[str, Any]:  # fmt: skip
    from django.db.models import Max

    from evalsite.core.models import Chunk
    from evalsite.evals.models import EvalRun, RunStatus
    from evalsite.evals.services.runs import eval_run_start

    env = {"EVAL_RUNNER_THREADS": "1", "OMP_NUM_THREADS": "1", "EVAL_PREFETCH": "1", **worker_env}
    tag = f"{'s3' if endpoint else 'fs'}-{time.monotonic_ns()}"
    procs = start_workers(1, var_dir=var_dir, tag=tag, env=env)
    try:
        startup = wait_live(1)
        server_cpu = process_cpu_seconds(server_pid)
        with stored_in(endpoint):
            run = eval_run_start(
                model_version=version, dataset_version=dataset_version, chunk_size=chunk_size
            )
        while not run.is_finished:
            time.sleep(0.1)
            run = EvalRun.objects.get(pk=run.pk)
        server_cpu = process_cpu_seconds(server_pid) - server_cpu
    finally:
        stop_workers(procs)
    if run.status != RunStatus.DONE:
        raise SystemExit(f"run #{run.pk} {run.status}: {run.error}")
    elapsed = (run.finished_at - run.created_at).total_seconds()
    # Where the time went: the chunks (fetch, predict, write), then the finishing step that reads
    # the chunks' curves files back to aggregate and digest the run.
    last_chunk = Chunk.objects.filter(job_id=run.job_id).aggregate(last=Max("finished_at"))["last"]
    n = run.summary["counts"]["ok"]
    return {"run": run, "ips": n / elapsed, "elapsed": elapsed, "items": n, "startup": startup,
            "chunks": (last_chunk - run.created_at).total_seconds(),
            "finalise": (run.finished_at - last_chunk).total_seconds(),
            "server_cpu_ms": server_cpu * 1000 / n}  # fmt: skip


def describe(r: dict[str, Any]) -> str:
    return (f"{r['ips']:6.2f} images/s ({r['items']} in {r['elapsed']:.1f} s: chunks "
            f"{r['chunks']:.1f} s, finishing step {r['finalise']:.1f} s; worker live "
            f"{r['startup']:.1f} s after start)")  # fmt: skip


def per_image(run: Any) -> dict[str, dict[str, float]]:
    from evalsite.evals.models import ItemResult

    rows = ItemResult.objects.filter(run=run).values_list("item__stem", "status", "metrics")
    return {stem: {"status": status, **metrics} for stem, status, metrics in rows}


def cold_fetch(endpoint: S3Endpoint, var_dir: Path) -> tuple[float, int, int]:
    """(seconds, bytes, files) to fetch the demo set's photos and masks into an empty cache."""
    from evalsite.datasets.importing import dataset_import
    from evalsite.datasets.models import Item
    from evalsite.datasets.storage import item_file

    with stored_in(endpoint):
        demo = dataset_import(path=DEMO_SET, name="pascal-s-demo").version
    names = [n for i in Item.objects.filter(version=demo) for n in (i.image.name, i.mask.name)]
    with stored_in(endpoint, WORKER_CACHE_DIR=var_dir / "cold-cache"):
        began = time.perf_counter()
        paths = [item_file(name) for name in names]
        seconds = time.perf_counter() - began
    return seconds, sum(p.stat().st_size for p in paths), len(paths)


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def round_trips(endpoint: S3Endpoint, server_pid: int, count: int = 50) -> tuple[str, float]:
    """p50 / p90 of single PUT, HEAD and GET requests of a 30 KB object (an alpha PNG's size):
    what each request a run makes costs on this server and machine; and the CPU milliseconds
    one PUT costs this machine, client and server together (the server shares these cores)."""
    client = endpoint.client()
    body = bytes(30_000)
    calls = {
        "PUT": lambda key: client.put_object(Bucket=endpoint.bucket, Key=key, Body=body),
        "HEAD": lambda key: client.head_object(Bucket=endpoint.bucket, Key=key),
        "GET": lambda key: client.get_object(Bucket=endpoint.bucket, Key=key)["Body"].read(),
    }
    shown, put_cpu_ms = [], 0.0
    for name, call in calls.items():
        ms = []
        cpu = time.process_time(), process_cpu_seconds(server_pid)
        for i in range(count):
            began = time.perf_counter()
            call(f"round-trip/{i}")
            ms.append((time.perf_counter() - began) * 1000)
        if name == "PUT":
            client_ms = (time.process_time() - cpu[0]) * 1000 / count
            server_ms = (process_cpu_seconds(server_pid) - cpu[1]) * 1000 / count
            put_cpu_ms = client_ms + server_ms
            name += f" (CPU: client {client_ms:.1f} ms, server {server_ms:.1f} ms)"
        shown.append(f"{name} p50 {pct(ms, 50):.1f} ms, p90 {pct(ms, 90):.1f} ms")
    return "; ".join(shown), put_cpu_ms


def cache_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=60, help="bench photos (0.2 MP)")
    parser.add_argument("--rounds", type=int, default=3, help="filesystem / S3 pairs, each judged")
    parser.add_argument(
        "--chunk-size",
        type=int,
        default=None,
        help="judged runs' chunk size (default: the platform's, CHUNK_SIZE)",
    )
    parser.add_argument(
        "--small-chunks",
        type=int,
        default=8,
        help="one more pair at this chunk size, reported, not judged (0: none)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary VAR_DIR")
    args = parser.parse_args()
    judge = Judge()
    var_dir = Path(tempfile.mkdtemp(prefix="bench-storage-"))
    # SIGTERM unwinds like Ctrl-C, so the finally blocks stop the processes this script started.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    server = MotoServer.start(log=var_dir / "moto.log")
    try:
        setup_django(var_dir, private_db="bench_storage")
        from evalsite.evals.services.runs import CHUNK_SIZE

        args.chunk_size = args.chunk_size or CHUNK_SIZE
        endpoint = server.bucket("bench-storage")
        fs_set, label = bench_set(var_dir, args.items)
        fs_model = register_model("bench-fs")
        with stored_in(endpoint):
            from evalsite.datasets.importing import dataset_import

            s3_set = dataset_import(path=var_dir / "bench-set", name="bench-set-s3").version
            s3_model = register_model("bench-s3")
        worker_media, cache = var_dir / "s3-worker-media", var_dir / "s3-worker-cache"
        worker_media.mkdir()
        s3_env = {
            **endpoint.env(),
            "MEDIA_ROOT": str(worker_media),
            "WORKER_CACHE_DIR": str(cache),
            "WORKER_CACHE_MAX_MB": str(CACHE_MAX_MB),
        }
        out(f"model: subject-lift 1.0.0 ({MODEL.relative_to(ROOT)}), 1 runtime thread, "
            f"prefetch on\nset: {fs_set.items.count()} photos, {label}; chunk size "
            f"{args.chunk_size} (the platform's default: {CHUNK_SIZE}); {os.cpu_count()} CPU "
            f"cores")  # fmt: skip
        out(f"S3: moto's standalone server on loopback (a test server); the S3 worker's cache "
            f"capped at {CACHE_MAX_MB} MB\n")  # fmt: skip

        seconds, size, count = cold_fetch(endpoint, var_dir)
        trips, put_cpu_ms = round_trips(endpoint, server.proc.pid)
        out(f"one request of 30 KB to the test server: {trips}")
        out(f"cold cache: the demo set's {count} files ({size / 2**20:.1f} MB) fetched in "
            f"{seconds:.2f} s ({size / 2**20 / seconds:.1f} MB/s)\n")  # fmt: skip

        fs_runs, s3_runs = [], []
        pid = server.proc.pid
        on_fs = functools.partial(measure, fs_model, fs_set, var_dir=var_dir, endpoint=None,
                                  worker_env={}, server_pid=pid)  # fmt: skip
        on_s3 = functools.partial(measure, s3_model, s3_set, var_dir=var_dir, endpoint=endpoint,
                                  worker_env=s3_env, server_pid=pid)  # fmt: skip
        cold = on_s3(chunk_size=args.chunk_size)
        s3_runs.append(cold["run"])
        out(f"S3, cold cache (every photo and the model fetched): {describe(cold)}")
        for k in range(1, args.rounds + 1):
            fs, s3 = on_fs(chunk_size=args.chunk_size), on_s3(chunk_size=args.chunk_size)
            fs_runs.append(fs["run"])
            s3_runs.append(s3["run"])
            out(f"round {k}: filesystem {describe(fs)}\n         S3, warm cache {describe(s3)}")
            judge.goal(f"round {k}: S3 (warm cache) / filesystem", round(s3["ips"] / fs["ips"], 2),
                       RATIO_GOAL, "higher")  # fmt: skip
            # What the test server took from these cores per image during the S3 run (its
            # uploads, the chunks' curves, the finishing step's reads), against the filesystem
            # run's time per image: CPU a server on another machine would not take.
            per_image_ms = 1000 / fs["ips"]
            out(f"         the test server's CPU during the S3 run: {s3['server_cpu_ms']:.1f} ms "
                f"an image (one PUT: {put_cpu_ms:.1f} ms, client and server), against "
                f"{per_image_ms:.1f} ms per image on the filesystem "
                f"({s3['server_cpu_ms'] / per_image_ms:.0%})")  # fmt: skip
        if args.small_chunks:
            # Smaller chunks: each ends waiting for its last images' uploads and its curves
            # file, a round trip more per chunk than on a disk.
            fs, s3 = on_fs(chunk_size=args.small_chunks), on_s3(chunk_size=args.small_chunks)
            fs_runs.append(fs["run"])
            s3_runs.append(s3["run"])
            out(f"chunk size {args.small_chunks}, reported, not judged: filesystem "
                f"{describe(fs)}\n         S3, warm cache {describe(s3)}\n         S3 (warm "
                f"cache) / filesystem: {s3['ips'] / fs['ips']:.2f}")  # fmt: skip

        load, cores = os.getloadavg()[0], os.cpu_count() or 1
        out(f"\nload average (1 min) at the end: {load:.1f} on {cores} cores")
        reference = per_image(fs_runs[0])
        errors = [f"run #{r.pk} per-image results differ" for r in [*fs_runs, *s3_runs]
                  if per_image(r) != reference]  # fmt: skip
        digests = {r.output_digest for r in [*fs_runs, *s3_runs]}
        if len(digests) != 1 or "" in digests:
            errors.append(f"output digests differ: {sorted(digests)}")
        runs = f"{len(fs_runs)} filesystem and {len(s3_runs)} S3 runs"
        judge.check(f"integrity, {runs}: per-image results and output digests identical",
                    not errors, "; ".join(errors[:5]))  # fmt: skip
        used = cache_bytes(cache)
        judge.check(f"the S3 worker's cache within its cap: {used / 2**20:.1f} MB of "
                    f"{CACHE_MAX_MB} MB", used <= CACHE_MAX_MB * 2**20)  # fmt: skip
        judge.check("the S3 worker's MEDIA_ROOT stayed empty", not any(worker_media.iterdir()))
    finally:
        teardown_database()
        server.stop()
        if args.keep:
            print(f"kept {var_dir}")
        else:
            shutil.rmtree(var_dir, ignore_errors=True)
    return judge.finish()


if __name__ == "__main__":
    sys.exit(main())
