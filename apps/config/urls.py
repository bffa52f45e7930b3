from django.urls import path

from apps.accounts.permissions import Perm
from mailadmin.core.views import not_built

app_name = "config"

urlpatterns = [
    path(
        "",
        not_built("Settings", "The server settings store.", Perm.SETTINGS_LIST),
        name="index",
    ),
]
