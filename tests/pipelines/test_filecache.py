"""The worker's file cache: verified downloads, atomic placement, LRU by bytes, processes."""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from pathlib import Path
from typing import BinaryIO

import pytest

from pipelines.filecache import OBJECTS, TMP, CorruptObject, FileCache
from pipelines.hashing import sha256_bytes


def writer(data: bytes, calls: list[str] | None = None, key: str = ""):
    def fetch(fh: BinaryIO) -> None:
        if calls is not None:
            calls.append(key)
        fh.write(data)

    return fetch


def test_a_miss_fetches_once_and_a_hit_reuses_the_copy(tmp_path):
    cache = FileCache(tmp_path, 10_000)
    calls: list[str] = []
    data = b"photo bytes"
    first = cache.get("cas/ab/cd/x.jpg", sha256=sha256_bytes(data), fetch=writer(data, calls, "a"))
    again = cache.get("cas/ab/cd/x.jpg", sha256=sha256_bytes(data), fetch=writer(data, calls, "b"))
    assert first == again and first.read_bytes() == data
    assert calls == ["a"]
    assert first.suffix == ".jpg"  # runtimes and image readers go by the suffix
    assert cache.usage() == (len(data), 1)


def test_a_corrupt_download_raises_naming_the_key_and_is_never_kept(tmp_path):
    cache = FileCache(tmp_path, 10_000)
    with pytest.raises(CorruptObject) as caught:
        cache.get("models/m/1/model.onnx", sha256=sha256_bytes(b"good"), fetch=writer(b"bad"))
    message = str(caught.value)
    assert "models/m/1/model.onnx" in message
    assert sha256_bytes(b"good") in message and sha256_bytes(b"bad") in message
    assert cache.usage() == (0, 0)
    assert list((tmp_path / TMP).iterdir()) == []


def test_a_partial_download_is_never_used(tmp_path):
    cache = FileCache(tmp_path, 10_000)

    def broken(fh: BinaryIO) -> None:
        fh.write(b"half of it")
        raise ConnectionError("connection reset mid-download")

    with pytest.raises(ConnectionError):
        cache.get("k.png", sha256=None, fetch=broken)
    assert cache.usage() == (0, 0)
    assert list((tmp_path / TMP).iterdir()) == []
    got = cache.get("k.png", sha256=None, fetch=writer(b"whole file"))
    assert got.read_bytes() == b"whole file"


def test_least_recently_used_files_are_evicted_to_stay_under_the_cap(tmp_path):
    cache = FileCache(tmp_path, 300, protect_seconds=0, low_water=1.0)
    paths = {}
    for i, key in enumerate(["a.png", "b.png", "c.png"]):
        paths[key] = cache.get(key, sha256=None, fetch=writer(bytes([i]) * 100))
        os.utime(paths[key], (1000 + i, 1000 + i))  # a, then b, then c, a second apart
    cache.get("a.png", sha256=None, fetch=writer(b"unused"))  # a hit makes `a` the newest
    cache.get("d.png", sha256=None, fetch=writer(b"d" * 100))
    assert paths["a.png"].exists() and paths["c.png"].exists()
    assert not paths["b.png"].exists()  # the least recently used went
    assert cache.usage() == (300, 3)


def test_a_version_or_sha256_keys_a_separate_copy(tmp_path):
    cache = FileCache(tmp_path, 10_000)
    old = cache.get("runs/1/alpha/x.png", sha256=None, fetch=writer(b"old"), version="etag1")
    new = cache.get("runs/1/alpha/x.png", sha256=None, fetch=writer(b"new"), version="etag2")
    assert old != new and new.read_bytes() == b"new"


def _worker(root: str, key: str, size: int, start, placed, wait_for) -> None:
    """Fetch `key` in another process; its download waits for `wait_for` (forced interleaving)."""
    cache = FileCache(Path(root), 250, protect_seconds=0)

    def fetch(fh: BinaryIO) -> None:
        start.set()
        fh.write(key[0].encode() * size)
        if wait_for is not None:
            assert wait_for.wait(30), "the other process never placed its file"

    path = cache.get(key, sha256=sha256_bytes(key[0].encode() * size), fetch=fetch)
    assert path.read_bytes() == key[0].encode() * size  # what we were given is whole
    placed.set()


def test_processes_downloading_at_once_never_see_partial_files_and_stay_under_the_cap(tmp_path):
    # Given a cache that holds two of three files, and process A whose download is still in
    # progress while process B places its file (and evicts to make room)
    # spawn, not fork: the test process runs threads (test servers, proxies) whose locks a
    # forked child would inherit held, and hang on
    ctx = mp.get_context("spawn")
    a_started, a_placed = ctx.Event(), ctx.Event()
    b_started, b_placed = ctx.Event(), ctx.Event()
    cache = FileCache(tmp_path, 250, protect_seconds=0)
    cache.get("old.bin", sha256=None, fetch=writer(b"o" * 100))
    os.utime(cache.path_for("old.bin"), (1000, 1000))
    a = ctx.Process(target=_worker, args=(str(tmp_path), "a.bin", 100, a_started, a_placed,
                                          b_placed))  # fmt: skip
    b = ctx.Process(target=_worker, args=(str(tmp_path), "b.bin", 100, b_started, b_placed, None))
    # When A starts first and B finishes while A is mid-download
    a.start()
    assert a_started.wait(30)
    assert list((tmp_path / TMP).iterdir())  # A's partial download exists, outside objects/
    b.start()
    b.join(30)
    a.join(30)
    # Then both got whole files, the oldest entry made room, and the cache is under its cap
    assert a.exitcode == 0 and b.exitcode == 0
    held, count = cache.usage()
    assert held <= 250 and count == 2
    assert not cache.path_for("old.bin").exists()
    assert list((tmp_path / TMP).iterdir()) == []
    names = {p.name for d in (tmp_path / OBJECTS).iterdir() for p in d.iterdir()}
    expected = {
        cache.path_for(k, sha256_bytes(k[0].encode() * 100)).name for k in ("a.bin", "b.bin")
    }
    assert names == expected


def _same_key(root: str, barrier) -> None:
    cache = FileCache(Path(root), 10_000)

    def fetch(fh: BinaryIO) -> None:
        barrier.wait(30)  # both processes are downloading the same key now
        for _ in range(50):
            fh.write(b"x" * 1000)
            time.sleep(0.001)

    path = cache.get("same.bin", sha256=sha256_bytes(b"x" * 50_000), fetch=fetch)
    assert path.read_bytes() == b"x" * 50_000


def test_two_processes_fetching_the_same_key_both_get_the_whole_file(tmp_path):
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_same_key, args=(str(tmp_path), barrier)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    assert [p.exitcode for p in procs] == [0, 0]
    assert FileCache(tmp_path, 10_000).usage() == (50_000, 1)


def test_a_full_cache_evicts_to_its_low_water_mark_and_the_ledger_matches_a_listing(tmp_path):
    cache = FileCache(tmp_path, 1000, protect_seconds=0, low_water=0.5)
    for i in range(10):
        cache.get(f"k{i}.png", sha256=None, fetch=writer(b"x" * 100))
        os.utime(cache.path_for(f"k{i}.png"), (1000 + i, 1000 + i))
    assert cache.usage() == (1000, 10)
    cache.get("k10.png", sha256=None, fetch=writer(b"y" * 100))  # does not fit: evict to 500
    assert cache.usage() == (500, 5)
    listed = [p for d in (tmp_path / OBJECTS).iterdir() for p in d.iterdir()]
    assert (sum(p.stat().st_size for p in listed), len(listed)) == cache.usage()
    assert cache.path_for("k10.png").exists() and cache.path_for("k9.png").exists()
    assert not cache.path_for("k5.png").exists()  # the oldest went first
    (tmp_path / ".usage").unlink()  # a lost ledger is rebuilt from a listing
    assert cache.usage() == (500, 5)
