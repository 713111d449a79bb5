"""How a run's items are cut into chunks (the units one worker claims, retries and reports).

Cut evenly into chunks of ``size``, the last chunk to be taken runs alone: every other worker is
idle until it ends, on average for half a chunk each. So a long run ends on smaller chunks: its
last ``2 × size`` to ``3 × size`` items go in pieces of ``ceil(size / 4)``, and while one worker
finishes the last full chunk the others take the pieces, so the workers end within a small
piece of each other (the "guided" schedule of OpenMP, with one step down). Measured with two
workers on 120 images in chunks of 8 (bench/throughput.py, runs of 7-9 s): the worker that
finished first had waited 0.54 and 0.60 s for the other; with the pieces, 0.01-0.20 s (4 runs).
A run of at most ``4 × size`` items, or in chunks of fewer than 4 items, is cut evenly: too
few chunks, or chunks too small, for the extra chunks (each costs a claim, a message and a
commit) to pay. ``size`` stays the largest chunk, so a crash still repeats at most ``size``
images.
"""

from __future__ import annotations

import math

#: A run of more than this many chunks' worth of items ends on smaller pieces.
TAPER_AFTER_CHUNKS = 4
#: How many chunks' worth of items at the end are cut smaller, at least.
TAIL_CHUNKS = 2
#: The pieces at the end are this many times smaller than a chunk (rounded up).
TAIL_DIVISOR = 4


def chunk_bounds(n: int, size: int) -> list[tuple[int, int]]:
    """[start, stop) of each chunk of ``n`` items in order, no chunk larger than ``size``."""
    if size < 1:
        raise ValueError(f"chunk size must be at least 1, not {size}")
    if n < 0:
        raise ValueError(f"item count must be at least 0, not {n}")
    if n <= TAPER_AFTER_CHUNKS * size or size < TAIL_DIVISOR:
        return [(i, min(i + size, n)) for i in range(0, n, size)]
    head = (n - TAIL_CHUNKS * size) // size * size
    piece = math.ceil(size / TAIL_DIVISOR)
    return [(i, i + size) for i in range(0, head, size)] + [
        (i, min(i + piece, n)) for i in range(head, n, piece)
    ]
