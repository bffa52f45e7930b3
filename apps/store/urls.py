from django.urls import path

from apps.accounts.permissions import Perm
from mailadmin.core.views import not_built

app_name = "store"

urlpatterns = [
    path(
        "",
        not_built("Store", "The mail store: purge, undelete and reindex.", Perm.UNDELETE),
        name="index",
    ),
]
