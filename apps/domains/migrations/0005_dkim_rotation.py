"""DKIM keys get a rotation life cycle (pending, active, retiring, retired) in place of the
is_active flag: an active key stays active (the newest one per domain and algorithm, the
others retire), an inactive one, which was no longer published, is retired."""

from django.db import migrations, models
import django.utils.timezone
import mailadmin.sealing


def states_from_flags(apps, schema_editor):
    DkimKey = apps.get_model("domains", "DkimKey")
    DkimKey.objects.filter(is_active=False).update(state="retired")
    signing = set()
    active = DkimKey.objects.filter(is_active=True).order_by("-created_at", "-id")
    for key in active.only("id", "domain_id", "algorithm").iterator():
        slot = (key.domain_id, key.algorithm)
        DkimKey.objects.filter(pk=key.pk).update(state="retiring" if slot in signing else "active")
        signing.add(slot)


def flags_from_states(apps, schema_editor):
    DkimKey = apps.get_model("domains", "DkimKey")
    DkimKey.objects.update(is_active=False)
    DkimKey.objects.filter(state__in=["pending", "active", "retiring"]).update(is_active=True)


class Migration(migrations.Migration):
    dependencies = [
        ("domains", "0003_seal_dkim_private_keys"),
    ]

    operations = [
        migrations.AddField(
            model_name="dkimkey",
            name="state",
            field=models.CharField(
                choices=[
                    ("pending", "Pending (waiting for its DNS record)"),
                    ("active", "Active (signing)"),
                    ("retiring", "Retiring (published, not signing)"),
                    ("retired", "Retired (withdrawn)"),
                ],
                default="pending",
                max_length=16,
            ),
        ),
        migrations.AddField(
            model_name="dkimkey",
            name="state_changed_at",
            field=models.DateTimeField(default=django.utils.timezone.now),
        ),
        migrations.RunPython(states_from_flags, flags_from_states),
        migrations.RemoveField(model_name="dkimkey", name="is_active"),
        migrations.AlterField(
            model_name="dkimkey",
            name="private_key",
            field=mailadmin.sealing.SealedTextField(
                editable=False,
                help_text=(
                    "PEM (PKCS#8), sealed at rest; never shown or returned; empty once retired."
                ),
            ),
        ),
        migrations.AddConstraint(
            model_name="dkimkey",
            constraint=models.UniqueConstraint(
                condition=models.Q(("state", "active")),
                fields=("domain", "algorithm"),
                name="dkim_one_signing_key",
            ),
        ),
        migrations.AddIndex(
            model_name="dkimkey",
            index=models.Index(
                fields=["state", "state_changed_at"], name="domains_dki_state_d45766_idx"
            ),
        ),
    ]
