from django.urls import path

from apps.accounts.permissions import Perm
from mailadmin.core.views import not_built

app_name = "reports"

urlpatterns = [
    path(
        "",
        not_built(
            "Reports",
            "Incoming DMARC, TLS-RPT and ARF reports, with charts.",
            Perm.INCOMING_REPORT_LIST,
        ),
        name="index",
    ),
]
