"""The compare page's stored paired intervals: what the page shows, and the POST that queues them.

The GET page (`browse.compare_view`) only reads the stored comparison; the statistics are computed
by the `evals.compare` job (`evalsite.evals.services.comparisons`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from evalsite.core.roles import researcher_required
from evalsite.evals.latency import total_latency
from evalsite.evals.models import ComparisonStatus, EvalRun
from evalsite.evals.selectors import run_comparison_get, run_pair_get
from evalsite.evals.services.comparisons import ComparisonRefused, run_comparison_request
from pipelines.metrics.registry import label


def intervals_context(a: EvalRun, b: EvalRun) -> dict[str, Any]:
    """The stored comparison of A (baseline) and B (candidate), or None, and both latencies."""
    row = run_comparison_get(baseline=a, candidate=b)
    rows = []
    if row is not None and row.status == ComparisonStatus.DONE:
        for name, m in (row.payload.get("metrics") or {}).items():
            better = (m["delta"] < 0) if m["lower_is_better"] else (m["delta"] > 0)
            rows.append({
                "key": name, "label": label(name), **m,
                "reading": ("B better" if better else "B worse") if m["excludes_zero"]
                else "no: the interval includes 0",
            })  # fmt: skip
    latency = [
        {"side": side, "run": run, **(total_latency(run.summary or {}) or {})}
        for side, run in (("A", a), ("B", b))
        if run.has_latency
    ]
    return {"comparison": row, "interval_rows": rows, "latency": latency}


@researcher_required
@require_POST
def compare_intervals_view(request: HttpRequest) -> HttpResponse:
    a, b = run_pair_get(
        request.POST.get("a", ""),
        request.POST.get("b", ""),
        usage="Give two run ids (a, b) to compute intervals for",
    )
    try:
        row = run_comparison_request(baseline=a, candidate=b, user=request.user)
    except ComparisonRefused as exc:
        messages.error(request, f"Intervals not computed: {exc}.")
    else:
        if row.status == "done":
            messages.info(request, "Intervals for these outputs are already stored.")
        else:
            messages.info(request, "Intervals are being computed by a worker; reload in a moment.")
    # back to the page that asked: the per-image compare page or the per-group (fairness) one
    page = "fairness:compare" if request.POST.get("next") == "fairness" else "evals:compare"
    return redirect(f"{reverse(page)}?{urlencode({'a': a.pk, 'b': b.pk})}")
