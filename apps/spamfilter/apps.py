from django.apps import AppConfig


class SpamfilterConfig(AppConfig):
    name = "apps.spamfilter"
    label = "spamfilter"
