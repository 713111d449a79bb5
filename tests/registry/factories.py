"""factory_boy factories for registry rows that skip the sandbox (alias, API, page tests)."""

from __future__ import annotations

import hashlib

import factory

from models.models import ModelFamily, ModelVersion, VersionStatus
from tests.registry.tiny_models import spec_for


class FamilyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ModelFamily
        django_get_or_create = ("name",)

    name = "subject-lift"


class VersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ModelVersion

    family = factory.SubFactory(FamilyFactory)
    version = factory.Sequence(lambda n: f"1.{n}.0")
    format = "torch_export"
    status = VersionStatus.READY
    spec = factory.LazyFunction(lambda: spec_for("torch_export"))
    sha256 = factory.LazyAttribute(lambda o: hashlib.sha256(o.version.encode()).hexdigest())
    size = 1234
