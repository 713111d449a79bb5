"""`CampaignSnapshot.payload`: a campaign's stored report, and the crowd numbers read from it.

The ratings app builds `CampaignPayload` (`ratings.services.reports`) and stores `to_dict()`;
other apps never read the stored mapping: they ask `ratings.services.reports.crowd_numbers`
(leaderboard) or `excluded_annotators` (release report), which read it through `from_dict`.

Typed here: the header, quality control, simulated raters and the Bradley–Terry scores, which
other apps read. The remaining sections (progress, reasons, agreement, sequential decisions,
habits, metric agreement, absolute means, …) only the campaign page and its export render; they
travel as `sections`, documented in the `ratings.services.reports` docstring.

Legacy rows: a payload without `version` reads as version 1; one without `run_ids` takes each
run's id from the "· run #id" suffix of its label.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pipelines.payloads import PayloadError, need, optional_float, version_of
from pipelines.release.crowd import not_enough

CAMPAIGN_PAYLOAD_VERSION = 1
SUPPORTED = (1,)
WHAT = "campaign snapshot payload"
RUN_LABEL = re.compile(r"run #(\d+)$")
#: Keys `CampaignPayload` types; every other key of the stored mapping is a page section.
TYPED_KEYS = frozenset(
    {"version", "computed_from", "min_pair_votes", "campaign", "runs", "run_ids", "reference",
     "reference_id", "simulated", "qc", "scores", "scores_other_setting"}
)  # fmt: skip


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise PayloadError(f"{WHAT}: {what} must be an integer, got {value!r}")
    return value


@dataclass(frozen=True)
class Estimate:
    """An estimate with its interval; all three None when withheld (too few votes)."""

    estimate: float | None
    low: float | None
    high: float | None

    @classmethod
    def withheld(cls) -> Estimate:
        return cls(None, None, None)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], where: str) -> Estimate:
        what = f"{WHAT} {where}"
        return cls(*(optional_float(need(doc, k, what=what), what=f"{what}.{k}")
                     for k in ("estimate", "low", "high")))  # fmt: skip

    def to_dict(self) -> dict[str, float | None]:
        return {"estimate": self.estimate, "low": self.low, "high": self.high}

    def known(self) -> Estimate | None:
        """Self, or None when withheld."""
        return None if self.estimate is None else self


@dataclass(frozen=True)
class Strength:
    """One run's Bradley–Terry strength (the reference run = 0)."""

    run: str
    run_id: int
    value: Estimate
    votes: int
    enough: bool
    needed: int
    both_bad: Estimate

    def to_dict(self) -> dict[str, Any]:
        return {"run": self.run, "run_id": self.run_id, **self.value.to_dict(),
                "votes": self.votes, "enough": self.enough, "needed": self.needed,
                "both_bad": self.both_bad.to_dict()}  # fmt: skip

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], ids: Mapping[str, int]) -> Strength:
        run = str(need(doc, "run", what=f"{WHAT} strength"))
        what = f"{WHAT} strength of {run!r}"
        return cls(
            run=run,
            run_id=_run_id(doc, "run_id", run, ids),
            value=Estimate.from_dict(doc, f"strength of {run!r}"),
            votes=_int(need(doc, "votes", what=what), "votes"),
            enough=bool(need(doc, "enough", what=what)),
            needed=_int(need(doc, "needed", what=what), "needed"),
            both_bad=Estimate.from_dict(need(doc, "both_bad", what=what), f"{run!r} both_bad"),
        )


#: The four outcome rates of one side against another, each an `Estimate`.
OUTCOMES = ("win", "tie", "loss", "both_bad")


@dataclass(frozen=True)
class _Tally:
    """What a pair and a run-vs-reference both hold: their votes, whether those are `enough`
    (of `needed`) to show numbers, and the four outcome rates."""

    votes: int
    enough: bool
    needed: int
    win: Estimate
    tie: Estimate
    loss: Estimate
    both_bad: Estimate

    def _tally_dict(self) -> dict[str, Any]:
        return {"votes": self.votes, "enough": self.enough, "needed": self.needed,
                **{k: getattr(self, k).to_dict() for k in OUTCOMES}}  # fmt: skip


def _tally_from(doc: Mapping[str, Any], what: str, where: str) -> dict[str, Any]:
    """`_Tally`'s fields, read from a stored pair or run-vs-reference."""
    return {
        "votes": _int(need(doc, "votes", what=what), "votes"),
        "enough": bool(need(doc, "enough", what=what)),
        "needed": _int(need(doc, "needed", what=what), "needed"),
        **{k: Estimate.from_dict(need(doc, k, what=what), f"{where} {k}") for k in OUTCOMES},
    }


@dataclass(frozen=True)
class PairRates(_Tally):
    """Rates of run a against run b (win = a better)."""

    a: str
    a_id: int
    b: str
    b_id: int
    items: int

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a, "a_id": self.a_id, "b": self.b, "b_id": self.b_id,
                "items": self.items, **self._tally_dict()}  # fmt: skip

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], ids: Mapping[str, int]) -> PairRates:
        a, b = str(need(doc, "a", what=f"{WHAT} pair")), str(need(doc, "b", what=f"{WHAT} pair"))
        what = f"{WHAT} pair {a!r} vs {b!r}"
        return cls(
            a=a, a_id=_run_id(doc, "a_id", a, ids), b=b, b_id=_run_id(doc, "b_id", b, ids),
            items=_int(need(doc, "items", what=what), "items"),
            **_tally_from(doc, what, f"pair {a!r} vs {b!r}"),
        )  # fmt: skip


@dataclass(frozen=True)
class VsReference(_Tally):
    """One run against the campaign's reference run (win = the run better)."""

    run: str
    run_id: int

    def to_dict(self) -> dict[str, Any]:
        return {"run": self.run, "run_id": self.run_id, **self._tally_dict()}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], ids: Mapping[str, int]) -> VsReference:
        run = str(need(doc, "run", what=f"{WHAT} vs_reference"))
        what = f"{WHAT} vs_reference {run!r}"
        return cls(
            run=run, run_id=_run_id(doc, "run_id", run, ids),
            **_tally_from(doc, what, f"{run!r} vs reference"),
        )  # fmt: skip


@dataclass(frozen=True)
class BTScores:
    """Bradley–Terry over one stratum: strengths anchored at the reference, pair rates.
    Numbers resting on fewer than `needed` votes are withheld (`enough` false)."""

    reference: str
    reference_id: int
    votes: int
    items: int
    connected: bool
    strengths: tuple[Strength, ...]
    pairs: tuple[PairRates, ...]
    vs_reference: tuple[VsReference, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"reference": self.reference, "reference_id": self.reference_id,
                "votes": self.votes, "items": self.items, "connected": self.connected,
                "strengths": [s.to_dict() for s in self.strengths],
                "pairs": [p.to_dict() for p in self.pairs],
                "vs_reference": [v.to_dict() for v in self.vs_reference]}  # fmt: skip

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any] | None, ids: Mapping[str, int]) -> BTScores | None:
        if doc is None:
            return None
        what = f"{WHAT} scores"
        reference = str(need(doc, "reference", what=what))
        return cls(
            reference=reference,
            reference_id=_run_id(doc, "reference_id", reference, ids),
            votes=_int(need(doc, "votes", what=what), "scores.votes"),
            items=_int(need(doc, "items", what=what), "scores.items"),
            connected=bool(need(doc, "connected", what=what)),
            strengths=tuple(Strength.from_dict(s, ids) for s in need(doc, "strengths", what=what)),
            pairs=tuple(PairRates.from_dict(p, ids) for p in need(doc, "pairs", what=what)),
            vs_reference=tuple(
                VsReference.from_dict(v, ids) for v in need(doc, "vs_reference", what=what)
            ),
        )


@dataclass(frozen=True)
class CampaignInfo:
    id: int
    name: str
    mode: str
    overlap: int
    set: str
    exclude_flagged: bool

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "mode": self.mode, "overlap": self.overlap,
                "set": self.set, "exclude_flagged": self.exclude_flagged}  # fmt: skip

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> CampaignInfo:
        what = f"{WHAT} campaign"
        return cls(
            id=_int(need(doc, "id", what=what), "campaign.id"),
            name=str(need(doc, "name", what=what)),
            mode=str(need(doc, "mode", what=what)),
            overlap=_int(need(doc, "overlap", what=what), "campaign.overlap"),
            set=str(need(doc, "set", what=what)),
            exclude_flagged=bool(need(doc, "exclude_flagged", what=what)),
        )


@dataclass(frozen=True)
class QualityControl:
    """Gold-task quality control: who is flagged, who the report leaves out (`excluded`, when
    the campaign excludes flagged raters), and one row per annotator for the campaign page."""

    gold_tasks: int
    threshold: float
    min_gold: int
    insufficient_gold: bool
    flagged: tuple[str, ...]
    excluded: tuple[str, ...]
    annotators: tuple[Mapping[str, Any], ...]
    dawid_skene_skipped: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"gold_tasks": self.gold_tasks, "threshold": self.threshold,
                "min_gold": self.min_gold, "insufficient_gold": self.insufficient_gold,
                "flagged": list(self.flagged), "excluded": list(self.excluded),
                "annotators": [dict(a) for a in self.annotators],
                "dawid_skene_skipped": self.dawid_skene_skipped}  # fmt: skip

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> QualityControl:
        what = f"{WHAT} qc"
        skipped = doc.get("dawid_skene_skipped")
        return cls(
            gold_tasks=_int(need(doc, "gold_tasks", what=what), "qc.gold_tasks"),
            threshold=float(need(doc, "threshold", what=what)),
            min_gold=_int(need(doc, "min_gold", what=what), "qc.min_gold"),
            insufficient_gold=bool(need(doc, "insufficient_gold", what=what)),
            flagged=tuple(str(n) for n in need(doc, "flagged", what=what)),
            excluded=tuple(str(n) for n in need(doc, "excluded", what=what)),
            annotators=tuple(dict(a) for a in need(doc, "annotators", what=what)),
            dawid_skene_skipped=None if skipped is None else str(skipped),
        )


@dataclass(frozen=True)
class Simulated:
    """Scripted raters: their names and how many of the ratings they gave."""

    annotators: tuple[str, ...] = ()
    ratings: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"annotators": list(self.annotators), "ratings": self.ratings}


@dataclass(frozen=True)
class RunCrowd:
    """A run's crowd numbers as the leaderboard shows them: strength ± CI from the newest
    campaign snapshot holding the run, win rate vs the production run of the same set, and why
    a number is missing (`note`: "not enough votes (12 of 30)")."""

    campaign: int
    votes: int
    strength: Estimate | None
    win_rate: Estimate | None
    note: str
    simulated: int

    def to_dict(self) -> dict[str, Any]:
        return {"campaign": self.campaign, "votes": self.votes,
                "strength": self.strength.to_dict() if self.strength else None,
                "win_rate": self.win_rate.to_dict() if self.win_rate else None,
                "note": self.note, "simulated": self.simulated}  # fmt: skip


@dataclass(frozen=True)
class CampaignPayload:
    version: int
    computed_from: Mapping[str, int]
    min_pair_votes: int
    campaign: CampaignInfo
    runs: tuple[str, ...]
    run_ids: tuple[int, ...]
    reference: str
    reference_id: int
    qc: QualityControl
    simulated: Simulated = Simulated()
    #: Per stratum (`control`, `disagreement`, `all`); empty in absolute mode.
    scores: Mapping[str, BTScores | None] = field(default_factory=dict)
    scores_other_setting: BTScores | None = None
    #: The page-only sections, JSON-ready (see the module docstring).
    sections: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            **self.sections,
            "version": self.version,
            "computed_from": dict(self.computed_from),
            "min_pair_votes": self.min_pair_votes,
            "campaign": self.campaign.to_dict(),
            "runs": list(self.runs),
            "run_ids": list(self.run_ids),
            "reference": self.reference,
            "reference_id": self.reference_id,
            "simulated": self.simulated.to_dict(),
            "qc": self.qc.to_dict(),
        }
        if self.campaign.mode != "absolute":
            doc["scores"] = {k: v.to_dict() if v else None for k, v in self.scores.items()}
            doc["scores_other_setting"] = (
                self.scores_other_setting.to_dict() if self.scores_other_setting else None
            )
        return doc

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> CampaignPayload:
        version = version_of(doc, what=WHAT, supported=SUPPORTED)
        runs = tuple(str(n) for n in need(doc, "runs", what=WHAT))
        run_ids = _run_ids(runs, doc.get("run_ids"))
        ids = dict(zip(runs, run_ids, strict=True))
        campaign = CampaignInfo.from_dict(need(doc, "campaign", what=WHAT))
        reference = str(need(doc, "reference", what=WHAT))
        sim = doc.get("simulated") or {}  # rows from before simulated raters existed
        scores: dict[str, BTScores | None] = {}
        if campaign.mode != "absolute":
            scores = {
                str(k): BTScores.from_dict(v, ids)
                for k, v in need(doc, "scores", what=WHAT).items()
            }
        return cls(
            version=version,
            computed_from={k: _int(v, f"computed_from.{k}")
                           for k, v in need(doc, "computed_from", what=WHAT).items()},
            min_pair_votes=_int(need(doc, "min_pair_votes", what=WHAT), "min_pair_votes"),
            campaign=campaign,
            runs=runs,
            run_ids=run_ids,
            reference=reference,
            reference_id=_run_id(doc, "reference_id", reference, ids),
            qc=QualityControl.from_dict(need(doc, "qc", what=WHAT)),
            simulated=Simulated(tuple(str(n) for n in sim.get("annotators") or []),
                                int(sim.get("ratings") or 0)),
            scores=scores,
            scores_other_setting=BTScores.from_dict(doc.get("scores_other_setting"), ids),
            sections={k: v for k, v in doc.items() if k not in TYPED_KEYS},
        )  # fmt: skip

    def crowd_of(self, run_id: int, production_run_id: int | None) -> RunCrowd | None:
        """The run's crowd numbers over all strata, None when this campaign did not rate it."""
        scores = self.scores.get("all")
        if scores is None:
            return None
        entry = next((s for s in scores.strengths if s.run_id == run_id), None)
        if entry is None:
            return None
        note = "" if entry.enough else not_enough(entry.votes, entry.needed)
        win_rate = None
        for p in scores.pairs:
            if production_run_id is None or {p.a_id, p.b_id} != {run_id, production_run_id}:
                continue
            win_rate = (p.win if p.a_id == run_id else p.loss).known()
            if not p.enough:
                note = not_enough(p.votes, p.needed)
        return RunCrowd(
            campaign=self.campaign.id, votes=entry.votes, strength=entry.value.known(),
            win_rate=win_rate, note=note, simulated=self.simulated.ratings,
        )  # fmt: skip


def _run_ids(runs: tuple[str, ...], stored: Iterable[Any] | None) -> tuple[int, ...]:
    if stored is not None:
        ids = tuple(_int(i, "run_ids[]") for i in stored)
        if len(ids) != len(runs):
            raise PayloadError(f"{WHAT}: {len(runs)} runs but {len(ids)} run_ids")
        return ids
    out = []
    for name in runs:  # legacy rows: the id is the label's "· run #id" suffix
        match = RUN_LABEL.search(name)
        if match is None:
            raise PayloadError(f"{WHAT}: no run_ids and the label {name!r} names no run id")
        out.append(int(match.group(1)))
    return tuple(out)


def _run_id(doc: Mapping[str, Any], key: str, label: str, ids: Mapping[str, int]) -> int:
    if key in doc:
        return _int(doc[key], key)
    if label in ids:  # legacy rows name runs by label only
        return ids[label]
    raise PayloadError(f"{WHAT}: missing key {key!r} and the run {label!r} is not in `runs`")


@dataclass(frozen=True)
class AgreementRow:
    """One metric's agreement with people's decided pairwise choices (share ± CI)."""

    metric: str
    label: str
    direction: str
    share: float | None
    low: float | None
    high: float | None
    n: int
    agree: int
    disagree: int
    abstain: int
    rank: int
    vs_best: tuple[float, ...] | None

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "share": self.share, "low": self.low, "high": self.high,
                "n": self.n, "agree": self.agree, "disagree": self.disagree,
                "abstain": self.abstain, "rank": self.rank,
                "vs_best": None if self.vs_best is None else list(self.vs_best),
                "label": self.label, "direction": self.direction}  # fmt: skip

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> AgreementRow:
        metric = str(need(doc, "metric", what=f"{WHAT} metric agreement row"))
        what = f"{WHAT} metric agreement of {metric!r}"
        vs_best = need(doc, "vs_best", what=what)

        def count(key: str) -> int:
            return _int(need(doc, key, what=what), key)

        return cls(
            metric=metric,
            label=str(need(doc, "label", what=what)),
            direction=str(need(doc, "direction", what=what)),
            share=optional_float(need(doc, "share", what=what), what=what),
            low=optional_float(need(doc, "low", what=what), what=what),
            high=optional_float(need(doc, "high", what=what), what=what),
            n=count("n"), agree=count("agree"), disagree=count("disagree"),
            abstain=count("abstain"), rank=count("rank"),
            vs_best=None if vs_best is None else tuple(float(v) for v in vs_best),
        )  # fmt: skip


@dataclass(frozen=True)
class PeopleMetrics:
    """Which metric predicts people: metrics ranked by how often they pick the cutout people
    preferred, for one campaign (`unit` item or instance) or pooled over a family's campaigns
    (`family`, `campaigns`)."""

    rule: str
    decided: int
    best: str | None
    sentence: str
    table: tuple[AgreementRow, ...]
    unit: str | None = None
    family: str | None = None
    campaigns: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "decided": self.decided,
            "best": self.best,
            "sentence": self.sentence,
            "table": [r.to_dict() for r in self.table],
            "rule": self.rule,
        }
        if self.unit is not None:
            doc["unit"] = self.unit
        if self.family is not None:
            doc.update(family=self.family, campaigns=list(self.campaigns))
        return doc

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> PeopleMetrics:
        what = f"{WHAT} metric_agreement"
        best = need(doc, "best", what=what)
        family = doc.get("family")
        return cls(
            rule=str(need(doc, "rule", what=what)),
            decided=_int(need(doc, "decided", what=what), "metric_agreement.decided"),
            best=None if best is None else str(best),
            sentence=str(need(doc, "sentence", what=what)),
            table=tuple(AgreementRow.from_dict(r) for r in need(doc, "table", what=what)),
            unit=None if doc.get("unit") is None else str(doc["unit"]),
            family=None if family is None else str(family),
            campaigns=tuple(int(c) for c in doc.get("campaigns") or ()),
        )
