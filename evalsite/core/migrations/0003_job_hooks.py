from django.db import migrations, models
from django.db.models import F


def mark_finished_hooks_ran(apps, schema_editor):  # type: ignore[no-untyped-def]
    """Jobs finished before this migration ran their hooks the old way: never replay them."""
    job = apps.get_model("core", "Job")
    job.objects.filter(status__in=["done", "failed", "cancelled"]).update(
        hook_claimed_at=F("finished_at"), hook_ran_at=F("finished_at")
    )


class Migration(migrations.Migration):
    dependencies = [("core", "0002_groups")]

    operations = [
        migrations.AddField(
            model_name="job",
            name="hook_claimed_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="job",
            name="hook_ran_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="chunk",
            name="interruptions",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.RunPython(mark_finished_hooks_ran, migrations.RunPython.noop),
    ]
