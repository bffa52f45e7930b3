"""DmarcRecord.report loses its own index: the (report, source_ip) index serves every
look-up by report. Only the index is dropped (Django's AlterField would drop and re-add the
foreign key, re-checking every row of a large table)."""

import django.db.models.deletion
from django.db import migrations, models

INDEX = "reports_dmarcrecord_report_id_7840be4a"


class Migration(migrations.Migration):
    dependencies = [
        ("reports", "0005_outgoing_failure_reports"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="dmarcrecord",
                    name="report",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="dmarc_records",
                        to="reports.report",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX IF EXISTS "{INDEX}"',
                    reverse_sql=f'CREATE INDEX "{INDEX}" ON "reports_dmarcrecord" ("report_id")',
                ),
            ],
        ),
    ]
