"""Create or refresh PostgreSQL's name-ordered principal search table (RUM): after
installing the `rum` package on a server that was migrated without it. Safe to run again."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from apps.accounts.principals import search_rum


class Command(BaseCommand):
    help = (
        "Create (or bring up to date and refill) the RUM search table of principals, where "
        "PostgreSQL has the rum extension (package postgresql-<major>-rum)."
    )

    def handle(self, *args, **options) -> None:
        if connection.vendor != "postgresql":
            raise CommandError("The RUM search table is PostgreSQL's; this database is not.")
        started = time.monotonic()
        with transaction.atomic():
            done = search_rum.setup(connection)
        if not done:
            raise CommandError(
                "The rum extension is not available (or may not be created by this role): "
                "install postgresql-<major>-rum on the database server; search keeps the "
                "pg_trgm path meanwhile."
            )
        ready = "in use" if search_rum.usable(connection) else "not used: the name column "
        if not search_rum.usable(connection):
            ready += "does not sort by byte (C, POSIX or C.UTF-8 collation)"
        self.stdout.write(
            f"Principal search table ready in {time.monotonic() - started:.1f} s ({ready})."
        )
