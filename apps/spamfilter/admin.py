"""Bayes models kept in the database (no REDIS_URL) and how much each has learned; with
Redis the models live there and this list stays empty."""

from django.contrib import admin

from apps.spamfilter.models import BayesModel, QuarantinedMessage
from mailadmin.admin_base import ReadOnlyAdmin


@admin.register(BayesModel)
class BayesModelAdmin(ReadOnlyAdmin):
    list_display = ("scope", "spam_learned", "ham_learned")
    search_fields = ("scope",)


@admin.register(QuarantinedMessage)
class QuarantinedMessageAdmin(ReadOnlyAdmin):
    """Read only: releasing and deleting go through the console or the API (audited)."""

    list_display = ("received_at", "recipient", "kind", "sender", "subject", "score")
    list_filter = ("kind",)
    search_fields = ("recipient", "owner", "sender", "subject")
    raw_id_fields = ("tenant", "mailbox")
