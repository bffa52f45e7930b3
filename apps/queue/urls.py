from django.urls import path

from apps.accounts.permissions import Perm
from mailadmin.core.views import not_built

app_name = "queue"

urlpatterns = [
    path(
        "",
        not_built(
            "Queue", "The outbound queue: delivery, retries and DSNs.", Perm.MESSAGE_QUEUE_LIST
        ),
        name="index",
    ),
]
