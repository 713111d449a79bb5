"""pipelines.chunking: every item once, in order, no chunk above the size; long runs end small."""

from __future__ import annotations

import math

import pytest

from pipelines.chunking import TAIL_CHUNKS, TAIL_DIVISOR, TAPER_AFTER_CHUNKS, chunk_bounds


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 8, 16, 33])
@pytest.mark.parametrize("n", [0, 1, 2, 7, 16, 30, 64, 65, 120, 121, 1000])
def test_chunks_cover_every_item_once_in_order_and_none_is_larger_than_the_size(n, size):
    bounds = chunk_bounds(n, size)
    assert [i for start, stop in bounds for i in range(start, stop)] == list(range(n))
    assert all(0 < stop - start <= size for start, stop in bounds)
    lengths = [stop - start for start, stop in bounds]
    assert lengths == sorted(lengths, reverse=True)  # never a small chunk before a larger one


@pytest.mark.parametrize(("n", "size"), [(30, 16), (64, 16), (9, 2), (1000, 3), (12, 4)])
def test_short_runs_and_small_chunks_are_cut_evenly(n, size):
    assert chunk_bounds(n, size) == [(i, min(i + size, n)) for i in range(0, n, size)]


@pytest.mark.parametrize(("n", "size"), [(65, 16), (120, 8), (121, 8), (1000, 16), (17, 4)])
def test_a_long_run_ends_on_pieces_a_quarter_of_a_chunk(n, size):
    assert n > TAPER_AFTER_CHUNKS * size
    lengths = [stop - start for start, stop in chunk_bounds(n, size)]
    piece = math.ceil(size / TAIL_DIVISOR)
    full = [k for k in lengths if k == size]
    tail = lengths[len(full) :]
    assert all(k <= piece for k in tail) and len(tail) >= 2
    # While the last full chunk runs, the pieces keep the other workers busy: at least
    # TAIL_CHUNKS chunks' worth of items, and less than one chunk more than that.
    assert TAIL_CHUNKS * size <= sum(tail) < (TAIL_CHUNKS + 1) * size


def test_the_throughput_bench_run_is_13_chunks_of_8_then_8_of_2():
    assert [stop - start for start, stop in chunk_bounds(120, 8)] == [8] * 13 + [2] * 8


@pytest.mark.parametrize(("n", "size"), [(5, 0), (5, -1), (-1, 4)])
def test_a_bad_size_or_count_is_refused(n, size):
    with pytest.raises(ValueError, match="at least"):
        chunk_bounds(n, size)
