from django.urls import path

from apps.store import views

app_name = "store"

urlpatterns = [
    path("", views.maintenance_page, name="index"),
    path("maintenance/<slug:op>/", views.maintenance_start, name="maintenance-start"),
    path("mailboxes/<id:pk>/", views.mailbox_messages, name="mailbox"),
    path("mailboxes/<id:pk>/purge/", views.mailbox_purge, name="mailbox-purge"),
    path("mailboxes/<id:pk>/uids/", views.mailbox_uids_reset, name="mailbox-uids"),
    path("mailboxes/<id:pk>/deleted/", views.mailbox_deleted, name="mailbox-deleted"),
    path("messages/<id:pk>/", views.message_detail, name="message"),
    path("messages/<id:pk>/raw", views.message_raw, name="message-raw"),
]
