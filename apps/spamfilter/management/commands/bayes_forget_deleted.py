"""Purge the Bayes models of accounts that no longer exist (beat does it daily): after a
delete whose purge found the store down, or models left by deletes before they purged."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from apps.spamfilter import bayes


class Command(BaseCommand):
    help = "Purge the Bayes models of deleted accounts (in Redis or the database)."

    def handle(self, *args, **options) -> None:
        count = bayes.forget_deleted_accounts()
        noun = "model" if count == 1 else "models"
        self.stdout.write(f"Purged {count} Bayes {noun} of deleted accounts.")
