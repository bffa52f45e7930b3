"""Move every sealed secret to the first key of MAILADMIN_SECRETS_KEY.

Rotation, with the service running:
  1. `manage.py rotate_secrets_key --generate` prints a new key.
  2. Set MAILADMIN_SECRETS_KEY=<new>,<old> for every process and restart them: new
     secrets are sealed under the new key, old ones still open.
  3. `manage.py rotate_secrets_key` re-seals every stored secret under <new> and checks
     that none still needs <old>.
  4. Remove <old> from MAILADMIN_SECRETS_KEY.
"""

from __future__ import annotations

from cryptography.fernet import Fernet
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from mailadmin import sealing
from mailadmin.audit import audit


class Command(BaseCommand):
    help = (
        "Re-seal every stored secret (DKIM private keys, TOTP secrets) under the first key "
        "of MAILADMIN_SECRETS_KEY, so the other keys can be removed."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--generate",
            action="store_true",
            help="Print a new key to put first in MAILADMIN_SECRETS_KEY, and change nothing.",
        )
        parser.add_argument(
            "--check",
            action="store_true",
            help="Only count the secrets the first key cannot open; exit 1 if there are any.",
        )
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args, generate: bool, check: bool, batch_size: int, **options) -> None:
        if generate:
            self.stdout.write(Fernet.generate_key().decode("ascii"))
            return
        if not check:
            self._rotate(batch_size)
        self._check(batch_size)

    def _rotate(self, batch_size: int) -> None:
        keys = len(settings.MAILADMIN_SECRETS_KEYS)
        self.stdout.write(f"Re-sealing under key 1 of {keys} in MAILADMIN_SECRETS_KEY.")
        counts: dict[str, int] = {}
        unreadable: dict[str, list] = {}
        for model, field_name in sealing.sealed_fields():
            result = sealing.rewrite_stored(
                model, field_name, sealing.reseal, batch_size=batch_size
            )
            counts[result.label] = result.rewritten
            line = f"{result.label}: {result.rewritten} re-sealed"
            if result.changed_meanwhile:
                line += f", {result.changed_meanwhile} changed meanwhile (sealed afresh)"
            if result.unreadable:
                unreadable[result.label] = result.unreadable
                line += f", {len(result.unreadable)} unreadable"
            self.stdout.write(line)
        audit(
            actor=None,
            action="secrets.rotate",
            object_type="secrets",
            object_repr="MAILADMIN_SECRETS_KEY",
            changes={"resealed": counts, "keys": keys},
        )
        if unreadable:
            shown = "; ".join(f"{label} ids {ids[:20]}" for label, ids in unreadable.items())
            raise CommandError(
                f"No key in MAILADMIN_SECRETS_KEY opens these rows: {shown}. "
                "Add the key they were sealed with and run this again."
            )

    def _check(self, batch_size: int) -> None:
        pending = 0
        for model, field_name in sealing.sealed_fields():
            for batch in sealing.stored_values(model, field_name, batch_size=batch_size):
                pending += sum(
                    not sealing.is_sealed_under_current_key(stored) for _, stored in batch
                )
        if pending:
            raise CommandError(
                f"{pending} stored secret(s) still need an older key: run "
                "`manage.py rotate_secrets_key` before removing it."
            )
        self.stdout.write(
            self.style.SUCCESS(
                "Every stored secret opens with the first key; the other keys are no longer needed."
            )
        )
