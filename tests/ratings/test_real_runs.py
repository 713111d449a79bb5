"""A campaign over runs produced by the real eval path (fake model session, inline chunks): the
artefacts the eval app writes are what the campaign reads and the rating page serves."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from PIL import Image

from evalsite.evals.models import RunStatus
from evalsite.evals.services.runs import eval_run_start
from ratings.models import Task
from ratings.services.campaigns import campaign_create
from tests.evals.factories import tiny_set, tiny_spec, user_with, version_row

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]


def test_campaign_over_real_runs_serves_their_web_cutouts(
    tmp_path: Path, fake_model: Any, run_inline: Any
) -> None:
    dv = tiny_set(tmp_path, n=4, empty=1)
    runs = []
    for v in ("1.0.0", "1.1.0"):
        mv = version_row("real", v, fmt="torch_export", spec=tiny_spec())
        run = run_inline(eval_run_start(model_version=mv, dataset_version=dv, chunk_size=5))
        assert run.status == RunStatus.DONE
        runs.append(run)
    campaign = campaign_create(
        name="real", dataset_version=dv, runs=runs, items_per_pair=5, open_now=True
    )
    tasks = Task.objects.filter(campaign=campaign)
    assert tasks.count() == 5
    assert all(t.divergence == 0.0 for t in tasks)  # the same fake model twice: identical masks
    client = Client()
    client.force_login(user_with("annotator", "real-ann"))
    state = client.post(reverse("ratings:lease")).json()
    for slot in ("left", "right", "photo", "thumb"):
        resp = client.get(state["current"]["images"][slot])
        assert resp.status_code == 200
        img = Image.open(io.BytesIO(resp.content))
        assert img.mode == ("RGBA" if slot in ("left", "right") else img.mode)
        assert not img.info.get("exif") and not getattr(img, "text", {})
