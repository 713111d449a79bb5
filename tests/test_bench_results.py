"""Benchmark figures are quotes of `make bench` output, not numbers typed by hand.

`make bench` writes each script's output to `bench/results/<name>.txt`. In the README's short
Benchmarks table and in the full table of `bench/results/HISTORY.md`, a row names its script
(`bench/<name>.py`) and quotes lines of that output between « and »; each quote must appear
verbatim in the results file (so a re-run that changes a quoted figure fails here until the docs
follow), and every results file has its row, with a quote, in the README.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.no_services

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
ROW = re.compile(r"^\|\s*`bench/(?P<name>[\w-]+)\.py`\s*\|.*$", re.MULTILINE)
QUOTE = re.compile(r"«(.+?)»")


README = ROOT / "README.md"
HISTORY = RESULTS / "HISTORY.md"


def _rows(doc: Path) -> dict[str, list[str]]:
    text = doc.read_text()
    if doc == README:
        text = text.split("## Benchmarks", 1)[1].split("\n## ", 1)[0]
    # A `|` inside a table cell is written `\|`.
    return {
        m["name"]: [q.replace("\\|", "|") for q in QUOTE.findall(m.group(0))]
        for m in ROW.finditer(text)
    }


@pytest.mark.parametrize("doc", [README, HISTORY], ids=["README", "HISTORY"])
def test_every_quoted_figure_is_in_its_results_file(doc: Path) -> None:
    quoted = {name: quotes for name, quotes in _rows(doc).items() if quotes}
    assert quoted, f"{doc.name} quotes no bench/results file"
    for name, quotes in quoted.items():
        results = RESULTS / f"{name}.txt"
        assert results.is_file(), f"{doc.name} quotes bench/results/{name}.txt, which is missing"
        output = results.read_text()
        for quote in quotes:
            assert quote in output, f"«{quote}» ({doc.name}) is not in bench/results/{name}.txt"


def test_every_results_file_has_a_quoting_row_in_the_readme() -> None:
    rows = _rows(README)
    for results in sorted(RESULTS.glob("*.txt")):
        assert rows.get(results.stem), f"no README row quoting {results.relative_to(ROOT)}"
