"""Joins the two branches that left 0003: the mailbox profile (0004) and the DKIM rotation
(0005), which landed in either order; a database that applied 0005 first still migrates."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("domains", "0004_mailbox_profile"),
        ("domains", "0005_dkim_rotation"),
    ]

    operations = []
