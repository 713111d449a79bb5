"""Tiny models and sets for eval tests: built in tmp_path in well under a second each.

The model is a real torch.export archive (conv + sigmoid alpha, confidence head) so worker tests go
through the registry's sandbox exactly as a user's upload would; the set is imported through the
datasets service, so items carry the stored files, sizes and buckets the runs read.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from django.test import Client
from PIL import Image
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from evalsite.core.services import user_ensure
from evalsite.datasets.importing import dataset_import
from evalsite.datasets.models import DatasetVersion
from evalsite.evals.models import EvalRun, ItemResult, RunStatus
from evalsite.evals.services.runs import eval_run_start
from models.models import ModelVersion, VersionStatus
from models.services import model_version_register
from pipelines.spec import build_spec

SIZE = 64  # model input (spec size); the smallest the schema allows is 16
DARK, BRIGHT = 20, 230


def tiny_spec(size: int = SIZE) -> dict[str, Any]:
    return build_spec("torch_export", size=size)


def export_tiny_model(path: Path, size: int = SIZE) -> Path:
    """Bright pixels → alpha ≈ 1; confidence logit grows with the image's brightest region."""
    import torch
    from torch import nn

    class Tiny(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 1, 3, padding=1)
            with torch.no_grad():
                self.conv.weight.zero_()
                self.conv.weight[0, :, 1, 1] = 1.0
                self.conv.bias.fill_(0.0)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            logits = self.conv(x)
            alpha = torch.sigmoid(logits)
            confidence = torch.amax(logits, dim=(1, 2, 3)) - 2.0  # no bright pixel → low
            return alpha, confidence

    model = Tiny().eval()
    example = (torch.zeros(1, 3, size, size),)
    program = torch.export.export(model, example)
    torch.export.save(program, str(path))
    return path


def register_ready(
    family: str, version: str, *, file: Path | None, spec: dict[str, Any], parent: str = ""
) -> ModelVersion:
    """Register without the sandbox dry run (tests of runs, not of validation) and mark ready."""
    reg = model_version_register(
        family=family, version=version, file=file, spec=spec, validate="none",
        parent=parent or None,
    )  # fmt: skip
    ModelVersion.objects.filter(pk=reg.version.pk).update(status=VersionStatus.READY)
    return ModelVersion.objects.select_related("family").get(pk=reg.version.pk)


def version_row(family: str, version: str, *, fmt: str, spec: dict[str, Any]) -> ModelVersion:
    """A ready version row without a file, for runs whose session is faked."""
    from models.services import model_family_get_or_create

    fam = model_family_get_or_create(name=family)
    return ModelVersion.objects.create(
        family=fam, version=version, format=fmt, spec=spec, status=VersionStatus.READY,
        sha256=f"{fmt}-{family}-{version}",
    )  # fmt: skip


def tiny_model(tmp_path: Path, version: str = "1.0.0", family: str = "tiny") -> ModelVersion:
    path = export_tiny_model(tmp_path / f"tiny-{version}.pt2")
    return register_ready(family, version, file=path, spec=tiny_spec())


def disk_pair(
    stem: str, h: int, w: int, radius: float, cx: float = 0.5, cy: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:h, 0:w]
    mask = (xx - cx * w) ** 2 + (yy - cy * h) ** 2 <= (radius * min(h, w)) ** 2
    photo = np.full((h, w, 3), DARK, np.uint8)
    photo[mask] = BRIGHT
    return photo, (mask * 255).astype(np.uint8)


def write_set_folder(root: Path, n: int = 6, *, empty: int = 1) -> Path:
    """`n` photos with one bright disk each (varied sizes), plus `empty` no-subject photos."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        h, w = int(rng.integers(40, 90)), int(rng.integers(40, 90))
        photo, mask = disk_pair(f"img{i:02d}", h, w, radius=0.12 + 0.05 * (i % 5))
        Image.fromarray(photo).save(root / "images" / f"img{i:02d}.png")
        Image.fromarray(mask).save(root / "masks" / f"img{i:02d}.png")
    for j in range(empty):
        photo = np.full((48, 64, 3), DARK, np.uint8)
        Image.fromarray(photo).save(root / "images" / f"none{j}.png")
        Image.fromarray(np.zeros((48, 64), np.uint8)).save(root / "masks" / f"none{j}.png")
    return root


def tiny_set(tmp_path: Path, name: str = "tiny-set", n: int = 6, empty: int = 1) -> DatasetVersion:
    folder = write_set_folder(tmp_path / name, n, empty=empty)
    result = dataset_import(path=folder, name=name)
    return DatasetVersion.objects.select_related("dataset").get(pk=result.version.pk)


def done_run_row(
    model_version: ModelVersion, dataset_version: DatasetVersion, config: str
) -> EvalRun:
    """A finished run row with no results yet (a builder fabricates them)."""
    return EvalRun.objects.create(
        model_version=model_version, dataset_version=dataset_version, queue="torch",
        config_hash=config, status=RunStatus.DONE,
    )  # fmt: skip


def fake_run_done(
    run_inline: Callable[[EvalRun], EvalRun], tmp_path: Path, *, n: int = 6, empty: int = 1,
    chunk_size: int = 3,
) -> tuple[EvalRun, list[ItemResult]]:  # fmt: skip
    """The fake model (the `fake_model` fixture) over a tiny set of `n` items (`empty` of them
    with no subject), executed inline to done: the run and its results with their items."""
    version = version_row("fake", "1.0.0", fmt="torch_export", spec=tiny_spec())
    dv = tiny_set(tmp_path, n=n, empty=empty)
    run = run_inline(
        eval_run_start(model_version=version, dataset_version=dv, chunk_size=chunk_size)
    )
    assert run.status == RunStatus.DONE, run.error
    return run, list(ItemResult.objects.filter(run=run).select_related("item"))


def signed_in_client(user: Any, **kw: Any) -> Client:
    """A test client (`kw`: its options) signed in as `user`."""
    client = Client(**kw)
    client.force_login(user)
    return client


def token_client(user: Any) -> APIClient:
    """A REST client that sends a new API token of `user`."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def client_as(role: str, username: str | None = None) -> Client:
    """A test client signed in as `user_with(role, username)`."""
    return signed_in_client(user_with(role, username))


def user_with(role: str, username: str | None = None) -> Any:
    name = username or f"{role}-user"
    return user_ensure(
        username=name, password="pw-" + name, roles=[] if role == "admin" else [role],
        superuser=role == "admin",
    )  # fmt: skip
