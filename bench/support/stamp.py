"""The first line of every results file: which commit, when, on how busy a machine, by what command.

bench/run_all.py writes it, at the start of each bench, above the bench's output; the test of the
results files (tests/test_bench_results.py) checks every file starts with one (STAMP matches it).
"""

from __future__ import annotations

import datetime
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STAMP = re.compile(
    r"^commit \w+( \+ local changes)?, \d{4}-\d\d-\d\d \d\d:\d\d UTC, load average [\d.]+, "
    r"\d+ CPUs, command: .+$"
)


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        return ""


def stamp(command: list[str] | None = None) -> str:
    """`commit abc1234, 2026-12-07 00:05 UTC, load average 7.4, 2 CPUs, command: …`.

    `command` defaults to this process's own (interpreter and arguments). "+ local changes" when
    files other than the results differ from the commit, so a figure is never credited to a
    commit that did not produce it.
    """
    if command is None:
        python = Path(sys.executable)
        command = [str(python.relative_to(ROOT) if python.is_relative_to(ROOT) else python)]
        command += sys.argv
    commit = _git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = _git("status", "--porcelain", "--", ".", ":!bench/results")
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"commit {commit}{' + local changes' if dirty else ''}, {now}, "
        f"load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs, "
        f"command: {' '.join(command)}"
    )
