"""bench/large_set.py end to end at 20 photos: every stage runs and every figure is printed.

The goals themselves are judged on the full set (bench/results/large_set.txt); here the bench
must finish (exit 0, or 1 for a missed goal, never a crash) and report what it measured.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.worker, pytest.mark.no_services]

ROOT = Path(__file__).resolve().parent.parent
PAGE_LINE = re.compile(r"^(?:OK|MISSED)\s+page (.+?)\s+p95 ")
PAGES = ("run", "items", "items, last page", "compare", "fairness", "leaderboard", "report")
STAGES = ("generate the set", "import", "evaluate 2 versions, 2 workers",
          "fairness reports (2 runs)", "compare intervals (job on a worker)", "leaderboard rows",
          "release report (2000 rounds)")  # fmt: skip


def test_large_set_bench_runs_every_stage_small(tmp_path: Path) -> None:
    results = tmp_path / "large_set.txt"
    # The bench makes its own VAR_DIR (or its own database on a PostgreSQL server).
    env = {k: v for k, v in os.environ.items() if k not in ("VAR_DIR", "DJANGO_SETTINGS_MODULE")}
    if not env.get("DATABASE_URL", "").startswith("postgres"):
        env.pop("DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "bench/large_set.py", "--n", "20", "--views", "3",
         "--results", str(results)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode in (0, 1), output
    assert "Traceback" not in output, output
    lines = results.read_text().splitlines()
    assert lines[0].startswith("commit ") and "--n 20" in lines[0]
    text = "\n".join(lines)
    for stage in STAGES:
        assert f"stage {stage}" in text, stage
    assert "set: 7 composites, 10 people, 1 negatives, 1 real, 1 real 12 MP" in text
    assert "— 20 items" in text  # the import took every generated item
    assert "20 paired items, 2000 rounds" in text
    for run, ref in ((1, "subject-lift:1.0.0"), (2, "subject-lift:1.1.0")):
        for worker in (1, 2):  # judged per run: one model's work at a time
            assert f"worker {worker} tree resident memory in run #{run} {ref}, peak per" in text
    assert "database size" in text
    pages = [m[1] for m in map(PAGE_LINE.match, lines) if m]
    assert sorted(pages) == sorted(PAGES)
    judged = [line for line in lines if line.startswith(("OK ", "MISSED "))]
    assert len(judged) == 4 + 1 + len(PAGES)  # two workers' memory in two runs, report, pages
    missed = [line for line in judged if line.startswith("MISSED")]
    assert (done.returncode == 1) == bool(missed)
    assert lines[-1] == (f"{len(missed)} GOAL(S) MISSED" if missed else "ALL GOALS MET")
