"""Reading what people read, for the metric-consistency acceptance test: visible page text, the
`<tr data-metric>` rows of a table, leaderboard cells and headers, and the registry's digits."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import numpy as np
from django.test import Client

from pipelines.metrics.registry import BY_NAME


class _Text(HTMLParser):
    """Visible text of a page: no tags, attributes, scripts, styles or JSON blobs."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in ("script", "style"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def visible_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return " ".join(parser.parts)


def strip(fragment: str) -> str:
    return re.sub(r"\s+", " ", visible_text(fragment)).strip()


def unmarked(label: str) -> str:
    """A label cell without its "(lower is better)" note."""
    return re.sub(r" \(lower is better\)$", "", label)


def metric_rows(html: str, table_id: str | None = None) -> dict[str, list[str]]:
    """`<tr data-metric="name">` rows (inside the table `table_id` when given) -> cell texts."""
    if table_id is not None:
        match = re.search(rf'<table[^>]*id="{table_id}".*?</table>', html, re.S)
        assert match, f"no table #{table_id}"
        html = match.group(0)
    rows = {}
    for name, body in re.findall(r'<tr data-metric="([a-z_]+)"[^>]*>(.*?)</tr>', html, re.S):
        rows[name] = [strip(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", body, re.S)]
    return rows


def leaderboard_cells(html: str, version: str) -> dict[str, str]:
    row = re.search(rf'<tr data-family="subject-lift" data-version="{version}">(.*?)</tr>', html,
                    re.S)  # fmt: skip
    assert row, f"no leaderboard row for {version}"
    return dict(re.findall(r'data-metric="([a-z_]+)"><span class="value">([^<]*)</span>',
                           row.group(1)))  # fmt: skip


def leaderboard_headers(html: str) -> list[str]:
    head = re.search(r'<table[^>]*id="leaderboard".*?</thead>', html, re.S)
    assert head
    return [strip(h) for h in re.findall(r"<th[^>]*>(.*?)</th>", head.group(0), re.S)]


def shown(name: str, value: float | None) -> str:
    return BY_NAME[name].format(value)


def per_image_mean(rows: list[dict[str, Any]], column: str) -> float:
    return float(np.mean([float(r[column]) for r in rows if r["status"] == "ok"]))


def get(client: Client, url: str, **params: Any) -> str:
    resp = client.get(url, params)
    assert resp.status_code == 200, (url, resp.status_code)
    return resp.content.decode()
