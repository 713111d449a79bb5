"""Figures (plotly), the offline HTML file and tabular exports (pandas) of a release report.

Why the page and the file share one template body: the numbers a person reads on the page, in
the downloaded HTML and in the JSON come from the same payload through the same filters, and the
offline file can be rebuilt from the JSON alone (`render_export`), which a test checks.
The offline file inlines plotly.js from the plotly wheel (`include_plotlyjs=True`) and every
image as a data: URI, so it opens with no network at all.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

from django.template.loader import render_to_string
from django.urls import reverse

from evalsite.core import files
from evalsite.core.errors import NotFound
from evalsite.datasets.models import Item
from evalsite.evals.models import ItemResult
from evalsite.evals.services.artefacts import item_view
from evalsite.releases.models import ReleaseReport

THUMB_PX = 256  # long side of inlined cutouts: 12+ gallery rows stay a few MB in the file
GALLERY_SECTIONS = (
    ("regressed", "Most regressed images (IoU)"),
    ("improved", "Most improved images (IoU)"),
    ("disagreement", "Where humans and IoU disagree most"),
)
GALLERY_KEYS = tuple(key for key, _ in GALLERY_SECTIONS)


def figures(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """Plotly figures (as JSON-ready dicts): metric deltas with CIs, fairness group deltas."""
    import plotly.graph_objects as go

    from pipelines.metrics.registry import label
    from pipelines.release.gates import ATTRIBUTE_LABELS

    figs = []
    metrics = payload.get("metrics") or {}
    names = list(metrics)
    if names:
        fig = go.Figure(go.Scatter(
            x=[metrics[m]["delta"] for m in names],
            y=[label(m) for m in names], mode="markers",
            error_x={"type": "data", "symmetric": False,
                     "array": [metrics[m]["ci"][1] - metrics[m]["delta"] for m in names],
                     "arrayminus": [metrics[m]["delta"] - metrics[m]["ci"][0] for m in names]},
        ))  # fmt: skip
        fig.add_vline(x=0, line_dash="dot")
        fig.update_layout(title="Paired delta (candidate − baseline), 95 % CI", height=340,
                          xaxis_title="candidate − baseline (mean over paired images)",
                          yaxis_title="metric",
                          margin={"l": 150, "r": 10, "t": 40, "b": 45})  # fmt: skip
        figs.append({"id": "fig-deltas", "figure": fig.to_plotly_json()})
    fairness = payload.get("fairness") or {}
    for attribute, groups in (fairness.get("attributes") or {}).items():
        if attribute not in ("skin_tone", "perceived_gender") or not groups:
            continue
        shown = [g for g in groups if g.get("ci")]
        if not shown:
            continue
        fig = go.Figure(go.Bar(
            x=[g["group"] for g in shown], y=[g["delta"] for g in shown],
            marker_color=["#c0392b" if g["flagged"] else "#4a78b5" for g in shown],
            error_y={"type": "data", "symmetric": False,
                     "array": [g["ci"][1] - g["delta"] for g in shown],
                     "arrayminus": [g["delta"] - g["ci"][0] for g in shown]},
        ))  # fmt: skip
        what = label(fairness.get("metric", "iou"))
        who = ATTRIBUTE_LABELS.get(attribute, attribute)
        fig.update_layout(title=f"{what} delta by {who}", height=300,
                          xaxis_title=who, yaxis_title=f"{what}: candidate − baseline",
                          margin={"l": 60, "r": 10, "t": 40, "b": 45})  # fmt: skip
        figs.append({"id": f"fig-{attribute}", "figure": fig.to_plotly_json()})
    return figs


def _data_uri(name: str) -> str:
    try:
        data = files.read_bytes(name)
    except (FileNotFoundError, ValueError):
        return ""
    mime = "image/jpeg" if Path(name).suffix.lower() in (".jpg", ".jpeg") else "image/png"
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _cutout_uri(result: ItemResult, item: Item) -> str:
    """The result's web cutout (rendered from the photo and its alpha PNG), as a thumbnail."""
    from PIL import Image

    try:
        data, _ = item_view(result.artefacts, item.image.name, "web_cutout").render()
    except (NotFound, OSError):
        return ""
    with Image.open(io.BytesIO(data)) as im:
        im.thumbnail((THUMB_PX, THUMB_PX))
        buf = io.BytesIO()
        im.save(buf, format="PNG")
    return f"data:image/png;base64,{base64.b64encode(buf.getvalue()).decode('ascii')}"


def gallery_images(report: ReleaseReport, *, inline: bool) -> dict[str, dict[str, str]]:
    """Per gallery item id: photo, GT overlay and both cutouts, as URLs or inlined data URIs."""
    gallery = (report.payload or {}).get("gallery") or {}
    ids = {row["id"] for key in GALLERY_KEYS for row in gallery.get(key) or []}
    if not ids:
        return {}
    items = {i.pk: i for i in Item.objects.filter(pk__in=ids)}
    runs = {"baseline": report.baseline_run_id, "candidate": report.candidate_run_id}
    results = {
        (r.run_id, r.item_id): r
        for r in ItemResult.objects.filter(run_id__in=runs.values(), item_id__in=ids)
    }
    out: dict[str, dict[str, str]] = {}
    for item_id in ids:
        item = items.get(item_id)
        if item is None:
            continue
        entry: dict[str, str] = {}
        if inline:
            entry["photo"] = _data_uri(str(item.thumb.name))
            entry["gt"] = _data_uri(str(item.thumb_overlay.name))
        else:
            entry["photo"] = reverse("datasets:item_file", args=[item_id, "thumb"])
            entry["gt"] = reverse("datasets:item_file", args=[item_id, "overlay"])
        for side, run_id in runs.items():
            result = results.get((run_id, item_id))
            if result is None or not result.has_alpha:
                entry[side] = ""
            elif inline:
                entry[side] = _cutout_uri(result, item)
            else:
                entry[side] = reverse("evals:file", args=[run_id, item_id, "web_cutout"])
        out[str(item_id)] = entry
    return out


def render_export(
    payload: dict[str, Any],
    images: dict[str, dict[str, str]],
    decisions: list[dict[str, Any]] | None = None,
) -> str:
    """The offline HTML from the JSON (and inlined images) alone."""
    import plotly.io as pio

    figs = figures(payload)
    blocks = []
    for k, fig in enumerate(figs):
        blocks.append(
            pio.to_html(
                fig["figure"],
                full_html=False,
                include_plotlyjs=k == 0,
                div_id=fig["id"],
                config={"displaylogo": False},
            )
        )
    return render_to_string("releases/export.html", {
        "p": payload, "images": images, "figures_html": blocks, "decisions": decisions or [],
        "offline": True, "gallery_sections": GALLERY_SECTIONS,
    })  # fmt: skip


def decision_rows(report: ReleaseReport) -> list[dict[str, Any]]:
    return [
        {"decision": d.get_decision_display(), "reason": d.reason,
         "by": d.decided_by.get_username() if d.decided_by else "operator",
         "at": d.decided_at.isoformat(timespec="seconds"),
         "moved": bool(d.alias_move_id)}
        for d in report.decisions.select_related("decided_by")
    ]  # fmt: skip


def export_html(report: ReleaseReport) -> str:
    return render_export(report.payload, gallery_images(report, inline=True),
                         decision_rows(report))  # fmt: skip


def export_csv(report: ReleaseReport) -> str:
    """Metric deltas, gates and fairness groups as one long CSV table (pandas)."""
    import pandas as pd

    from pipelines.csvsafe import neutralise_rows
    from pipelines.metrics.registry import label

    p = report.payload
    rows: list[dict[str, Any]] = []
    for name, m in (p.get("metrics") or {}).items():
        rows.append({"section": "metric", "name": name, "label": label(name), "group": "",
                     "candidate": m["candidate"],
                     "baseline": m["baseline"], "delta": m["delta"], "ci_low": m["ci"][0],
                     "ci_high": m["ci"][1], "status": "", "text": ""})  # fmt: skip
    for g in p.get("gates") or []:
        ci = g.get("ci") or [None, None]
        rows.append({"section": "gate", "name": g["name"], "label": g["name"],
                     "group": g.get("group") or "", "candidate": None, "baseline": None,
                     "delta": g.get("value"),
                     "ci_low": ci[0], "ci_high": ci[1], "status": g["status"],
                     "text": g["text"]})  # fmt: skip
    for attribute, groups in ((p.get("fairness") or {}).get("attributes") or {}).items():
        for g in groups:
            ci = g.get("ci") or [None, None]
            rows.append({"section": f"fairness:{attribute}", "name": g["group"],
                         "label": g["group"],
                         "group": g["group"], "candidate": g["candidate"],
                         "baseline": g["baseline"], "delta": g["delta"], "ci_low": ci[0],
                         "ci_high": ci[1], "status": "flagged" if g["flagged"] else "",
                         "text": "too small" if g["too_small"] else ""})  # fmt: skip
    # the set version each row read (a report may cover a suite): gates name theirs
    where = {"metric": p.get("dataset"), "fairness": (p.get("fairness") or {}).get("dataset")}
    gates = iter(p.get("gates") or [])
    for row in rows:
        if row["section"] == "gate":
            row["dataset"] = next(gates).get("dataset") or p.get("dataset")
        else:
            row["dataset"] = where["metric" if row["section"] == "metric" else "fairness"]
    # latency is read on the first (quality) set
    rows.extend({**r, "dataset": p.get("dataset")} for r in _latency_rows(p.get("latency") or {}))
    frame = pd.DataFrame(neutralise_rows(rows))
    return str(frame.to_csv(index=False))


def _latency_rows(latency: dict[str, Any]) -> list[dict[str, Any]]:
    """p50 and the tail statistic of each side, n in the text (the tail is named by its rule:
    p99 from 100 images, else max; a report stored before the rule has only p99)."""
    cand, base = latency.get("candidate") or {}, latency.get("baseline") or {}

    def tail(side: dict[str, Any]) -> tuple[str, Any]:
        name = side.get("tail") or ("p99" if side.get("p99") is not None else "")
        return name, side.get(name) if name else None

    (c_name, c_tail), (b_name, b_tail) = tail(cand), tail(base)
    names = c_name if c_name == b_name else f"candidate {c_name or '—'}, baseline {b_name or '—'}"
    text = f"n: candidate {cand.get('n', '—')}, baseline {base.get('n', '—')}"
    common = {"section": "latency", "group": "", "ci_low": None, "ci_high": None, "status": ""}
    return [
        {**common, "name": "p50 ms", "candidate": cand.get("p50"), "baseline": base.get("p50"),
         "delta": None, "text": text},
        {**common, "name": f"tail ms ({names})", "candidate": c_tail, "baseline": b_tail,
         "delta": None, "text": text},
    ]  # fmt: skip
