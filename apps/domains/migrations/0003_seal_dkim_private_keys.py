"""DKIM private keys are sealed at rest (mailadmin.sealing): seal every plain PEM already
stored."""

import mailadmin.sealing
from django.db import migrations


def seal_plain_keys(apps, schema_editor):
    DkimKey = apps.get_model("domains", "DkimKey")
    mailadmin.sealing.rewrite_stored(DkimKey, "private_key", mailadmin.sealing.seal_if_plain)


def unseal_keys(apps, schema_editor):
    DkimKey = apps.get_model("domains", "DkimKey")
    mailadmin.sealing.rewrite_stored(DkimKey, "private_key", mailadmin.sealing.unseal)


class Migration(migrations.Migration):

    dependencies = [
        ('domains', '0002_verbose_names'),
    ]

    operations = [
        migrations.AlterField(
            model_name='dkimkey',
            name='private_key',
            field=mailadmin.sealing.SealedTextField(editable=False, help_text='PEM (PKCS#8), sealed at rest; never shown or returned.'),
        ),
        migrations.RunPython(seal_plain_keys, unseal_keys),
    ]
