from django.urls import path

from apps.accounts.permissions import Perm
from apps.store import views
from mailadmin.core.views import not_built

app_name = "store"

urlpatterns = [
    path(
        "",
        not_built("Store", "The mail store: purge, undelete and reindex.", Perm.UNDELETE),
        name="index",
    ),
    path("mailboxes/<id:pk>/", views.mailbox_messages, name="mailbox"),
    path("messages/<id:pk>/", views.message_detail, name="message"),
    path("messages/<id:pk>/raw", views.message_raw, name="message-raw"),
]
