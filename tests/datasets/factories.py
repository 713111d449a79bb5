"""factory_boy factories for rows that need no stored files (resolver, pages without items)."""

from __future__ import annotations

import hashlib

import factory

from evalsite.datasets.models import Dataset, DatasetVersion


class DatasetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Dataset

    name = factory.Sequence(lambda n: f"set{n}")
    description = "a test set"


class DatasetVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DatasetVersion

    dataset = factory.SubFactory(DatasetFactory)
    content_hash = factory.Sequence(lambda n: hashlib.sha256(f"v{n}".encode()).hexdigest())
    item_count = 0
