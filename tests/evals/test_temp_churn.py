"""The import tests pass while another process creates and deletes `import-*` folders in the
system temp folder: they look for leftovers in their own TEMP_ROOT only (a test that compared the
system temp folder before and after a request failed wherever anything else imported)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.workers import ROOT

pytestmark = pytest.mark.no_services

# Keeps a few `import-*` folders alive in the system temp folder and replaces one every
# millisecond, so the set of such folders differs between any two moments a test could compare.
CHURN = """
import os, shutil, sys, tempfile, time
flag, alive, made = sys.argv[1], [], 0
while os.path.exists(flag):
    folder = tempfile.mkdtemp(prefix="import-", dir=tempfile.gettempdir())
    os.mkdir(os.path.join(folder, "files"))
    alive.append(folder)
    made += 1
    if len(alive) > 3:
        shutil.rmtree(alive.pop(0), ignore_errors=True)
    time.sleep(0.001)
for folder in alive:
    shutil.rmtree(folder, ignore_errors=True)
print(made)
"""

IMPORT_TESTS = [
    "tests/evals/test_import_web.py",
    "tests/hostile/test_predictions.py",
    "tests/hostile/test_archives.py",
]


def test_the_import_tests_pass_while_another_process_churns_the_system_temp_folder(
    tmp_path: Path,
) -> None:
    flag = tmp_path / "churning"
    flag.touch()
    churn = subprocess.Popen(
        [sys.executable, "-c", CHURN, str(flag)], stdout=subprocess.PIPE, text=True
    )
    try:
        env = {k: v for k, v in os.environ.items() if k != "TEST_RUN_ID"}  # a session of its own
        done = subprocess.run(
            [sys.executable, "-m", "pytest", *IMPORT_TESTS, "-q", "-p", "no:cacheprovider",
             "-k", "refused or bad_input or not_a_500 or extraction_path"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=540,
        )  # fmt: skip
    finally:
        flag.unlink()
        made, _ = churn.communicate(timeout=60)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "deselected" in done.stdout
    assert int(made) > 100, "the churn did not run alongside the tests"
