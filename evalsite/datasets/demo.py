"""`make demo` step: import the demo sets from fixtures/sets/ (idempotent: same content →
unchanged, no new version): `pascal-s-demo` (photos the candidate was tuned on), `pascal-s-test`
(the test set release reports are judged on), `synthetic-people` (person attributes) and
`synthetic-groups` (groups of drawn people with one instance mask each: instance lifts)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model

from evalsite.datasets.errors import ImportRejected
from evalsite.datasets.importing import dataset_import

DEMO_SETS = (
    (
        "pascal-s-demo",
        "30 real PASCAL-S validation pairs (items 401-500), 3 with no subject",
        "PASCAL-S (images from PASCAL VOC 2010) - research use only",
    ),
    (
        "pascal-s-test",
        "100 real PASCAL-S photos (items 751-850): a TEST set - never train, tune or select "
        "on it; release reports are judged here",
        "PASCAL-S (images from PASCAL VOC 2010) - research use only",
    ),
    (
        "synthetic-people",
        "Generated people in the 10 Monk tones, composites and no-subject "
        "negatives; attribute labels of drawn people are synthetic",
        "research only (synthetic)",
    ),
    (
        "synthetic-groups",
        "12 groups of 2-4 drawn people on procedural backgrounds, one instance mask per person "
        "(python -m pipelines.synth.groups): predicted instances are scored one by one",
        "generated",
    ),
)


def setup(log: Callable[[str], None]) -> None:
    root = Path(settings.BASE_DIR) / "fixtures" / "sets"
    user = get_user_model().objects.filter(is_superuser=True).order_by("pk").first()
    for name, description, licence in DEMO_SETS:
        folder = root / name
        if not folder.is_dir():
            log(f"==> demo set {name}: {folder} is missing, skipped")
            continue
        try:
            result = dataset_import(
                path=folder,
                name=name,
                user=user,
                description=description,
                licence=licence,
                source_label=f"fixtures/sets/{name}",
            )
        except ImportRejected as exc:
            log(f"==> demo set {name} rejected: {exc}")
            continue
        log(f"==> demo set {name}: {result.message}")
