"""Spam filter API routes (management API paths, under /api/)."""

from django.urls import path

from apps.spamfilter import api, quarantine_api

urlpatterns = [
    path("spam-filter/classify", api.ClassifyApi.as_view(), name="api-spam-classify"),
    path("spam-filter/train/spam", api.TrainSpamApi.as_view(), name="api-spam-train-spam"),
    path("spam-filter/train/ham", api.TrainHamApi.as_view(), name="api-spam-train-ham"),
    path(
        "spam-filter/train/spam/<str:account_id>",
        api.TrainSpamAccountApi.as_view(),
        name="api-spam-train-spam-account",
    ),
    path(
        "spam-filter/train/ham/<str:account_id>",
        api.TrainHamAccountApi.as_view(),
        name="api-spam-train-ham-account",
    ),
    path("troubleshoot/dmarc", api.DmarcTroubleshootApi.as_view(), name="api-troubleshoot-dmarc"),
    path("update/spam-filter", api.SpamFilterUpdateApi.as_view(), name="api-spam-update"),
    path(
        "store/purge/in-memory/default/bayes-global",
        api.BayesGlobalPurgeApi.as_view(),
        name="api-bayes-global-purge",
    ),
    path(
        "store/purge/in-memory/default/bayes-account/<str:account_id>",
        api.BayesAccountPurgeApi.as_view(),
        name="api-bayes-account-purge",
    ),
    path(
        "spam-filter/quarantine",
        quarantine_api.QuarantineListApi.as_view(),
        name="api-quarantine-list",
    ),
    path(
        "spam-filter/quarantine/release",
        quarantine_api.QuarantineBulkReleaseApi.as_view(),
        name="api-quarantine-release-many",
    ),
    path(
        "spam-filter/quarantine/delete",
        quarantine_api.QuarantineBulkDeleteApi.as_view(),
        name="api-quarantine-delete-many",
    ),
    path(
        "spam-filter/quarantine/<int:item_id>",
        quarantine_api.QuarantineDetailApi.as_view(),
        name="api-quarantine-detail",
    ),
    path(
        "spam-filter/quarantine/<int:item_id>/release",
        quarantine_api.QuarantineReleaseApi.as_view(),
        name="api-quarantine-release",
    ),
]
