from django.urls import path

from apps.accounts.permissions import Perm
from mailadmin.core.views import not_built

app_name = "spamfilter"

urlpatterns = [
    path(
        "",
        not_built(
            "Spam filter",
            "Rules, SPF/DKIM/DMARC checks, Bayes, block/safe lists and quarantine.",
            Perm.SPAM_FILTER_CLASSIFY,
        ),
        name="index",
    ),
]
