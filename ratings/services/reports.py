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

Payload shape (`pipelines.payloads.campaign.CampaignPayload`, version 1, typed there: the header,
`qc`, `simulated` and the scores; NaN is stored as null; run labels are
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
      table with bootstrap intervals, gallery of the best metric's strongest disagreements with
      people; its per-task codes for pooling are stored apart, in the snapshot's
      `agreement_codes`)
    absolute mode only —
    absolute: [{run, run_id, n, estimate, low, high}]
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Case, Count, F, IntegerField, Max, Q, QuerySet, Value, When
from django.utils import timezone

from evalsite.evals.models import EvalRun
from pipelines.payloads import PayloadError
from pipelines.payloads.campaign import (
    CAMPAIGN_PAYLOAD_VERSION,
    CampaignInfo,
    CampaignPayload,
    PeopleMetrics,
    QualityControl,
    RunCrowd,
    Simulated,
)
from pipelines.stats import annotator_qc, dawid_skene, flagged_annotators
from pipelines.stats.campaign import ABSOLUTE_VALUES, PAIRWISE_VALUES, TaskTable
from pipelines.stats.campaign_report import CampaignStatistics, campaign_statistics
from pipelines.stats.metric_agreement import codes_pack
from ratings import selectors
from ratings.models import Campaign, CampaignSnapshot, Mode, Rating, Stratum, Task, is_pairwise
from ratings.services.habits import habits_section
from ratings.services.metric_agreement import metric_agreement_section
from ratings.services.sequential import sequential_section, store_pair_states

log = logging.getLogger(__name__)

#: Bootstrap rounds of the stored report: 1000 percentile rounds, the stats library's default.
ROUNDS = 1000
#: Dawid–Skene's EM runs over a tasks × annotators label matrix: above this many cells it is
#: skipped (and the report says so). Measured: 1 000 tasks × 300 annotators (300 000 cells) took
#: 11 s on the 2-core machine, so 50 000 cells keep it near 2 s.
DAWID_SKENE_MAX_CELLS = 50_000
OUTCOME_CODE = {"a": 0, "b": 1, "tie": 2, "both_bad": 3}


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
    doc = payload.to_dict()
    # The per-item metric-agreement codes (one per decided task and metric: megabytes at a
    # million ratings) go to their own column, so the page that reads the report parses none.
    section = doc.get("metric_agreement")
    codes = section.pop("codes", {}) if isinstance(section, dict) else {}
    fields = {
        "payload": doc,
        "agreement_codes": codes_pack(codes),
        "computed_at": timezone.now(),
        "ratings_count": payload.computed_from["ratings"],
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
        store_pair_states(campaign=campaign, section=payload.sections.get("sequential"))
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


@dataclass(frozen=True)
class _CampaignRows:
    """What the report reads from the database, before any statistics."""

    runs: list[EvalRun]
    names: list[str]
    ids: list[int]
    reference: int
    ratings: QuerySet[Rating]
    last_rating_id: int
    rating_count: int
    progress: dict[str, Any]
    reasons: dict[str, int]
    gold_tasks: int
    qc_rows: list[dict[str, Any]]
    flagged: set[str]
    simulated: set[str]
    meta: dict[str, np.ndarray]
    everyone: TaskTable
    flagged_only: TaskTable | None


def _read(campaign: Campaign, last_rating_id: int) -> _CampaignRows:
    runs: list[EvalRun] = selectors.campaign_runs(campaign)
    index = {r.pk: i for i, r in enumerate(runs)}
    ratings = Rating.objects.filter(campaign=campaign, pk__lte=last_rating_id)
    progress = selectors.campaign_progress(campaign=campaign, last_rating_id=last_rating_id)
    qc_rows, flagged = _qc(campaign, ratings)
    meta = _task_meta(campaign, index)
    return _CampaignRows(
        runs=runs,
        names=[selectors.run_label(r) for r in runs],
        ids=[r.pk for r in runs],
        reference=index.get(campaign.reference_run_id or -1, 0),
        ratings=ratings,
        last_rating_id=last_rating_id,
        rating_count=ratings.count(),
        progress=progress,
        reasons=_reasons(ratings),
        gold_tasks=Task.objects.filter(campaign=campaign, stratum=Stratum.GOLD).count(),
        qc_rows=qc_rows,
        flagged=flagged,
        simulated=selectors.simulated_usernames(
            usernames=[a["annotator__username"] for a in progress["annotators"]]
        ),
        meta=meta,
        everyone=_table(meta, ratings, campaign.mode),
        flagged_only=(
            _table(meta, ratings.filter(annotator__username__in=flagged), campaign.mode)
            if flagged
            else None
        ),
    )


def campaign_report_compute(
    *, campaign: Campaign, last_rating_id: int, rounds: int = ROUNDS
) -> CampaignPayload:
    """The report over ratings with id ≤ last_rating_id: read the rows, compute the statistics
    (`pipelines.stats.campaign_report`), add the sections the ratings services compute from the
    same ratings, and build the typed payload."""
    rows = _read(campaign, last_rating_id)
    stats = campaign_statistics(
        everyone=rows.everyone, flagged_only=rows.flagged_only,
        exclude_flagged=campaign.exclude_flagged, absolute=campaign.mode == Mode.ABSOLUTE,
        names=rows.names, ids=rows.ids, reference=rows.reference, task_ids=rows.meta["task"],
        iou_a=rows.meta["iou_a"], iou_b=rows.meta["iou_b"], min_votes=min_pair_votes(),
        rounds=rounds, seed=campaign.seed,
    )  # fmt: skip
    return _payload(campaign, rows, stats, _sections(campaign, rows, stats, rounds))


def _excluded(campaign: Campaign, rows: _CampaignRows) -> set[str]:
    return rows.flagged if campaign.exclude_flagged else set()


def _sections(
    campaign: Campaign, rows: _CampaignRows, stats: CampaignStatistics, rounds: int
) -> dict[str, Any]:
    """The page-only sections: counts and statistics as computed, plus (pairwise) the sequential
    decisions, raters' habits and metric agreement from their services."""
    sections: dict[str, Any] = {
        "progress": rows.progress,
        "reasons": rows.reasons,
        "top_reasons": [[t, n] for t, n in list(rows.reasons.items())[:3]],
        "excluded_ratings": stats.excluded_ratings,
        "agreement": stats.agreement,
    }
    if stats.absolute is not None:
        return {**sections, "absolute": stats.absolute}
    names, ids, ref, excluded = rows.names, rows.ids, rows.reference, _excluded(campaign, rows)
    kept = rows.ratings.exclude(annotator__username__in=excluded) if excluded else rows.ratings
    return {
        **sections,
        "sequential": sequential_section(campaign=campaign, ratings=rows.ratings, kept=kept,
                                         names=names, ids=ids, reference_id=ids[ref]),
        "habits": habits_section(campaign=campaign, ratings=rows.ratings, kept=kept,
                                 names=names, ids=ids, reference=ref),
        "pair_votes": stats.pair_votes,
        "both_bad_rate": stats.both_bad_rate,
        "human_disagreement": _labelled(stats.human_disagreement, rows.meta, names),
        "metric_divergence": _labelled(stats.metric_divergence, rows.meta, names),
        "metric_agreement": metric_agreement_section(campaign=campaign, table=stats.kept,
                                                     names=names, ids=ids, rounds=rounds),
    }  # fmt: skip


def _payload(
    campaign: Campaign, rows: _CampaignRows, stats: CampaignStatistics, sections: dict[str, Any]
) -> CampaignPayload:
    names, ids, ref = rows.names, rows.ids, rows.reference
    annotators = [{**r, "simulated": r["annotator"] in rows.simulated} for r in rows.qc_rows]
    ds_skipped = None
    if stats.absolute is None:  # Dawid–Skene reads pairwise outcomes only
        ds = _dawid_skene(rows.ratings, int((rows.everyone.votes > 0).sum()), len(annotators))
        ds_skipped = ds["skipped"]
        for row in annotators:
            row["dawid_skene"] = ds["accuracy"].get(row["annotator"])
    progress = rows.progress["annotators"]
    return CampaignPayload(
        version=CAMPAIGN_PAYLOAD_VERSION,
        computed_from={"ratings": rows.rating_count, "last_rating_id": rows.last_rating_id},
        min_pair_votes=min_pair_votes(),
        campaign=CampaignInfo(
            id=campaign.pk, name=campaign.name, mode=campaign.mode, overlap=campaign.overlap,
            set=campaign.dataset_version.spec, exclude_flagged=campaign.exclude_flagged,
        ),
        runs=tuple(names),
        run_ids=tuple(ids),
        reference=names[ref],
        reference_id=ids[ref],
        qc=QualityControl(
            gold_tasks=rows.gold_tasks, threshold=campaign.gold_threshold,
            min_gold=campaign.min_gold, insufficient_gold=rows.gold_tasks < campaign.min_gold,
            flagged=tuple(sorted(rows.flagged)),
            excluded=tuple(sorted(_excluded(campaign, rows))),
            annotators=tuple(_clean(annotators)), dawid_skene_skipped=ds_skipped,
        ),
        simulated=Simulated(
            annotators=tuple(sorted(rows.simulated)),
            ratings=sum(a["n"] for a in progress if a["annotator__username"] in rows.simulated),
        ),
        scores=stats.scores,
        scores_other_setting=stats.scores_other_setting,
        sections=_clean(sections),
    )  # fmt: skip


def campaign_payload(*, snapshot: CampaignSnapshot) -> CampaignPayload | None:
    """The snapshot's stored report, read through its contract; None before the first
    computation. Raises `PayloadError` for a row this code cannot read."""
    if snapshot.computed_at is None or not snapshot.payload:
        return None
    return CampaignPayload.from_dict(snapshot.payload)


def crowd_numbers(*, run_ids: set[int], production_run: dict[int, int]) -> dict[int, RunCrowd]:
    """Per run, its crowd numbers from the newest computed snapshot of a campaign that rated it
    (`CampaignPayload.crowd_of`: strength anchored at the campaign's reference, win rate vs
    `production_run[run]` when the campaign compared them). A snapshot this code cannot read
    is logged and skipped, so one bad row does not blank every crowd column."""
    members = set(
        Campaign.runs.through.objects.filter(evalrun_id__in=run_ids).values_list(
            "campaign_id", flat=True
        )
    )
    snaps = (
        CampaignSnapshot.objects.filter(campaign_id__in=members, computed_at__isnull=False)
        .order_by("-computed_at", "-pk")
        .only("campaign_id", "payload", "computed_at")
    )
    out: dict[int, RunCrowd] = {}
    for snap in snaps:
        try:
            payload = campaign_payload(snapshot=snap)
        except PayloadError as exc:
            log.error("campaign %s: snapshot not read: %s", snap.campaign_id, exc)
            continue
        if payload is None:
            continue
        for run_id in set(payload.run_ids) & run_ids - set(out):
            crowd = payload.crowd_of(run_id, production_run.get(run_id))
            if crowd is not None:
                out[run_id] = crowd
    return out


def excluded_annotators(*, campaign: Campaign) -> set[str]:
    """Annotators the campaign's stored report leaves out (gold QC), when the campaign says so."""
    if not campaign.exclude_flagged:
        return set()
    snapshot = CampaignSnapshot.objects.filter(campaign=campaign).first()
    payload = campaign_payload(snapshot=snapshot) if snapshot is not None else None
    return set(payload.qc.excluded) if payload is not None else set()


def campaign_metric_agreement(*, campaign_id: int) -> PeopleMetrics | None:
    """Which metric predicts people, as the campaign's stored report ranks them
    (`ratings.services.metric_agreement`); None before a snapshot computed it."""
    snapshot = CampaignSnapshot.objects.filter(campaign_id=campaign_id).first()
    payload = campaign_payload(snapshot=snapshot) if snapshot is not None else None
    section = payload.sections.get("metric_agreement") if payload is not None else None
    return PeopleMetrics.from_dict(section) if section else None


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
