"""The README's benchmark figures are quotes of `make bench` output, not numbers typed by hand.

`make bench` writes each script's output to `bench/results/<name>.txt`. In the README's
Benchmarks table, a row names its script (`bench/<name>.py`) and quotes lines of that output
between « and »; each quote must appear verbatim in the results file (so a re-run that changes a
quoted figure fails here until the README follows), and every results file has its row.
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


def _rows() -> dict[str, list[str]]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Benchmarks", 1)[1].split("\n## ", 1)[0]
    # A `|` inside a table cell is written `\|`.
    return {
        m["name"]: [q.replace("\\|", "|") for q in QUOTE.findall(m.group(0))]
        for m in ROW.finditer(section)
    }


def test_every_quoted_figure_is_in_its_results_file() -> None:
    quoted = {name: quotes for name, quotes in _rows().items() if quotes}
    assert quoted, "the README quotes no bench/results file"
    for name, quotes in quoted.items():
        results = RESULTS / f"{name}.txt"
        assert results.is_file(), f"README quotes bench/results/{name}.txt, which is missing"
        output = results.read_text()
        for quote in quotes:
            assert quote in output, f"«{quote}» is not in bench/results/{name}.txt"


def test_every_results_file_has_its_row_in_the_readme() -> None:
    rows = _rows()
    for results in sorted(RESULTS.glob("*.txt")):
        assert results.stem in rows, f"no README row for {results.relative_to(ROOT)}"
