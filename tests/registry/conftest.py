"""Fixtures of the registry tests: tiny model files (built once per session), users by role."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.contrib.auth.models import Group, User

from tests.registry import tiny_models as tm


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every model file the acceptance list names, each with its .spec.json sidecar."""
    d = tmp_path_factory.mktemp("tiny-models")
    files = {
        "pt2": (tm.write_pt2(d / "good.pt2"), tm.spec_for("torch_export")),
        "torchscript": (tm.write_torchscript(d / "good.ts.pt"), tm.spec_for("torchscript")),
        "onnx": (tm.write_onnx(d / "good.onnx"), tm.spec_for("onnx")),
        "pickle": (tm.write_pickle(d / "checkpoint.pt"), tm.spec_for("torch_export")),
        "wrong_shape": (tm.write_pt2(d / "shape.pt2", "wrong_shape"), tm.spec_for("torch_export")),
        "nan": (tm.write_pt2(d / "nan.pt2", "nan"), tm.spec_for("torch_export")),
        "hog": (tm.write_pt2(d / "hog.pt2", "hog"), tm.spec_for("torch_export")),
        "random": (tm.write_random(d / "random.pt2"), tm.spec_for("torch_export")),
        "traversal": (tm.write_traversal_zip(d / "traversal.pt2"), tm.spec_for("torch_export")),
    }
    for path, spec in files.values():
        tm.write_spec(path, spec)
    return {name: path for name, (path, _) in files.items()}


@pytest.fixture(autouse=True)
def sandbox_limits(settings: Any) -> None:
    """A memory limit the hog model exceeds by far; CPU/wall limits generous for 2 cores."""
    settings.MODEL_VALIDATION_MEMORY_MB = tm.MEMORY_LIMIT_MB
    settings.MODEL_VALIDATION_CPU_SECONDS = 60
    settings.MODEL_VALIDATION_TIMEOUT_S = 90


@pytest.fixture(autouse=True)
def media_root(request: pytest.FixtureRequest, settings: Any, tmp_path: Path) -> None:
    # Worker processes read settings_test's MEDIA_ROOT, so worker tests keep it.
    if request.node.get_closest_marker("worker") is None:
        settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def no_broker() -> Iterator[mock.MagicMock]:
    """Record chunk sends instead of talking to the broker (jobs stay pending)."""
    with mock.patch("evalsite.core.tasks.run_chunk.apply_async") as send:
        yield send


@pytest.fixture
def make_user(db: Any) -> Callable[..., User]:
    def make(username: str, *roles: str, superuser: bool = False) -> User:
        user = User.objects.create_user(
            username, password="pw-for-tests", is_superuser=superuser, is_staff=superuser
        )
        user.groups.set(Group.objects.filter(name__in=roles))
        return user

    return make


@pytest.fixture
def researcher(make_user: Callable[..., User]) -> User:
    return make_user("rita", "researcher")


@pytest.fixture
def manager(make_user: Callable[..., User]) -> User:
    return make_user("mo", "release_manager")


@pytest.fixture
def annotator(make_user: Callable[..., User]) -> User:
    return make_user("ann", "annotator")
