"""Freed heap memory stays in the process (pipelines.heap): temporaries of the next photo reuse it
instead of faulting fresh zero pages in."""

from __future__ import annotations

import subprocess
import sys

import pytest

#: One "photo": eight 4 MB temporaries alive at once, then freed (the guided filter's pattern).
PHOTOS = """
import resource, sys
import numpy as np
from pipelines.heap import retain_freed_memory
if sys.argv[1] == "retain":
    assert retain_freed_memory()
def photo():
    arrays = [np.ones(2**20, np.float32) for _ in range(8)]
    return sum(float(a[::4096].sum()) for a in arrays)
photo()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    photo()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _page_faults(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", PHOTOS, mode], capture_output=True, text=True,
                          check=True)  # fmt: skip
    return int(done.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_retained_memory_serves_the_next_photos_temporaries_without_page_faults():
    # glibc's defaults hand the 32 MB back after every photo and fault it in again (~8 000 pages
    # per photo); retained, the next photos fault none.
    assert _page_faults("default") > 10 * 4000
    assert _page_faults("retain") < 100


def test_it_does_nothing_off_linux(monkeypatch):
    from pipelines import heap

    monkeypatch.setattr(heap.sys, "platform", "darwin")
    assert heap.retain_freed_memory() is False
