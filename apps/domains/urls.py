from django.urls import path

from apps.accounts.permissions import Perm
from mailadmin.core.views import not_built

app_name = "domains"

urlpatterns = [
    path(
        "",
        not_built("Domains", "Domains, DKIM keys and DNS verification.", Perm.DOMAIN_LIST),
        name="index",
    ),
]
