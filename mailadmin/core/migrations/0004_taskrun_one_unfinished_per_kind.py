from django.db import migrations, models


class Migration(migrations.Migration):
    """In a migration of its own: PostgreSQL refuses to build the index in the transaction
    that just updated the rows (pending trigger events)."""

    dependencies = [("core", "0003_taskrun_adopt_old_runs")]

    operations = [
        migrations.AddConstraint(
            model_name="taskrun",
            constraint=models.UniqueConstraint(
                condition=models.Q(("state__in", ["pending", "running"])),
                fields=("kind",),
                name="taskrun_one_unfinished_per_kind",
            ),
        ),
    ]
