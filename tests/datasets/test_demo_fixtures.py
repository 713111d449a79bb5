"""The demo's fixture sets hold what the demo's decision needs: every fairness group of the
synthetic people is large enough to be judged, and the test set is untouched by every demo model."""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter
from pathlib import Path

from pipelines.fairness import FairnessSettings
from pipelines.fairness.grouping import parse_tone_groups
from pipelines.release import GateSettings

ROOT = Path(__file__).resolve().parents[2] / "fixtures"
MARGIN = 5  # a set that only just reaches the minimum is one item away from "too small"


def _rows(name: str) -> list[dict[str, str]]:
    with (ROOT / "sets" / name / "manifest.csv").open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_every_monk_and_gender_group_of_synthetic_people_clears_the_minimum_with_margin() -> None:
    minimum = max(GateSettings().min_group_size, FairnessSettings().min_group_size)
    rows = _rows("synthetic-people")
    groups = parse_tone_groups("1-3,4-7,8-10")
    tones: Counter[str] = Counter()
    genders: Counter[str] = Counter()
    for row in rows:
        if row["skin_tone"].isdigit():
            tone = int(row["skin_tone"])
            lo, hi = next((lo, hi) for lo, hi in groups if lo <= tone <= hi)
            tones[f"{lo}-{hi}"] += 1
            genders[row["perceived_gender"]] += 1
    assert set(tones) == {"1-3", "4-7", "8-10"}
    assert set(genders) == {"woman", "man", "other"}
    for group, n in {**tones, **genders}.items():
        assert n >= minimum + MARGIN, f"{group}: {n} people, the minimum group size is {minimum}"
    people = [r for r in rows if "synthetic_labels" in r["tags"].split(";")]
    assert len(people) == sum(tones.values())  # every labelled person is marked synthetic


def test_the_test_set_is_the_shared_one_and_no_demo_model_declares_it() -> None:
    rows = _rows("pascal-s-test")
    folder = ROOT / "sets" / "pascal-s-test"
    assert len(rows) == 100 and {r["image"] for r in rows} == {
        f"images/{n}.jpg" for n in range(751, 851)
    }
    hashes = {hashlib.sha256((folder / r["image"]).read_bytes()).hexdigest() for r in rows}
    assert len(hashes) == 100
    readme = (folder / "README.md").read_text()
    assert "never train, tune, pick a threshold or choose a checkpoint on it" in readme
    for spec_path in (ROOT / "models").glob("*.spec.json"):
        declared = json.dumps(json.loads(spec_path.read_text()))
        assert not [h for h in hashes if h in declared], f"{spec_path.name} used the test set"
