from django.urls import path

from apps.domains import mailbox_views, views

app_name = "domains"

urlpatterns = [
    path("", views.domain_list, name="index"),
    path("check-all/", views.domain_dns_check_all, name="dns-check-all"),
    path("<id:pk>/", views.domain_detail, name="detail"),
    path("<id:pk>/dns-check/", views.domain_dns_check, name="dns-check"),
    path("<id:pk>/dkim/", views.domain_dkim_create, name="dkim-create"),
    path("new/", views.domain_create, name="create"),
    path("<id:pk>/records/", views.domain_dns_records, name="records"),
    path("<id:pk>/dkim/<id:key_id>/rotate/", views.domain_dkim_rotate, name="dkim-rotate"),
    path("<id:pk>/dkim/<id:key_id>/retire/", views.domain_dkim_retire, name="dkim-retire"),
    path("<id:pk>/mailboxes/", mailbox_views.mailbox_list, name="mailboxes"),
    path("<id:pk>/mailboxes/new/", mailbox_views.mailbox_create, name="mailbox-create"),
    path("<id:pk>/mailboxes.csv", mailbox_views.mailbox_export, name="mailbox-export"),
    path("<id:pk>/mailboxes/import/", mailbox_views.mailbox_import, name="mailbox-import"),
    path("<id:pk>/mailboxes/<id:mailbox_id>/", mailbox_views.mailbox_edit, name="mailbox-edit"),
    path(
        "<id:pk>/mailboxes/<id:mailbox_id>/delete/",
        mailbox_views.mailbox_delete,
        name="mailbox-delete",
    ),
    path("<id:pk>/aliases/", mailbox_views.domain_alias_create, name="alias-create"),
    path(
        "<id:pk>/aliases/<id:alias_id>/delete/",
        mailbox_views.domain_alias_delete,
        name="alias-delete",
    ),
    path("<id:pk>/catch-all/", mailbox_views.domain_catch_all, name="catch-all"),
]
