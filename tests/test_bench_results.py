"""Benchmark figures in the docs are quotes of `make bench` output, not numbers typed by hand.

`make bench` (bench/support/run_all.py) writes each script's output to
`bench/results/<name>.txt` under a stamp line (commit, date, load, cores, command). In the
markdown docs (README.md, docs/*.md, bench/results/HISTORY.md, whichever exist) text between «
and » is a quote: the line holding it names its results file (`bench/<name>.py` or
`bench/results/<name>.txt`), and each quote must appear verbatim in that file, so a re-run that
changes a quoted figure fails here until the docs follow. Every results file starts with a stamp
and is named somewhere in the docs.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from bench.support import judge, run_all
from bench.support.stamp import STAMP

pytestmark = pytest.mark.no_services

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
NAMED = re.compile(r"`bench/(?:results/)?(?P<name>\w+)\.(?:py|txt)`")
#: A quote starts and ends with a non-space, so prose can say "between « and »".
QUOTE = re.compile(r"«(\S(?:.*?\S)?)»")


def _docs() -> list[Path]:
    found = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), RESULTS / "HISTORY.md"]
    return [p for p in found if p.is_file()]


def _quotes() -> list[tuple[str, set[str], str]]:
    """(where, results files the line names, quote) for every « » quote in the docs."""
    out = []
    for doc in _docs():
        for number, line in enumerate(doc.read_text().splitlines(), 1):
            quotes = QUOTE.findall(line)
            names = {m["name"] for m in NAMED.finditer(line)}
            # A `|` inside a markdown table cell is written `\|`.
            where = f"{doc.relative_to(ROOT)}:{number}"
            out += [(where, names, q.replace("\\|", "|")) for q in quotes]
    return out


def test_every_quoted_figure_is_in_its_results_file() -> None:
    quotes = _quotes()
    assert quotes, "the docs quote no bench/results file"
    for where, names, quote in quotes:
        assert names, f"{where}: «{quote}» names no bench/<name>.py or bench/results/<name>.txt"
        files = {name: RESULTS / f"{name}.txt" for name in names}
        missing = [str(p.relative_to(ROOT)) for p in files.values() if not p.is_file()]
        assert not missing, f"{where} quotes {missing}, which do not exist"
        shown = sorted(str(p.relative_to(ROOT)) for p in files.values())
        assert any(quote in p.read_text() for p in files.values()), (
            f"{where}: «{quote}» is not in {shown}"
        )


def test_every_results_file_is_stamped_and_named_in_the_docs() -> None:
    text = "\n".join(doc.read_text() for doc in _docs())
    named = {m["name"] for m in NAMED.finditer(text)}
    files = sorted(RESULTS.glob("*.txt"))
    assert files
    for results in files:
        first = results.read_text().split("\n", 1)[0]
        assert STAMP.match(first), f"{results.relative_to(ROOT)} starts without a stamp: {first!r}"
        assert results.stem in named, f"no doc names {results.relative_to(ROOT)}"


def test_a_goal_is_judged_on_its_value_and_direction(capsys: pytest.CaptureFixture[str]) -> None:
    j = judge.Judge()
    assert j.goal("time", 0.5, 1.0, unit="s")
    assert not j.goal("speed-up", 9.9, 10, "higher", "×")
    assert j.check("agrees", True)
    assert not j.check("nothing lost", False, "3 lost")
    assert j.finish() == 1
    lines = capsys.readouterr().out.splitlines()
    assert [run_all.is_miss(line) for line in lines[:4]] == [False, True, False, True]
    assert lines[0] == "OK   goal time: 0.5 s (goal <= 1 s)"
    assert lines[1] == "MISS goal speed-up: 9.9× (goal >= 10×)"
    assert judge.Judge().finish() == 0
    assert judge.pct([5.0, 1.0, 3.0, 2.0, 4.0], 95) == 5.0
    assert judge.pct([5.0, 1.0, 3.0, 2.0, 4.0], 50) == 3.0


def test_run_all_runs_every_bench_past_a_miss_and_lists_the_misses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "a_miss.py").write_text("print('MISS goal speed: 2 s (goal <= 1 s)')\nexit(1)\n")
    (bench / "b_crash.py").write_text("raise SystemExit(3)\n")
    (bench / "c_fine.py").write_text("print('OK   goal speed: 0.5 s (goal <= 1 s)')\n")
    monkeypatch.setattr(run_all, "BENCH", bench)
    monkeypatch.setattr(run_all, "RESULTS", bench / "results")
    assert run_all.main([]) == 1
    summary = capsys.readouterr().out.split("=== 3 bench(es), 2 with a miss\n", 1)[1]
    assert summary.splitlines() == [
        "a_miss: MISS goal speed: 2 s (goal <= 1 s)",
        "b_crash: exit status 3 with no verdict line (crashed?)",
    ]
    for name in ("a_miss", "b_crash", "c_fine"):
        lines = (bench / "results" / f"{name}.txt").read_text().splitlines()
        assert STAMP.match(lines[0]), lines[0]
        python = run_all._shown(Path(sys.executable))
        assert lines[0].endswith(f"command: {python} {bench / name}.py"), lines[0]
    assert "OK   goal speed" in (bench / "results" / "c_fine.txt").read_text()
    assert run_all.main(["c_fine"]) == 0
