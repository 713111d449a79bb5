"""A run stores only its scored alpha PNGs; cutouts, overlays, web copies and instance crops are
rendered when someone opens them, from the photo and the stored alpha, with nothing written."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.urls import reverse
from PIL import Image

from evalsite.evals.models import EvalRun, ItemResult, ResultStatus
from evalsite.evals.services.artefacts import cutout_png, item_view
from evalsite.evals.services.runs import eval_run_start
from pipelines.metrics.io import read_gray8
from pipelines.postprocess.cutout import encode_png, instance_cutouts, rgba_cutout
from pipelines.postprocess.instances import separate_instances
from pipelines.runners.images import load_image_rgb
from tests.evals.conftest import fake_model, run_inline  # noqa: F401 - fixtures
from tests.evals.factories import tiny_set, tiny_spec, user_with, version_row

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]


@pytest.fixture
def run(tmp_path, fake_model, run_inline) -> EvalRun:  # noqa: F811
    version = version_row("fake", "1.0.0", fmt="torch_export", spec=tiny_spec())
    dv = tiny_set(tmp_path, n=4, empty=1)
    return run_inline(eval_run_start(model_version=version, dataset_version=dv, chunk_size=4))


def files_under(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")}


def fetch(client, run: EvalRun, result: ItemResult, role: str, **headers: str):
    return client.get(reverse("evals:file", args=[run.pk, result.item_id, role]), **headers)


def test_a_run_stores_only_the_scored_alpha_pngs_and_views_write_nothing(client, run):
    client.force_login(user_with("researcher"))
    folder = Path(settings.MEDIA_ROOT) / "runs" / str(run.pk)
    assert {p.name for p in folder.iterdir()} == {"alpha", "alpha_ungated", ".evaluations"}
    before = files_under(folder)
    shown = 0
    for r in ItemResult.objects.filter(run=run, status=ResultStatus.OK).select_related("item"):
        photo = load_image_rgb(r.item.image.path)
        alpha = read_gray8(Path(settings.MEDIA_ROOT) / r.artefacts["alpha"])
        for role in ("cutout", "web_cutout"):
            response = fetch(client, run, r, role)
            assert response.status_code == 200 and response["Content-Type"] == "image/png"
            rgba = np.asarray(Image.open(io.BytesIO(response.content)))
            assert np.array_equal(rgba, rgba_cutout(photo, alpha)), role  # the scored alpha
        overlay = fetch(client, run, r, "web_overlay")
        assert overlay["Content-Type"] == "image/jpeg"
        assert Image.open(io.BytesIO(overlay.content)).size == (photo.shape[1], photo.shape[0])
        assert fetch(client, run, r, "web_alpha").content == encode_png(alpha)
        crops = instance_cutouts(photo, alpha, separate_instances(alpha))
        assert len(r.artefacts["instances"]) == len(crops) == r.instance_count
        for n, crop in enumerate(crops, start=1):
            for role in (f"instance-{n}", f"instance_web-{n}"):
                assert fetch(client, run, r, role).content == cutout_png(crop)
                shown += 1
        assert fetch(client, run, r, f"instance-{len(crops) + 1}").status_code == 404
    assert shown, "no instance crop was rendered: the test would not see them break"
    assert files_under(folder) == before  # GET handlers never write


def test_a_rendered_view_is_cached_until_its_alpha_file_changes(client, run):
    client.force_login(user_with("researcher"))
    r = ItemResult.objects.filter(run=run, status=ResultStatus.OK).first()
    first = fetch(client, run, r, "web_cutout")
    etag = first["ETag"]
    assert "max-age" in first["Cache-Control"]
    again = fetch(client, run, r, "web_cutout", HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304 and not again.content
    # a retried chunk rewrites the alpha: the cached copy is no longer current
    path = Path(settings.MEDIA_ROOT) / r.artefacts["alpha"]
    alpha = read_gray8(path)
    path.write_bytes(encode_png(255 - alpha))
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    changed = fetch(client, run, r, "web_cutout", HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200 and changed["ETag"] != etag
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(changed.content)))[..., 3], 255 - alpha)


def test_a_file_an_older_run_stored_is_served_as_stored(run):
    r = ItemResult.objects.filter(run=run, status=ResultStatus.OK).select_related("item").first()
    rel = f"runs/{run.pk}/web/{r.item.stem}.cutout.png"
    stored = Path(settings.MEDIA_ROOT) / rel
    stored.parent.mkdir(parents=True)
    stored.write_bytes(b"\x89PNG stored earlier")
    view = item_view({**r.artefacts, "web_cutout": rel}, r.item.image.name, "web_cutout")
    assert view.render() == (b"\x89PNG stored earlier", "image/png")
