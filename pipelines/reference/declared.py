"""What a reference export declares it chose on the validation photos (spec and card).

Why declared at export: training keeps the checkpoint with the best validation score
(``best.pt``), export may interpolate with the parent at a weight chosen by validation scores, and
the gate threshold is picked on validation; each makes the shipped version look better on those
photos than on photos nobody chose anything on. The spec's ``training.tuned_image_sha256`` /
``selected_image_sha256`` say so (``pipelines.spec.declared``), and the card says it in words.
"""

from __future__ import annotations


def chosen_on_validation(
    *, gate: str, checkpoint: str, interpolated: bool
) -> tuple[bool, list[str]]:
    """(tuned, why selected): what export and training chose on the validation photos.

    A picked gate threshold tunes on them; ``best.pt`` is the checkpoint with the best validation
    score of its run, and an interpolation weight is chosen by comparing validation scores, so
    either selects the shipped weights on them.
    """
    why = []
    if checkpoint == "best.pt":
        why.append("the exported checkpoint is the best of its run on them")
    if interpolated:
        why.append("the interpolation weight was chosen on them")
    return gate == "pick", why


def declared_line(*, n_train: int, n_val: int, tuned: bool, selected_why: list[str]) -> str:
    """The card's sentence naming what the spec declares per role."""
    parts = [f"`image_sha256`: the {n_train} training images (trained)"]
    if tuned:
        parts.append(
            f"`tuned_image_sha256`: the {n_val} validation photos, `pascal-s` items 401–500 "
            "(tuned: the gate threshold was picked on them)"
        )
    if selected_why:
        parts.append(
            f"`selected_image_sha256`: the {n_val} validation photos, `pascal-s` items 401–500 "
            f"(selected: {'; '.join(selected_why)})"
        )
    return (
        "- Declared in the spec's `training`, so the platform names any set holding these photos "
        "as biased evidence for this version: " + "; ".join(parts) + "."
    )
