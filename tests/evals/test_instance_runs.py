"""Instance lifts on a run: the demo's synthetic groups imported as a set with instance masks,
predictions imported for it, and what a user reads — each item's stored match, the run summary
(per-image means beside the pooled figures), the per-instance strip under each image, the item
page and the exports."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from evalsite.datasets.importing import dataset_import
from evalsite.evals.models import EvalRun, ItemResult, RunSource, RunStatus
from models.services import model_version_register
from pipelines.metrics.instances import match_instances
from pipelines.postprocess.instances import separate_instances
from tests.evals.factories import user_with
from tests.evals.importing import clear_run_folders

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]

GROUPS = Path(__file__).resolve().parents[2] / "fixtures" / "sets" / "synthetic-groups"
STEMS = ("group_00000", "group_00001", "group_00003")


def small_groups_set(tmp_path: Path) -> Path:
    folder = tmp_path / "groups"
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    lines = (GROUPS / "manifest.csv").read_text().splitlines()
    kept = [lines[0]] + [ln for ln in lines[1:] if any(f"/{s}." in ln for s in STEMS)]
    (folder / "manifest.csv").write_text("\n".join(kept) + "\n")
    for stem in STEMS:
        shutil.copy(GROUPS / "images" / f"{stem}.jpg", folder / "images")
        shutil.copy(GROUPS / "masks" / f"{stem}.png", folder / "masks")
        shutil.copytree(GROUPS / "instances" / stem, folder / "instances" / stem)
    return folder


def gt_instances(stem: str) -> list[np.ndarray]:
    files = sorted((GROUPS / "instances" / stem).glob("*.png"), key=lambda p: int(p.stem))
    return [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) > 127 for p in files]


def test_a_run_on_a_set_with_instance_masks_scores_every_instance(tmp_path: Path) -> None:
    clear_run_folders()
    dataset_import(path=small_groups_set(tmp_path), name="groups")
    # predictions: the first item exactly, the second with its last person left out, the third
    # with two people glued together by a bar (one predicted instance for two people)
    preds = tmp_path / "preds"
    preds.mkdir()
    alphas = {}
    for stem in STEMS:
        inst = gt_instances(stem)
        alpha = np.zeros(inst[0].shape, np.uint8)
        for m in inst:
            alpha[m] = 255
        if stem == STEMS[1]:
            alpha[inst[-1]] = 0
        if stem == STEMS[2]:
            ys = np.flatnonzero(inst[0].any(axis=1) & inst[1].any(axis=1))
            y = int(ys[len(ys) // 2])
            xs = np.flatnonzero(inst[0][y] | inst[1][y])
            alpha[y - 3 : y + 3, xs.min() : xs.max() + 1] = 255
        alphas[stem] = alpha
        cv2.imwrite(str(preds / f"{stem}.png"), alpha)
    version = model_version_register(family="lifter", version="1.0.0", file=None, spec=None,
                                     external=True).version  # fmt: skip
    call_command("import_predictions", str(preds), "--model", version.ref, "--dataset", "groups",
                 stdout=io.StringIO())  # fmt: skip
    run = EvalRun.objects.get(source=RunSource.IMPORTED)
    assert run.status == RunStatus.DONE, run.error
    rows = {r.item.stem: r for r in ItemResult.objects.filter(run=run).select_related("item")}

    exact = rows[STEMS[0]].instance_scores
    n0 = len(gt_instances(STEMS[0]))
    assert exact["gt_count"] == exact["pred_count"] == n0 and exact["count_correct"]
    assert [p["iou"] for p in exact["pairs"]] == [1.0] * n0
    assert [p["boundary_iou"] for p in exact["pairs"]] == [1.0] * n0
    assert rows[STEMS[0]].instance_iou == 1.0 and rows[STEMS[0]].instance_count_ok == 1.0

    dropped = rows[STEMS[1]].instance_scores
    n1 = len(gt_instances(STEMS[1]))
    assert dropped["missed"] == [n1] and dropped["extra"] == [] and not dropped["count_correct"]
    assert rows[STEMS[1]].instance_recall == pytest.approx((n1 - 1) / n1)

    glued = rows[STEMS[2]].instance_scores
    assert glued["pred_count"] == len(gt_instances(STEMS[2])) - 1
    # the same numbers as matching the files directly (predicted instances as the run split them)
    split = separate_instances(alphas[STEMS[2]])
    direct = match_instances(gt_instances(STEMS[2]), [split.mask(i.label) for i in split.items])
    assert glued == json.loads(json.dumps(direct.as_dict()))

    inst = run.summary["instances"]
    assert inst["items"] == 3
    per_image = [r.instance_recall for r in rows.values()]
    assert inst["instance_recall"] == pytest.approx(np.mean(per_image))
    gt_total = sum(len(gt_instances(s)) for s in STEMS)
    assert inst["pooled"]["instance_recall"] == pytest.approx(inst["matched"] / gt_total)

    client = Client()
    client.force_login(user_with("researcher"))
    page = client.get(reverse("evals:detail", args=[run.pk])).content.decode()
    assert 'id="instance-summary"' in page and "pooled over instances" in page
    assert "per-image mean" in page
    items = client.get(reverse("evals:items", args=[run.pk])).content.decode()
    assert items.count('class="instance-strip"') == 3
    assert f"GT {n1}: missed" in items
    item = client.get(reverse("evals:item", args=[run.pk, rows[STEMS[2]].item_id])).content
    assert b"Instances, matched to the ground truth" in item and b'data-kind="missed"' in item

    table = list(csv.DictReader(io.StringIO(
        client.get(reverse("evals:csv", args=[run.pk])).content.decode())))  # fmt: skip
    by_stem = {r["stem"]: r for r in table}
    for key in ("instance_iou", "instance_boundary_iou", "instance_recall", "instance_count_ok",
                "sad", "mse_alpha", "grad", "conn", "boundary_iou"):  # fmt: skip
        assert by_stem[STEMS[0]][key] != "", key
    doc = json.loads(client.get(reverse("evals:json", args=[run.pk])).content)
    assert (
        doc["summary"]["instances"]["pooled"]["instance_recall"]
        == inst["pooled"]["instance_recall"]
    )
    per_item = {r["stem"]: r for r in doc["per_image"]}
    assert per_item[STEMS[1]]["instance_scores"]["missed"] == [n1]
