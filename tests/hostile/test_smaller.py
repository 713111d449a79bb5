"""Smaller hostile findings (formats, bounds, exports), each through the door that showed it."""

from __future__ import annotations

import subprocess
import sys
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from evalsite.datasets.importing import dataset_import
from evalsite.evals.models import ItemResult, RunStatus
from evalsite.evals.services.runs import eval_run_start
from models.models import Alias, ModelFamily, ModelVersion, VersionStatus
from models.services import model_version_validate
from models.services.versions import model_version_register
from tests.evals.factories import tiny_spec, version_row, write_set_folder
from tests.ratings.builders import World, build_world
from tests.workers import ROOT, worker_env

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]

LONG = "x" * 240


@pytest.fixture(autouse=True)
def media(tmp_path: Path, settings: Any) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return Path(settings.MEDIA_ROOT)


def test_a_240_character_item_name_imports_and_evaluates(
    tmp_path: Path, fake_model: Any, run_inline: Any
) -> None:
    folder = write_set_folder(tmp_path / "long", n=2, empty=0)
    for sub in ("images", "masks"):
        (folder / sub / "img00.png").rename(folder / sub / f"{LONG}.png")
    dv = dataset_import(path=folder, name="long-names").version
    version = version_row("fake", "1.0.0", fmt="torch_export", spec=tiny_spec())
    run = run_inline(eval_run_start(model_version=version, dataset_version=dv))
    assert run.status == RunStatus.DONE, run.error
    result = ItemResult.objects.get(run=run, item__stem=LONG)
    assert result.status == "ok", result.error
    assert all(len(Path(str(p)).name.encode()) < 255 for p in result.artefacts.values()
               if isinstance(p, str))  # fmt: skip


def test_the_family_page_vs_production_link_compares_the_two_runs(tmp_path: Path) -> None:
    world: World = build_world(tmp_path, n=4, runs=2, annotators=0)
    family = world.runs[0].model_version.family
    Alias.objects.create(family=family, name="candidate", version=world.runs[1].model_version)
    client = Client()
    client.force_login(world.researcher)
    page = client.get(f"/models/{family.name}/").content.decode()
    assert "vs production" in page
    link = page.split("vs production")[0].rsplit('href="', 1)[1].split('"')[0]
    response = client.get(link.replace("&amp;", "&"))
    assert response.status_code == 200, response.content[:300]
    assert f"#{world.runs[0].pk}" in response.content.decode()
    missing = client.get("/runs/compare/?a=nope:production&b=nope:candidate")
    assert missing.status_code == 400 and missing["Content-Type"].startswith("text/plain")


def _model_with_spec(tmp_path: Path) -> Path:
    from tests.registry import tiny_models as tm

    model = Path(tm.write_pt2(tmp_path / "m.pt2"))
    tm.write_spec(model, tm.spec_for("torch_export"))
    return model


@pytest.mark.parametrize("parent", ["9.9.9"], ids=["cli-parent-unknown"])
def test_cli_parent_unknown_on_a_new_family_writes_nothing(tmp_path: Path, parent: str) -> None:
    model = _model_with_spec(tmp_path)
    with pytest.raises(CommandError) as err:
        call_command("register_model", str(model), "--family", "brand-new", "--version", "1.0.0",
                     "--parent", parent, stdout=StringIO())  # fmt: skip
    assert err.value.returncode == 2
    assert "Parent version brand-new:9.9.9 does not exist" in str(err.value)
    assert not ModelFamily.objects.exists() and not ModelVersion.objects.exists()


def test_cli_family_newline_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    model = _model_with_spec(tmp_path)
    with pytest.raises(CommandError) as err:
        call_command("register_model", str(model), "--family", "subject-lift\n", "--version",
                     "1.0.0", stdout=StringIO())  # fmt: skip
    assert err.value.returncode == 2 and "control character" in str(err.value)
    assert not ModelFamily.objects.exists()


def test_model_rejected_by_validation_leaves_no_file_in_media(
    tiny_nan: Path, media: Path, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.MODEL_VALIDATION_MEMORY_MB = 3072
    reg = model_version_register(
        family="subject-lift", version="1.0.0", file=tiny_nan, spec=tiny_spec_for_pt2(),
        validate="none",
    )  # fmt: skip
    stored = Path(reg.version.file.path)
    assert stored.is_file()
    with django_capture_on_commit_callbacks(execute=True):
        row = model_version_validate(version_id=reg.version.pk)
    assert row.status == VersionStatus.REJECTED and row.rejection_reason
    assert not stored.exists() and not row.file
    assert [p for p in media.rglob("*") if p.is_file()] == []


def tiny_spec_for_pt2() -> dict[str, Any]:
    from tests.registry.tiny_models import spec_for

    return spec_for("torch_export")


@pytest.fixture
def tiny_nan(tmp_path: Path) -> Path:
    from tests.registry import tiny_models as tm

    return Path(tm.write_pt2(tmp_path / "nan.pt2", "nan"))


def test_the_403_for_moving_production_says_why(tmp_path: Path) -> None:
    world: World = build_world(tmp_path, n=2, runs=1, annotators=0)
    family = world.runs[0].model_version.family
    client = Client()
    client.force_login(world.researcher)
    response = client.post(
        f"/models/{family.name}/aliases/move/",
        {"name": "Production", "version": world.runs[0].model_version.version, "reason": "x"},
    )
    assert response.status_code == 403
    assert "Only release managers and admins may move the production alias" in (
        response.content.decode()
    )


@pytest.mark.django_db(transaction=True)
def test_register_model_prints_no_library_warnings_on_stderr(tmp_path: Path) -> None:
    from tests.registry import tiny_models as tm

    model = Path(tm.write_pt2(tmp_path / "good.pt2"))
    tm.write_spec(model, tm.spec_for("torch_export"))
    env = {**worker_env(), "MEDIA_ROOT": str(tmp_path / "media")}
    done = subprocess.run(
        [sys.executable, "manage.py", "register_model", str(model), "--family", "warn-check",
         "--version", "1.0.0", "--no-wait"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    for noise in ("coremltools", "scikit-learn", "Failed to load", "Torch version"):
        assert noise not in done.stderr, done.stderr


CASE_IDS = {"cli-parent-unknown", "cli-family-newline", "model-rejected-by-validation"}
