"""Run every bench (or the named ones), write each results file, and list every miss at the end.

Each bench runs as `python bench/<name>.py` in its own process; its output (stdout and stderr)
goes to the console and to bench/results/<name>.txt under the stamp (commit, date, machine,
command) taken as it starts. A bench that misses does not stop the others. A miss is a verdict
line starting with MISS or FAIL (bench/support/judge.py), or a non-zero exit status; the summary
names the bench and the line, and the exit status is 1 when there is any.

    .venv/bin/python bench/support/run_all.py [NAME ...]      (`make bench [BENCH="NAME ..."]`)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.support.judge import MISS_MARKERS
from bench.support.stamp import ROOT, stamp

BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
#: Where a bench's output goes while it runs; renamed to bench/results/<name>.txt when it ends.
PARTIAL = ".{}.txt.partial"


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


def benches() -> list[str]:
    return sorted(p.stem for p in BENCH.glob("*.py"))


def is_miss(line: str) -> bool:
    return line.lstrip().startswith(MISS_MARKERS) or "INTEGRITY FAIL" in line


def run(name: str) -> tuple[int, list[str]]:
    """Run one bench into its results file; (exit status, its miss lines)."""
    script = BENCH / f"{name}.py"
    command = [_shown(Path(sys.executable)), _shown(script)]
    RESULTS.mkdir(parents=True, exist_ok=True)
    partial = RESULTS / PARTIAL.format(name)
    misses: list[str] = []
    started = time.perf_counter()
    with partial.open("w") as out:
        header = stamp(command)
        print(header, flush=True)
        out.write(header + "\n")
        proc = subprocess.Popen(
            [sys.executable, str(script)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            out.write(line)
            out.flush()
            if is_miss(line):
                misses.append(line.strip())
        rc = proc.wait()
        tail = (
            f"exit status {rc} after {time.perf_counter() - started:.0f} s; load average "
            f"{os.getloadavg()[0]:.1f} at the end"
        )
        print(tail, flush=True)
        out.write(tail + "\n")
    partial.replace(RESULTS / f"{name}.txt")
    if rc != 0 and not misses:
        misses.append(f"exit status {rc} with no verdict line (crashed?)")
    return rc, misses


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="bench names (default: every bench/*.py)")
    args = parser.parse_args(argv)
    known = benches()
    unknown = sorted(set(args.names) - set(known))
    if unknown:
        parser.error(f"no bench/{unknown[0]}.py (benches: {', '.join(known)})")
    missed: dict[str, list[str]] = {}
    for name in args.names or known:
        print(f"\n=== {_shown(BENCH / name)}.py -> {_shown(RESULTS / name)}.txt", flush=True)
        _, misses = run(name)
        if misses:
            missed[name] = misses
    print(f"\n=== {len(args.names or known)} bench(es), {len(missed)} with a miss")
    for name, misses in missed.items():
        for line in misses:
            print(f"{name}: {line}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
