from django.urls import path

from apps.spamfilter import console_views, quarantine_views, rules_views, views

app_name = "spamfilter"

urlpatterns = [
    path("", views.classify, name="index"),
    path("bayes/", console_views.bayes_status, name="bayes"),
    path("bayes/train/", console_views.bayes_train, name="bayes-train"),
    path("bayes/purge/", console_views.bayes_purge_global, name="bayes-purge"),
    path(
        "bayes/purge/<id:account_id>/",
        console_views.bayes_purge_account,
        name="bayes-purge-account",
    ),
    path("dmarc/", console_views.dmarc_troubleshoot, name="dmarc"),
    path(
        "mailboxes/<id:domain_id>/<id:mailbox_id>/",
        console_views.mailbox_spam,
        name="mailbox-spam",
    ),
    path(
        "mailboxes/<id:domain_id>/<id:mailbox_id>/<str:list_name>/add/",
        console_views.mailbox_list_add,
        name="mailbox-list-add",
    ),
    path(
        "mailboxes/<id:domain_id>/<id:mailbox_id>/<str:list_name>/remove/",
        console_views.mailbox_list_remove,
        name="mailbox-list-remove",
    ),
    path(
        "mailboxes/<id:domain_id>/<id:mailbox_id>/settings/",
        console_views.mailbox_spam_settings,
        name="mailbox-spam-settings",
    ),
    path("quarantine/", quarantine_views.quarantine_index, name="quarantine"),
    path("quarantine/bulk/", quarantine_views.quarantine_bulk, name="quarantine-bulk"),
    path("quarantine/<int:pk>/", quarantine_views.quarantine_detail, name="quarantine-detail"),
    path(
        "quarantine/<int:pk>/release/",
        quarantine_views.quarantine_item_release,
        name="quarantine-release",
    ),
    path(
        "quarantine/<int:pk>/delete/",
        quarantine_views.quarantine_item_delete,
        name="quarantine-delete",
    ),
    path("rules/", rules_views.rule_list, name="rules"),
    path("thresholds/<str:name>/", rules_views.threshold_edit, name="threshold-edit"),
    path("rules/<str:tag>/", rules_views.rule_edit, name="rule-edit"),
    path("rules/<str:tag>/reset/", rules_views.rule_reset, name="rule-reset"),
]
