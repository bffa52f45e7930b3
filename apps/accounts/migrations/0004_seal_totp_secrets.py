"""TOTP secrets are sealed at rest (mailadmin.sealing): widen the column for the sealed
text, then seal every plain secret already stored."""

import mailadmin.sealing
from django.db import migrations


def seal_plain_secrets(apps, schema_editor):
    Principal = apps.get_model("accounts", "Principal")
    mailadmin.sealing.rewrite_stored(Principal, "totp_secret", mailadmin.sealing.seal_if_plain)


def unseal_secrets(apps, schema_editor):
    Principal = apps.get_model("accounts", "Principal")
    mailadmin.sealing.rewrite_stored(Principal, "totp_secret", mailadmin.sealing.unseal)


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0003_verbose_names'),
    ]

    operations = [
        migrations.AlterField(
            model_name='principal',
            name='totp_secret',
            field=mailadmin.sealing.SealedTextField(blank=True, default='', editable=False),
        ),
        migrations.RunPython(seal_plain_secrets, unseal_secrets),
    ]
