"""Campaign reports: computed once into `CampaignSnapshot`, read by every page, export and report.

Life cycle (one path for everything a campaign page shows):

1. `rating_submit` (and the exclusion switch, and campaign creation) calls
   `campaign_snapshot_mark_dirty` after commit. Only the clean → dirty transition (a conditional
   UPDATE) schedules a recompute, `SNAPSHOT_DEBOUNCE_SECONDS` later, so a burst of ratings costs
   one flag write each and one recompute in all. Every call also bumps `generation`.
2. `campaign_snapshot_refresh` (Celery task `ratings.tasks.refresh_campaign_snapshot`, the
   "Recompute now" button, `manage.py refresh_campaign_reports`) reads `generation`, then the
   ratings up to the highest id at that moment, aggregated in SQL (`GROUP BY task, outcome`;
   per-annotator rows only for QC, which needs the order of an annotator's answers), feeds the
   counts to `pipelines.stats.campaign`, and stores the payload. It clears `dirty` only if
   `generation` did not move meanwhile; otherwise it schedules itself again.
3. Pages read `campaign_snapshot_get` (ratings.selectors) and show the payload with its age;
   the beat task `ratings.tasks.refresh_dirty_snapshots` recomputes a snapshot left dirty past
   `SNAPSHOT_STALE_SECONDS` (a recompute message lost with a killed worker).

Payload shape (`PAYLOAD_VERSION` 1; NaN is stored as null; run labels are
"family version [aliases] · run #id", ids are `EvalRun` primary keys):

    version, computed_from: {ratings, last_rating_id}, min_pair_votes: int,
    campaign: {id, name, mode, overlap, set, exclude_flagged},
    runs: [label…], run_ids: [id…], reference: label, reference_id: id,
    progress: {tasks, by_stratum, ratings, late, needed, complete_tasks, live_leases,
               annotators: [{annotator__username, n, late, last, simulated}]},
    simulated: {annotators: [username…], ratings: int} (scripted raters, shown as "simulated"),
    reasons: {tag: count} (most frequent first), top_reasons: [[tag, count]…] (≤ 3),
    qc: {gold_tasks, threshold, min_gold, insufficient_gold, flagged, excluded,
         annotators: [AnnotatorQC fields + dawid_skene + simulated],
         dawid_skene_skipped: str | null},
    excluded_ratings: int, agreement: {alpha, kappa, kappa_items, units, level},
    pairwise and instances modes only —
    scores: {control | disagreement | all: BT | null}, scores_other_setting: BT | null,
      BT = {reference, reference_id, votes, items, connected,
            strengths: [{run, run_id, estimate, low, high, votes, enough, needed,
                         both_bad: {estimate, low, high}}],
            pairs: [{a, a_id, b, b_id, votes, items, enough, needed,
                     win, tie, loss, both_bad: {estimate, low, high}}],
            vs_reference: [{run, run_id, votes, enough, needed,
                            win, tie, loss, both_bad: {estimate, low, high}}]}
      (win = the run beats the reference; an interval whose pair, or run, has fewer than
       `min_pair_votes` votes has estimate/low/high null and enough false)
    pair_votes: [{a, a_id, b, b_id, a_wins, b_wins, tie, both_bad, total}] (kept, non-gold),
    both_bad_rate: {control, disagreement, all: share | null},
    human_disagreement: [{task, item, a, b, votes, counts, disagreement}],
    metric_divergence: [{task, item, a, b, votes, human, iou_delta, divergence}],
    sequential: {alpha, pair_alpha, margin, correction, stratum, stopping, vote_budget,
                 decided, open, votes_used, plan, saved, saved_so_far,
                 pairs: [{a, a_id, b, b_id, candidate, candidate_id, baseline, baseline_id,
                          stopped_at, decision, rate, cs, votes, expected_more, e_value,
                          alpha, margin, current_rate, current_cs, winner, winner_id, text,
                          plan, used, saved, priority}]}
      (anytime-valid decisions from control votes in arrival order: ratings.services.sequential)
    habits: {alpha, side: {crowd: S, raters: [S…], flagged: [username…], text},
             bt_side: {reference, votes, strengths: [{run, run_id, estimate, se}], home,
                       home_se, tie, converged} | null,
             improbable: {raters: [{annotator, votes, p_value, p_adjusted, flagged}],
                          flagged: [username…]}, note: str | null (why nothing was fitted)}
      S = {annotator (null for the crowd), decisive, left, share, ci, p_value, p_adjusted,
           flagged} (ratings.services.habits; flagged raters are for review, never dropped)
    metric_agreement: which metric predicts people (ratings.services.metric_agreement: ranked
      table with bootstrap intervals, per-task codes for pooling, gallery of the best metric's
      strongest disagreements with people)
    absolute mode only —
    absolute: [{run, run_id, n, estimate, low, high}]
"""

from __future__ import annotations

import logging
import math
import time
from datetime import timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Case, Count, F, IntegerField, Max, Q, QuerySet, Value, When
from django.utils import timezone

from evalsite.evals.models import EvalRun
from pipelines.stats import annotator_qc, dawid_skene, flagged_annotators
from pipelines.stats.bootstrap import Interval
from pipelines.stats.bradley_terry import BTReport
from pipelines.stats.campaign import (
    ABSOLUTE_VALUES,
    PAIRWISE_VALUES,
    TaskTable,
    absolute_means,
    agreement,
    both_bad_rate,
    bt,
    human_disagreement,
    metric_divergence,
    pair_outcome_counts,
)
from ratings import selectors
from ratings.models import Campaign, CampaignSnapshot, Mode, Rating, Stratum, Task, is_pairwise
from ratings.services.habits import habits_section
from ratings.services.metric_agreement import metric_agreement_section
from ratings.services.sequential import sequential_section, store_pair_states

log = logging.getLogger(__name__)

PAYLOAD_VERSION = 1
#: Bootstrap rounds of the stored report: 1000 percentile rounds, the stats library's default.
ROUNDS = 1000
#: Dawid–Skene's EM runs over a tasks × annotators label matrix: above this many cells it is
#: skipped (and the report says so). Measured: 1 000 tasks × 300 annotators (300 000 cells) took
#: 11 s on the 2-core machine, so 50 000 cells keep it near 2 s.
DAWID_SKENE_MAX_CELLS = 50_000
OUTCOME_CODE = {"a": 0, "b": 1, "tie": 2, "both_bad": 3}
STRATA = (Stratum.CONTROL, Stratum.DISAGREEMENT, "all")


def _debounce() -> float:
    return float(settings.RATINGS_SNAPSHOT_DEBOUNCE_SECONDS)


def min_pair_votes() -> int:
    return int(settings.RATINGS_MIN_PAIR_VOTES)


# --- dirty flag and scheduling ---------------------------------------------------------------


def _schedule(campaign_id: int, *, countdown: float) -> None:
    def send() -> None:
        from ratings.tasks import refresh_campaign_snapshot

        refresh_campaign_snapshot.apply_async(args=[campaign_id], countdown=countdown)

    transaction.on_commit(send)


def campaign_snapshot_mark_dirty(*, campaign_id: int) -> bool:
    """Record that the campaign's ratings changed; True when this call scheduled the recompute
    (the clean → dirty transition), False when one is already pending."""
    now = timezone.now()
    bump = F("generation") + 1
    if CampaignSnapshot.objects.filter(campaign_id=campaign_id, dirty=False).update(
        dirty=True, dirty_since=now, generation=bump
    ):
        _schedule(campaign_id, countdown=_debounce())
        return True
    if CampaignSnapshot.objects.filter(campaign_id=campaign_id).update(generation=bump):
        return False  # already dirty: the pending recompute reads this change too
    _, created = CampaignSnapshot.objects.get_or_create(
        campaign_id=campaign_id, defaults={"dirty": True, "dirty_since": now, "generation": 1}
    )
    if created:
        _schedule(campaign_id, countdown=_debounce())
        return True
    CampaignSnapshot.objects.filter(campaign_id=campaign_id).update(generation=bump)
    return False


def campaign_snapshot_refresh(*, campaign: Campaign, rounds: int = ROUNDS) -> CampaignSnapshot:
    """Recompute and store the campaign's report; clears `dirty` unless ratings arrived meanwhile
    (then a new recompute is scheduled)."""
    snapshot, _ = CampaignSnapshot.objects.get_or_create(
        campaign=campaign, defaults={"dirty": True, "dirty_since": timezone.now()}
    )
    generation = CampaignSnapshot.objects.values_list("generation", flat=True).get(pk=snapshot.pk)
    started = time.perf_counter()
    last_id = Rating.objects.filter(campaign=campaign).aggregate(m=Max("pk"))["m"] or 0
    payload = campaign_report_compute(campaign=campaign, last_rating_id=last_id, rounds=rounds)
    fields = {
        "payload": payload,
        "computed_at": timezone.now(),
        "ratings_count": payload["computed_from"]["ratings"],
        "last_rating_id": last_id,
        "seconds": time.perf_counter() - started,
    }
    with transaction.atomic():  # the payload and the pair states assignment reads, together
        cleared = CampaignSnapshot.objects.filter(pk=snapshot.pk, generation=generation).update(
            dirty=False, dirty_since=None, **fields
        )
        if not cleared:  # ratings arrived while computing: store this one, compute again soon
            CampaignSnapshot.objects.filter(pk=snapshot.pk).update(**fields)
            _schedule(campaign.pk, countdown=_debounce())
        store_pair_states(campaign=campaign, section=payload.get("sequential"))
    snapshot.refresh_from_db()
    return snapshot


def stale_snapshots() -> QuerySet[CampaignSnapshot]:
    """Snapshots dirty for longer than a recompute should take to arrive (a lost message)."""
    cutoff = timezone.now() - timedelta(seconds=settings.RATINGS_SNAPSHOT_STALE_SECONDS)
    return CampaignSnapshot.objects.filter(dirty=True, dirty_since__lt=cutoff)


# --- the report ------------------------------------------------------------------------------


def _clean(value: Any) -> Any:
    """NaN → None, numpy scalars → Python, so the payload is valid JSON."""
    if isinstance(value, float | np.floating):
        return None if math.isnan(float(value)) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _iv(iv: Interval, enough: bool = True) -> dict[str, float | None]:
    if not enough:
        return {"estimate": None, "low": None, "high": None}
    return {"estimate": iv.estimate, "low": iv.low, "high": iv.high}


def _bt_dict(report: BTReport | None, names: list[str], ids: list[int]) -> dict[str, Any] | None:
    """Bradley–Terry as stored; numbers resting on fewer than `min_pair_votes` votes withheld."""
    if report is None:
        return None
    need = min_pair_votes()
    k = len(names)
    ref = names.index(report.reference)
    votes = np.zeros((k, k), dtype=np.int64)
    for p in report.pairs:
        votes[p.a, p.b] = votes[p.b, p.a] = p.votes
    run_votes = votes.sum(axis=1)
    strengths = []
    for i, name in enumerate(names):
        enough = bool(i == ref or run_votes[i] >= need)
        strengths.append(
            {
                "run": name,
                "run_id": ids[i],
                **_iv(report.strengths[name], enough),
                "votes": int(run_votes[i]),
                "enough": enough,
                "needed": need,
                "both_bad": _iv(report.both_bad[name], bool(run_votes[i] >= need)),
            }
        )
    pairs, vs_ref = [], []
    for p in report.pairs:
        enough = p.votes >= need
        rates = {m: _iv(getattr(p, m), enough) for m in ("win", "tie", "loss", "both_bad")}
        pairs.append(
            {
                "a": names[p.a],
                "a_id": ids[p.a],
                "b": names[p.b],
                "b_id": ids[p.b],
                "votes": p.votes,
                "items": p.items,
                "enough": enough,
                "needed": need,
                **rates,
            }
        )
        if ref in (p.a, p.b):
            other = p.b if p.a == ref else p.a
            win, loss = ("loss", "win") if p.a == ref else ("win", "loss")
            vs_ref.append(
                {
                    "run": names[other],
                    "run_id": ids[other],
                    "votes": p.votes,
                    "enough": enough,
                    "needed": need,
                    "win": rates[win],
                    "tie": rates["tie"],
                    "loss": rates[loss],
                    "both_bad": rates["both_bad"],
                }
            )
    return {
        "reference": report.reference,
        "reference_id": ids[ref],
        "votes": report.votes,
        "items": report.items,
        "connected": report.fit.connected,
        "strengths": strengths,
        "pairs": pairs,
        "vs_reference": vs_ref,
    }


def _vote_rows(ratings: QuerySet[Rating], mode: str) -> tuple[list[int], list[int], list[int]]:
    """(task, value, count) from one GROUP BY over the non-gold ratings."""
    field = "outcome" if is_pairwise(mode) else "score"
    rows = (
        ratings.exclude(task__stratum=Stratum.GOLD)
        .values_list("task_id", field)
        .annotate(n=Count("pk"))
        .order_by()
    )
    tasks, values, counts = [], [], []
    for task, value, n in rows:
        code = OUTCOME_CODE.get(value) if is_pairwise(mode) else value
        if code is None:
            continue
        tasks.append(task)
        values.append(code)
        counts.append(n)
    return tasks, values, counts


def _table(meta: dict[str, np.ndarray], ratings: QuerySet[Rating], mode: str) -> TaskTable:
    vt, vv, vc = _vote_rows(ratings, mode)
    return TaskTable.from_counts(
        task=meta["task"],
        item=meta["item"],
        run_a=meta["run_a"],
        run_b=meta["run_b"],
        stratum=meta["stratum"],
        vote_task=vt,
        vote_value=vv,
        vote_count=vc,
        values=PAIRWISE_VALUES if is_pairwise(mode) else ABSOLUTE_VALUES,
    )


def _task_meta(campaign: Campaign, index: dict[int, int]) -> dict[str, np.ndarray]:
    rows = list(
        Task.objects.filter(campaign=campaign)
        .exclude(stratum=Stratum.GOLD)
        .order_by("pk")
        .values_list("pk", "item_id", "run_a_id", "run_b_id", "stratum", "iou_a", "iou_b")
    )
    cols = list(zip(*rows, strict=True)) if rows else [()] * 7
    return {
        "task": np.asarray(cols[0], dtype=np.int64),
        "item": np.asarray(cols[1], dtype=np.int64),
        "run_a": np.asarray([index[r] for r in cols[2]], dtype=np.int64),
        "run_b": np.asarray([index.get(r, -1) if r else -1 for r in cols[3]], dtype=np.int64),
        "stratum": np.asarray(cols[4], dtype=str),
        "iou_a": np.asarray([np.nan if v is None else v for v in cols[5]], dtype=np.float64),
        "iou_b": np.asarray([np.nan if v is None else v for v in cols[6]], dtype=np.float64),
    }


def _qc(campaign: Campaign, ratings: QuerySet[Rating]) -> tuple[list[dict[str, Any]], set[str]]:
    """Per-annotator QC. The one per-rating read of the report: straight-lining needs the order
    of each annotator's answers; three small columns, coded in SQL."""
    shown = Case(
        When(shown_choice="left", then=Value(0)),
        When(shown_choice="right", then=Value(1)),
        When(shown_choice="both_bad", then=Value(3)),
        default=Value(2),
        output_field=IntegerField(),
    )
    gold = Case(
        When(task__gold_winner="", then=Value(-1)),
        When(
            Q(task__gold_winner="a", assignment__left_is_a=True)
            | Q(task__gold_winner="b", assignment__left_is_a=False),
            then=Value(0),
        ),
        default=Value(1),
        output_field=IntegerField(),
    )
    rows = list(
        ratings.annotate(code=shown, gold_code=gold)
        .order_by("annotator_id", "created_at", "pk")
        .values_list("annotator_id", "code", "seconds", "gold_code")
    )
    if not rows:
        return [], set()
    who, code, secs, gold_codes = zip(*rows, strict=True)
    usernames = dict(User.objects.filter(pk__in=set(who)).values_list("pk", "username"))
    label = np.asarray([usernames[w] for w in who], dtype=str)
    qc_rows = annotator_qc(
        label,
        np.asarray(code, dtype=np.int64),
        np.asarray(secs, dtype=np.float64),
        np.asarray(gold_codes, dtype=np.int64),
        threshold=campaign.gold_threshold,
        min_gold=campaign.min_gold,
    )
    ordered = sorted(qc_rows, key=lambda r: (not r.flagged, not r.warnings, r.annotator))
    return [r.as_dict() for r in ordered], flagged_annotators(qc_rows)


def _dawid_skene(ratings: QuerySet[Rating], n_tasks: int, n_annotators: int) -> dict[str, Any]:
    """Per-annotator accuracy from Dawid–Skene EM over non-gold tasks (needs no gold)."""
    if n_tasks * n_annotators > DAWID_SKENE_MAX_CELLS:
        return {
            "accuracy": {},
            "skipped": f"{n_tasks} tasks × {n_annotators} annotators is "
            f"above {DAWID_SKENE_MAX_CELLS} cells",
        }
    rows = list(
        ratings.exclude(task__stratum=Stratum.GOLD).values_list(
            "task_id", "annotator__username", "outcome"
        )
    )
    rows = [r for r in rows if r[2] in OUTCOME_CODE]
    if len(rows) < 2:
        return {"accuracy": {}, "skipped": None}
    task, who, out = zip(*rows, strict=True)
    _, unit = np.unique(np.asarray(task), return_inverse=True)
    names, rater = np.unique(np.asarray(who, dtype=str), return_inverse=True)
    labels = np.full((int(unit.max()) + 1, len(names)), -1, dtype=np.int64)
    labels[unit, rater] = [OUTCOME_CODE[o] for o in out]
    result = dawid_skene(labels, 4)
    acc = {str(n): float(a) for n, a in zip(names, result.accuracy, strict=True)}
    return {"accuracy": acc, "skipped": None}


def _reasons(ratings: QuerySet[Rating]) -> dict[str, int]:
    """Tag counts from one GROUP BY over the (few) distinct tag sets."""
    out: dict[str, int] = {}
    for tags, n in ratings.values_list("reasons").annotate(n=Count("pk")).order_by():
        for tag in tags or []:
            out[tag] = out.get(tag, 0) + n
    return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))


def _labelled(
    rows: list[dict[str, Any]], meta: dict[str, np.ndarray], names: list[str]
) -> list[dict[str, Any]]:
    if not rows:
        return []
    pos = {int(t): i for i, t in enumerate(meta["task"])}
    stems = dict(
        Task.objects.filter(pk__in=[r["task"] for r in rows]).values_list("pk", "item__stem")
    )
    return [
        {
            **r,
            "item": stems.get(r["task"], ""),
            "a": names[meta["run_a"][pos[r["task"]]]],
            "b": names[meta["run_b"][pos[r["task"]]]],
        }
        for r in rows
    ]


def _pair_votes(table: TaskTable, names: list[str], ids: list[int]) -> list[dict[str, Any]]:
    per = pair_outcome_counts(table, len(names))
    out = []
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            c = per[a, b]
            if c.sum():
                out.append(
                    {
                        "a": names[a],
                        "a_id": ids[a],
                        "b": names[b],
                        "b_id": ids[b],
                        "a_wins": int(c[0]),
                        "b_wins": int(c[1]),
                        "tie": int(c[2]),
                        "both_bad": int(c[3]),
                        "total": int(c.sum()),
                    }
                )
    return out


def campaign_report_compute(
    *, campaign: Campaign, last_rating_id: int, rounds: int = ROUNDS
) -> dict[str, Any]:
    """The report payload (shape in the module docstring) over ratings with id ≤ last_rating_id."""
    runs: list[EvalRun] = selectors.campaign_runs(campaign)
    names = [selectors.run_label(r) for r in runs]
    ids = [r.pk for r in runs]
    index = {r.pk: i for i, r in enumerate(runs)}
    ref = index.get(campaign.reference_run_id or -1, 0)
    ratings = Rating.objects.filter(campaign=campaign, pk__lte=last_rating_id)
    exclude = campaign.exclude_flagged
    reasons = _reasons(ratings)
    report: dict[str, Any] = {
        "version": PAYLOAD_VERSION,
        "computed_from": {"ratings": ratings.count(), "last_rating_id": last_rating_id},
        "min_pair_votes": min_pair_votes(),
        "campaign": {
            "id": campaign.pk,
            "name": campaign.name,
            "mode": campaign.mode,
            "overlap": campaign.overlap,
            "set": campaign.dataset_version.spec,
            "exclude_flagged": exclude,
        },
        "runs": names,
        "run_ids": ids,
        "reference": names[ref],
        "reference_id": ids[ref],
        "progress": selectors.campaign_progress(campaign=campaign, last_rating_id=last_rating_id),
        "reasons": reasons,
        "top_reasons": [[t, n] for t, n in list(reasons.items())[:3]],
    }
    gold_tasks = Task.objects.filter(campaign=campaign, stratum=Stratum.GOLD).count()
    qc_rows, flagged = _qc(campaign, ratings)
    excluded = flagged if exclude else set()
    simulated = selectors.simulated_usernames(
        usernames=[a["annotator__username"] for a in report["progress"]["annotators"]]
    )
    for row in qc_rows:
        row["simulated"] = row["annotator"] in simulated
    progress_rows = report["progress"]["annotators"]
    report["simulated"] = {
        "annotators": sorted(simulated),
        "ratings": sum(a["n"] for a in progress_rows if a["annotator__username"] in simulated),
    }
    report["qc"] = {
        "gold_tasks": gold_tasks,
        "threshold": campaign.gold_threshold,
        "min_gold": campaign.min_gold,
        "insufficient_gold": gold_tasks < campaign.min_gold,
        "flagged": sorted(flagged),
        "excluded": sorted(excluded),
        "annotators": qc_rows,
        "dawid_skene_skipped": None,
    }
    meta = _task_meta(campaign, index)
    everyone = _table(meta, ratings, campaign.mode)
    flagged_only = (
        _table(meta, ratings.filter(annotator__username__in=flagged), campaign.mode)
        if flagged
        else None
    )
    without = everyone.minus(flagged_only) if flagged_only is not None else everyone
    kept, other = (without, everyone) if exclude else (everyone, without)
    report["excluded_ratings"] = int(everyone.counts.sum() - kept.counts.sum())
    if campaign.mode == Mode.ABSOLUTE:
        report["agreement"] = agreement(kept, level="ordinal").as_dict()
        report["absolute"] = [
            {
                "run": names[i],
                "run_id": ids[i],
                "n": n,
                **(_iv(iv) if iv else {"estimate": None, "low": None, "high": None}),
            }
            for i, (n, iv) in enumerate(
                absolute_means(kept, len(names), rounds=rounds, seed=campaign.seed)
            )
        ]
        return _clean(report)  # type: ignore[no-any-return]
    ds = _dawid_skene(ratings, int((everyone.votes > 0).sum()), len(qc_rows))
    report["qc"]["dawid_skene_skipped"] = ds["skipped"]
    for row in report["qc"]["annotators"]:
        row["dawid_skene"] = ds["accuracy"].get(row["annotator"])
    report["agreement"] = agreement(kept).as_dict()
    report["scores"] = {
        str(s): _bt_dict(
            bt(
                kept.in_stratum(None if s == "all" else s),
                names,
                reference=ref,
                rounds=rounds,
                seed=campaign.seed,
            ),
            names,
            ids,
        )
        for s in STRATA
    }
    report["scores_other_setting"] = _bt_dict(
        bt(other, names, reference=ref, rounds=rounds, seed=campaign.seed), names, ids
    )
    kept_ratings = ratings.exclude(annotator__username__in=excluded) if excluded else ratings
    report["sequential"] = sequential_section(
        campaign=campaign,
        ratings=ratings,
        kept=kept_ratings,
        names=names,
        ids=ids,
        reference_id=ids[ref],
    )
    report["habits"] = habits_section(
        campaign=campaign, ratings=ratings, kept=kept_ratings, names=names, ids=ids, reference=ref
    )
    report["pair_votes"] = _pair_votes(kept, names, ids)
    report["both_bad_rate"] = {
        str(s): both_bad_rate(kept.in_stratum(None if s == "all" else s)) for s in STRATA
    }
    iou_pos = np.searchsorted(meta["task"], kept.task)
    report["human_disagreement"] = _labelled(human_disagreement(kept), meta, names)
    report["metric_divergence"] = _labelled(
        metric_divergence(kept, meta["iou_a"][iou_pos], meta["iou_b"][iou_pos]), meta, names
    )
    report["metric_agreement"] = metric_agreement_section(
        campaign=campaign, table=kept, names=names, ids=ids, rounds=rounds
    )
    return _clean(report)  # type: ignore[no-any-return]


def campaign_snapshot_payload(*, snapshot: CampaignSnapshot) -> dict[str, Any]:
    """The stored payload plus when and from what it was computed (for exports)."""
    return {
        **snapshot.payload,
        "snapshot": {
            "computed_at": snapshot.computed_at.isoformat() if snapshot.computed_at else None,
            "ratings": snapshot.ratings_count,
            "last_rating_id": snapshot.last_rating_id,
            "dirty": snapshot.dirty,
            "seconds": round(snapshot.seconds, 3),
        },
    }
