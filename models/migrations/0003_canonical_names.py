"""Canonical names: existing family, version and alias names are brought to their
canonical form (NFKC, lower case) and case-insensitive uniqueness is held by the database.

A name that cannot be made canonical (invisible characters, a look-alike of `production`), or
two names that become the same, stop the migration with a message naming the rows: an operator
renames them (Django admin or shell) and migrates again. Nothing is changed in that case.
"""

from typing import Any

import django.db.models.functions.text
from django.db import migrations, models

import evalsite.core.names


def canonicalise(apps: Any, schema_editor: Any) -> None:
    from evalsite.core.names import NameRejected, canonical_name

    family_model = apps.get_model("registry", "ModelFamily")
    version_model = apps.get_model("registry", "ModelVersion")
    alias_model = apps.get_model("registry", "Alias")
    problems: list[str] = []
    updates: list[tuple[Any, str, str]] = []
    for model, field, kind, scope in (
        (family_model, "name", "family", None),
        (version_model, "version", "version", "family_id"),
        (alias_model, "name", "alias", "family_id"),
    ):
        seen: dict[tuple[Any, str], str] = {}
        for row in model.objects.order_by("pk"):
            raw = getattr(row, field)
            try:
                name = canonical_name(raw, kind=kind)
            except NameRejected as exc:
                problems.append(f"{model.__name__} #{row.pk}: {exc}")
                continue
            key = (getattr(row, scope) if scope else None, name)
            if key in seen:
                problems.append(
                    f"{model.__name__} #{row.pk} {raw!r} and {seen[key]!r} are the same name "
                    f"{name!r} in canonical form"
                )
            seen[key] = raw
            if name != raw:
                updates.append((row, field, name))
    if problems:
        raise RuntimeError(
            "registry.0003_canonical_names: rename these rows, then migrate again:\n  "
            + "\n  ".join(problems)
        )
    for row, field, name in updates:
        setattr(row, field, name)
        row.save(update_fields=[field])


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0002_external_versions"),
    ]

    operations = [
        migrations.RunPython(canonicalise, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="modelfamily",
            name="name",
            field=models.CharField(
                max_length=100,
                unique=True,
                validators=[evalsite.core.names.validate_family_name],
            ),
        ),
        migrations.AlterField(
            model_name="modelversion",
            name="version",
            field=models.CharField(
                max_length=64, validators=[evalsite.core.names.validate_version_name]
            ),
        ),
        migrations.AlterField(
            model_name="alias",
            name="name",
            field=models.CharField(
                max_length=64, validators=[evalsite.core.names.validate_alias_name]
            ),
        ),
        migrations.AddConstraint(
            model_name="modelfamily",
            constraint=models.UniqueConstraint(
                django.db.models.functions.text.Lower("name"), name="family_name_unique_ci"
            ),
        ),
        migrations.AddConstraint(
            model_name="modelversion",
            constraint=models.UniqueConstraint(
                models.F("family"),
                django.db.models.functions.text.Lower("version"),
                name="version_unique_in_family_ci",
            ),
        ),
        migrations.AddConstraint(
            model_name="alias",
            constraint=models.UniqueConstraint(
                models.F("family"),
                django.db.models.functions.text.Lower("name"),
                name="alias_unique_in_family_ci",
            ),
        ),
    ]
