"""Fixtures of the eval tests: a fake model session (no sandbox), inline chunk execution, users."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from evalsite.datasets.models import DatasetVersion
from evalsite.evals.models import EvalRun
from evalsite.evals.services import runner as runners
from evalsite.evals.services.execute import load_photo
from models.models import ModelVersion
from pipelines.runners.base import RawOutput
from tests.evals.factories import tiny_set, tiny_spec, version_row
from tests.inline import run_job_inline


def photo_key(photo: np.ndarray) -> str:
    return hashlib.md5(np.ascontiguousarray(photo).tobytes()).hexdigest()


def item_key(item: Any) -> str:
    return photo_key(load_photo(item.image.path))


@dataclass
class FakeModel:
    """Stands in for the sandboxed session: thresholds brightness, misbehaves on chosen photos.

    `behaviour` maps a photo key (see `item_key`) to "nan", "shape", "raise", "crash" (every
    time) or "crash_once" (the first time only, as a process killed from outside would).
    """

    size: int = 64
    behaviour: dict[str, str] = field(default_factory=dict)
    fail_load: str = ""
    opened: int = 0
    predicted: int = 0
    crashed: set[str] = field(default_factory=set)
    sessions: list[Any] = field(default_factory=list)

    def session(self, version: Any, runtime: str, threads: int | None = None) -> Any:
        if self.fail_load:
            raise runners.ModelLoadError(self.fail_load)
        self.opened += 1
        self.sessions.append(_FakeSession(self))
        return self.sessions[-1]


class _FakeSession:
    device = "cpu"

    def __init__(self, model: FakeModel) -> None:
        self.model = model
        self.dead = False  # set by a test: the process was killed while idle

    @property
    def alive(self) -> bool:
        return not self.dead

    def warmup(self) -> int:
        return 1

    def environment(self) -> dict[str, Any]:
        return {"hostname": "fake", "threads": 1}

    def close(self) -> None:
        pass

    def predict(self, photo: np.ndarray) -> RawOutput:
        if self.dead:
            raise runners.SessionCrashed("child exited with signal SIGKILL")
        key = photo_key(photo)
        what = self.model.behaviour.get(key, "")
        if what == "crash_once" and key not in self.model.crashed:
            self.model.crashed.add(key)
            raise runners.SessionCrashed("child exited with signal SIGKILL")
        if what == "crash":
            raise runners.SessionCrashed("child exited with signal SIGSEGV")
        if what == "raise":
            raise runners.PredictError("RuntimeError: boom on this image")
        self.model.predicted += 1
        s = self.model.size
        grey = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
        alpha = cv2.resize(grey, (s, s), interpolation=cv2.INTER_LINEAR)
        if what == "nan":
            alpha[0, 0] = np.nan
        if what == "shape":
            alpha = np.zeros((s // 2, s), np.float32)
        confidence = 0.9 if grey.max() > 0.5 else 0.1
        return RawOutput(alpha=alpha, confidence=confidence,
                         timings={"preprocess": 0.5, "model": 2.0})  # fmt: skip


@pytest.fixture
def fake_model(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeModel]:
    model = FakeModel()
    runners.session_cache_clear()
    monkeypatch.setattr(runners, "open_session", model.session)
    yield model
    runners.session_cache_clear()


@pytest.fixture
def version() -> ModelVersion:
    """A ready row of the fake model (the `fake_model` fixture's session never opens a file)."""
    return version_row("fake", "1.0.0", fmt="torch_export", spec=tiny_spec())


@pytest.fixture
def dv(tmp_path: Path) -> DatasetVersion:
    """A tiny set: five photos with a subject, one without."""
    return tiny_set(tmp_path, n=5, empty=1)


@pytest.fixture
def run_inline(
    django_capture_on_commit_callbacks: Any,
) -> Iterator[Callable[[EvalRun], EvalRun]]:
    """Execute every pending chunk of a run in this process, as a worker would, hooks included."""

    def run(run: EvalRun, *, only: int | None = None) -> EvalRun:
        return run_job_inline(run, django_capture_on_commit_callbacks, only=only)

    yield run
