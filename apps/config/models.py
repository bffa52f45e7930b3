"""The settings store: key/value rows, plus one generation number that every write bumps so
that each process knows when its cached copy is stale (apps.config.cache)."""

from __future__ import annotations

from django.db import models

MAX_KEY = 255
MAX_VALUE = 4096


class Setting(models.Model):
    """One setting. Keys are dot-separated names (`spam-filter.rule.FROM_NO_DN.score`);
    values are text, checked against the key's rule when one is registered."""

    key = models.CharField(max_length=MAX_KEY, primary_key=True)
    value = models.TextField(max_length=MAX_VALUE)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("key",)

    def __str__(self) -> str:
        return f"{self.key} = {self.value}"


class Generation(models.Model):
    """A single row (id 1): a new random number with every change of the store. A process
    re-reads what it cached only when this number moved, and asks for it at most once per
    MAILADMIN_SETTINGS_REFRESH_SECONDS, so the scan path costs no query per message."""

    value = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"settings generation {self.value}"
