"""Bayes models kept in the database when there is no Redis (apps.spamfilter.bayes)."""

from __future__ import annotations

from django.db import models


class BayesModel(models.Model):
    """How many spam and ham messages one model (global, or an account's) has learned."""

    scope = models.CharField(max_length=64, unique=True)  # "global" or "account:<id>"
    spam_learned = models.PositiveIntegerField(default=0)
    ham_learned = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.scope}: {self.spam_learned} spam, {self.ham_learned} ham"


class BayesToken(models.Model):
    """One token's counts in one model; the token is a 64-bit hash of its text."""

    scope = models.CharField(max_length=64)
    token = models.BigIntegerField()
    spam = models.PositiveIntegerField(default=0)
    ham = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["scope", "token"], name="spamfilter_token_per_scope")
        ]

    def __str__(self) -> str:
        return f"{self.scope} {self.token}: {self.spam}/{self.ham}"
