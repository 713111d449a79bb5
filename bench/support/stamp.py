"""The first line of every results file: which commit, when, and how busy the machine was."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def stamp() -> str:
    """`commit abc1234, 2026-12-07 00:05 UTC, load average 7.4, 2 CPUs, command …`."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        commit = ""
    load = os.getloadavg()[0]
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])
    return (
        f"commit {commit or 'unknown'}, {now}, load average {load:.1f}, {os.cpu_count()} CPUs, "
        f"command: {command}"
    )
