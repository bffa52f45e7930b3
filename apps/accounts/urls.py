from django.urls import path

from apps.accounts.permissions import Perm
from mailadmin.core.views import not_built

app_name = "accounts"

urlpatterns = [
    path(
        "",
        not_built(
            "Accounts",
            "Accounts, groups, mailing lists, roles, tenants and API keys.",
            Perm.PRINCIPAL_LIST,
        ),
        name="index",
    ),
]
