"""An index for each of the quarantine list's filters (quarantine.quarantine_list): a
filtered list and its count read the matching items, not every item of the tenant.

- mailbox: recipient, owner, and the account (the existing (mailbox, received_at) index);
- domain; kind (per tenant, as every list but the superadmin's is);
- sender, a substring of the envelope sender or the From address (`icontains`, which
  compares UPPER(...)): PostgreSQL pg_trgm GIN indexes, which the model state does not
  know (not portable), hence RunPython; SQLite scans.
"""

from django.db import migrations, models

PG_FORWARD = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX IF NOT EXISTS spam_quar_sender_trgm "
    "ON spamfilter_quarantinedmessage USING gin (UPPER(sender) gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS spam_quar_from_trgm "
    "ON spamfilter_quarantinedmessage USING gin (UPPER(from_address) gin_trgm_ops)",
]
PG_BACKWARD = [
    "DROP INDEX IF EXISTS spam_quar_sender_trgm",
    "DROP INDEX IF EXISTS spam_quar_from_trgm",
]


def _run(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        with schema_editor.connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [("spamfilter", "0005_sender_list_ipv4_mapped")]

    operations = [
        migrations.AddIndex(
            model_name="quarantinedmessage",
            index=models.Index(fields=["recipient", "-received_at"], name="spam_quar_recipient_idx"),
        ),
        migrations.AddIndex(
            model_name="quarantinedmessage",
            index=models.Index(fields=["owner", "-received_at"], name="spam_quar_owner_idx"),
        ),
        migrations.AddIndex(
            model_name="quarantinedmessage",
            index=models.Index(fields=["domain", "-received_at"], name="spam_quar_domain_idx"),
        ),
        migrations.AddIndex(
            model_name="quarantinedmessage",
            index=models.Index(fields=["tenant", "kind", "-received_at"], name="spam_quar_kind_idx"),
        ),
        migrations.RunPython(_run(PG_FORWARD), _run(PG_BACKWARD)),
    ]
