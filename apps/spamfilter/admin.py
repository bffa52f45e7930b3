"""Bayes models kept in the database (no REDIS_URL) and how much each has learned; with
Redis the models live there and this list stays empty."""

from django.contrib import admin

from apps.spamfilter.models import BayesModel
from mailadmin.admin_base import ReadOnlyAdmin


@admin.register(BayesModel)
class BayesModelAdmin(ReadOnlyAdmin):
    list_display = ("scope", "spam_learned", "ham_learned")
    search_fields = ("scope",)
