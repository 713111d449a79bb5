"""Campaign creation form (researchers and managers)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from django import forms

from evalsite.core.formfields import DecimalNumberField, WholeNumberField
from evalsite.datasets.models import DatasetVersion
from evalsite.evals.models import EvalRun, RunStatus
from pipelines.parse import InvalidInput
from ratings.models import (
    DEFAULT_ALPHA,
    DEFAULT_GOLD_SHARE,
    DEFAULT_OVERLAP,
    MAX_ITEMS_PER_PAIR,
    REASON_KEYS,
    SHOWN_CHOICES,
    Mode,
    Stopping,
)
from ratings.services.assign import MAX_QUEUE_DEPTH, QUEUE_DEPTH


class RunChoiceField(forms.ModelMultipleChoiceField):
    """Finished runs, each labelled with its model version and set version."""

    def label_from_instance(self, obj: Any) -> str:
        return (
            f"run #{obj.pk}: {obj.model_version.family.name} {obj.model_version.version} on "
            f"{obj.dataset_version.spec}"
        )


class CampaignForm(forms.Form):
    name = forms.CharField(max_length=200)
    dataset_version = forms.ModelChoiceField(
        queryset=DatasetVersion.objects.select_related("dataset"), label="Set version"
    )
    runs = RunChoiceField(
        queryset=EvalRun.objects.filter(status=RunStatus.DONE).select_related(
            "model_version__family", "dataset_version__dataset"
        ),
        help_text="two or more finished runs on the chosen set version",
    )
    # Attribute campaigns (skin tone / gender labels) have their own form: ratings.views.attributes
    mode = forms.ChoiceField(
        choices=[(m.value, m.label) for m in (Mode.PAIRWISE, Mode.INSTANCES, Mode.ABSOLUTE)],
        initial=Mode.PAIRWISE,
    )
    overlap = WholeNumberField(min_value=1, max_value=20, initial=DEFAULT_OVERLAP, label="k")
    items_per_pair = WholeNumberField(min_value=1, max_value=MAX_ITEMS_PER_PAIR, initial=100)
    disagreement_share = DecimalNumberField(min_value=0, max_value=1, initial=0.5)
    # Ranges are checked by the service (ratings.services.campaigns._validate), the one place
    # every door uses; the form only parses.
    gold_ratio = DecimalNumberField(
        initial=DEFAULT_GOLD_SHARE,
        required=False,
        label="Gold share",
        help_text="0, or 0.05-0.15 of the tasks",
    )
    stopping = forms.ChoiceField(
        choices=[(Stopping.FIXED, "fixed plan: k votes per task"),
                 (Stopping.UNTIL_DECIDED, "until decided (pairwise)")],
        initial=Stopping.FIXED, required=False,
    )  # fmt: skip
    vote_budget = WholeNumberField(
        required=False, min_value=1, help_text="until decided: the most non-gold votes to spend"
    )
    alpha = DecimalNumberField(
        initial=DEFAULT_ALPHA, required=False, label="α", help_text="error level of decisions"
    )
    margin = DecimalNumberField(
        required=False, help_text="optional: |win rate - 0.5| below this counts as no difference"
    )
    instructions = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    open_now = forms.BooleanField(required=False, initial=True, label="Open for annotators now")


# --- The annotator's submit body -----------------------------------------------------------------
# Every field a client sends is parsed here into a finite, bounded value, or refused with a 400
# that names the field (`seconds: NaN` once reached the database and answered 500).

SUBMIT_MAX_BYTES = 4096  # a real submit is ~150 bytes: token, choice/score, ≤ 6 tags, seconds
SUBMIT_FIELDS = frozenset({"token", "choice", "score", "reasons", "seconds"})
TOKEN_MAX_LENGTH = 64
MAX_CLIENT_SECONDS = 7 * 24 * 3600.0  # larger is a broken clock; the service clamps to 1 h
#: Votes in one outbox flush: a page holds at most MAX_QUEUE_DEPTH tasks, and keeps rating while
#: a flush is in flight, so a backlog after an outage is a few dozen at most.
VOTES_MAX = 64
VOTES_MAX_BYTES = VOTES_MAX * SUBMIT_MAX_BYTES // 8


class SubmitInvalid(InvalidInput):
    """A submit body that cannot be parsed; str(exc) names the field and what is expected."""


@dataclass(frozen=True)
class SubmitInput:
    token: str
    choice: str | None
    score: int | None
    reasons: list[str]
    seconds: float


def _json_object(body: bytes, content_type: str, max_bytes: int) -> dict[str, Any]:
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise SubmitInvalid("send the rating as application/json")
    if len(body) > max_bytes:
        raise SubmitInvalid(f"the body is {len(body)} bytes; a submit is at most {max_bytes}")
    try:
        # NaN/Infinity (not JSON, but Python reads them) become floats that the field checks
        # below refuse by name.
        data = json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError):  # bad UTF-8 or JSON, an int of > 4300 digits
        raise SubmitInvalid("the body is not valid UTF-8 JSON; send a JSON object") from None
    if not isinstance(data, dict):
        raise SubmitInvalid("send a JSON object")
    return data


def parse_submit(body: bytes, content_type: str) -> SubmitInput:
    """The annotator page's submit body → SubmitInput, or SubmitInvalid saying what is wrong."""
    return parse_vote(_json_object(body, content_type, SUBMIT_MAX_BYTES))


def parse_votes(body: bytes, content_type: str) -> tuple[list[SubmitInput], int]:
    """A batch of votes from the page's outbox → (votes in order, queue depth asked for).

    The whole batch is refused when one vote is malformed: the page builds every vote the same
    way, so a malformed one means a broken or hostile client, not a vote worth keeping.
    """
    data = _json_object(body, content_type, VOTES_MAX_BYTES)
    unknown = sorted(set(data) - {"votes", "depth"})
    if unknown:
        raise SubmitInvalid(f"unknown field(s) {unknown}; known: ['depth', 'votes']")
    votes = data.get("votes")
    if not isinstance(votes, list) or not 0 < len(votes) <= VOTES_MAX:
        raise SubmitInvalid(f"votes: expected a list of 1 to {VOTES_MAX} votes")
    parsed = []
    for n, vote in enumerate(votes, 1):
        if not isinstance(vote, dict):
            raise SubmitInvalid(f"votes[{n}]: expected a JSON object")
        try:
            parsed.append(parse_vote(vote))
        except SubmitInvalid as exc:
            raise SubmitInvalid(f"votes[{n}]: {exc}") from None
    return parsed, parse_depth(data.get("depth"))


def parse_depth(depth: Any) -> int:
    """How many tasks the page wants held (current + preloaded), bounded; None → the default."""
    if depth is None:
        return QUEUE_DEPTH
    if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= MAX_QUEUE_DEPTH:
        raise SubmitInvalid(f"depth: expected a whole number from 1 to {MAX_QUEUE_DEPTH}")
    return depth


def parse_vote(data: dict[str, Any]) -> SubmitInput:
    unknown = sorted(set(data) - SUBMIT_FIELDS)
    if unknown:
        raise SubmitInvalid(f"unknown field(s) {unknown}; known: {sorted(SUBMIT_FIELDS)}")
    token = data.get("token")
    if not isinstance(token, str) or not 0 < len(token) <= TOKEN_MAX_LENGTH:
        raise SubmitInvalid(f"token: expected the task's token (1-{TOKEN_MAX_LENGTH} characters)")
    choice = data.get("choice")
    if choice is not None and choice not in SHOWN_CHOICES:
        raise SubmitInvalid(f"choice: expected one of {', '.join(SHOWN_CHOICES)}")
    score = data.get("score")
    if score is not None and (
        isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5
    ):
        raise SubmitInvalid("score: expected a whole number from 1 to 5")
    reasons = data.get("reasons", [])
    if reasons is None:
        reasons = []
    if not isinstance(reasons, list) or not all(isinstance(r, str) for r in reasons):
        raise SubmitInvalid(f"reasons: expected a list of tags from {sorted(REASON_KEYS)}")
    unknown_tags = sorted(set(reasons) - REASON_KEYS)
    if unknown_tags or len(reasons) > len(REASON_KEYS):
        raise SubmitInvalid(f"reasons: unknown tag(s) {unknown_tags}; known: {sorted(REASON_KEYS)}")
    seconds = parse_seconds(data.get("seconds", 0))
    return SubmitInput(token, choice, score, sorted(set(reasons)), seconds)


def parse_seconds(seconds: Any) -> float:
    """A client's time-on-task: a finite number of seconds in [0, one week], or SubmitInvalid."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise SubmitInvalid("seconds: expected a number of seconds")
    # int/float comparison is exact, so a 400-digit int is refused without an OverflowError.
    if (isinstance(seconds, float) and not math.isfinite(seconds)) or not (
        0 <= seconds <= MAX_CLIENT_SECONDS
    ):
        raise SubmitInvalid(f"seconds: expected a finite number from 0 to {MAX_CLIENT_SECONDS:g}")
    return float(seconds)
