"""Fairness services: compute and store a run's report; enqueue it when a run finishes and when
a set's attributes get a new revision.

Reports are computed by the `fairness.report` job (one chunk per run, on the crash-safe job
primitive, so a lost message is found again by the reaper) and stored; pages, the CLI and the
REST endpoint read them. `fairness_report_compute` is idempotent: the same run, revision and
settings overwrite one row.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.db import transaction

from evalsite.core.jobs import job_create
from evalsite.datasets.models import DatasetVersion
from evalsite.datasets.selectors import revision_pick
from evalsite.evals.models import EvalRun, RunStatus
from evalsite.fairness.crowd import crowd_fairness
from evalsite.fairness.inputs import Inputs, NoPersonAttributes, load_inputs, person_attributes
from evalsite.fairness.models import FairnessReport
from pipelines.fairness import FairnessSettings, contrast_stratified_gaps, fairness_report
from pipelines.fairness.grouping import SKIN_TONE, attribute_labels, parse_tone_groups

log = logging.getLogger(__name__)

FAIRNESS_JOB = "fairness.report"
#: Contrast strata need a few images each to say anything; below this many images with a recorded
#: contrast the stratified view is left out (the synthetic demo set has 30 drawn people).
MIN_CONTRAST_ITEMS = 12


def default_settings(*, run: EvalRun) -> FairnessSettings:
    """The contract's defaults with the set's own skin-tone grouping."""
    return FairnessSettings(skin_tone_groups=run.dataset_version.dataset.skin_tone_groups)


def settings_for(
    *,
    run: EvalRun,
    min_group_size: int | None = None,
    margin: float | None = None,
    skin_tone_groups: str | None = None,
    alpha: float | None = None,
    rounds: int | None = None,
) -> FairnessSettings:
    """Defaults for the run's set with the given overrides; ValueError names a bad value."""
    base = default_settings(run=run)
    return FairnessSettings(
        min_group_size=base.min_group_size if min_group_size is None else min_group_size,
        margin=base.margin if margin is None else margin,
        alpha=base.alpha if alpha is None else alpha,
        rounds=base.rounds if rounds is None else rounds,
        skin_tone_groups=base.skin_tone_groups if skin_tone_groups is None else skin_tone_groups,
    )


def settings_key(settings: FairnessSettings) -> str:
    return json.dumps(settings.as_dict(), sort_keys=True)


def _document(run: EvalRun, inputs: Inputs, settings: FairnessSettings) -> dict[str, Any]:
    body = fairness_report(inputs.metrics, inputs.skin_tone, inputs.perceived_gender, settings)
    for flag in body["flags"]:
        flag["worst"] = [
            {"item": inputs.item_ids[i], "stem": inputs.stems[i]} for i in flag["worst"]
        ]
    doc: dict[str, Any] = {
        "run": run.pk,
        "dataset": run.dataset_version.spec,
        "synthetic_labels": inputs.synthetic_labels,
        "synthetic_count": inputs.synthetic,
        "attribute_revision": {"number": inputs.revision.number, "source": inputs.revision.source},
        **body,
        "skipped": inputs.skipped,
    }
    doc["contrast"] = _contrast_section(inputs, settings)
    doc["crowd"] = crowd_fairness(
        run=run,
        revision=inputs.revision,
        tone_groups=settings.skin_tone_groups,
        rounds=settings.rounds,
        seed=settings.seed,
    )
    return doc


def _contrast_section(inputs: Inputs, settings: FairnessSettings) -> dict[str, Any] | None:
    """Skin-tone gaps within subject/background contrast strata (the generator's people)."""
    if inputs.contrast is None:
        return None
    tones = attribute_labels(
        inputs.skin_tone, inputs.perceived_gender, parse_tone_groups(settings.skin_tone_groups)
    )[SKIN_TONE]
    if (
        sum(t is not None for t, c in zip(tones, inputs.contrast, strict=True) if c == c)
        < MIN_CONTRAST_ITEMS
    ):
        return None
    return contrast_stratified_gaps(
        inputs.metrics, tones, inputs.contrast, rounds=settings.rounds, seed=settings.seed
    )


def fairness_report_compute(
    *, run: EvalRun, settings: FairnessSettings | None = None, revision_number: int | None = None
) -> FairnessReport:
    """Compute and store the fairness report of a finished run (idempotent).

    Uses the latest attribute revision unless ``revision_number`` is given. Raises
    NoPersonAttributes ("no person attributes — annotate or import a manifest") when the set has
    no person labels, and ValueError when the run is not finished or scored none of them.
    """
    if run.status != RunStatus.DONE:
        raise ValueError(f"run #{run.pk} is {run.status}; fairness needs a finished run")
    chosen = settings or default_settings(run=run)
    inputs = load_inputs(run=run, revision_number=revision_number)
    if not inputs.item_ids:
        raise ValueError(
            f"run #{run.pk} scored none of the {inputs.labelled_persons} items labelled as a "
            f"person (skipped: {inputs.skipped})"
        )
    doc = _document(run, inputs, chosen)
    with transaction.atomic():
        report, _ = FairnessReport.objects.update_or_create(
            run=run,
            attribute_revision=inputs.revision,
            settings_key=settings_key(chosen),
            defaults={
                "settings": chosen.as_dict(),
                "is_default": chosen == default_settings(run=run),
                "data": doc,
                "summary": doc["summary"],
                "flag_count": len(doc["flags"]),
                "synthetic_labels": inputs.synthetic_labels,
            },
        )
    return report


def _has_persons(version: DatasetVersion) -> bool:
    revision = revision_pick(version=version)
    return revision is not None and bool(person_attributes(revision))


def fairness_reports_request(*, runs: list[EvalRun]) -> int:
    """Enqueue one job computing the default report of each finished run; returns the count.

    Runs on sets without person labels are left out (nothing to compute, nothing to show but the
    "no person attributes" message).
    """
    wanted = [r.pk for r in runs if r.status == RunStatus.DONE and _has_persons(r.dataset_version)]
    if wanted:
        job_create(
            kind=FAIRNESS_JOB, chunks=[{"run_id": pk} for pk in wanted], payload={"runs": wanted}
        )
    return len(wanted)


def fairness_after_run_done(*, run: EvalRun, **_: object) -> None:
    """Receiver of the evals app's `run_finished` (the signal's own arguments are ignored):
    enqueue the run's fairness report. Never raises (a fairness problem must not undo a finished
    run); a failure is logged and the page offers the CLI."""
    try:
        fairness_reports_request(runs=[run])
    except Exception:
        log.exception("could not enqueue the fairness report of run %s", run.pk)


def fairness_revision_changed(*, version: DatasetVersion, **_: object) -> int:
    """Receiver of the datasets app's `attributes_revised` (the signal's own arguments are
    ignored): recompute the reports of every finished run on the version."""
    runs = list(
        EvalRun.objects.filter(dataset_version=version, status=RunStatus.DONE).select_related(
            "dataset_version__dataset"
        )
    )
    return fairness_reports_request(runs=runs)


def fairness_chunk_run(run_id: int) -> dict[str, Any]:
    """Job handler body: compute the default report of one run (skips a run that has none)."""
    run = EvalRun.objects.select_related("dataset_version__dataset").get(pk=run_id)
    try:
        report = fairness_report_compute(run=run)
    except NoPersonAttributes as exc:
        return {"run": run_id, "skipped": str(exc)}
    return {"run": run_id, "report": report.pk, "flags": report.flag_count}
