"""Mail store API routes (management API paths, under /api/)."""

from django.urls import path

from apps.store import api

urlpatterns = [
    path("store/blobs/<str:blob_id>", api.BlobFetchApi.as_view(), name="api-store-blob"),
    path("store/reindex", api.FtsReindexApi.as_view(), name="api-store-reindex"),
    path("store/purge/account", api.PurgeAllAccountsApi.as_view(), name="api-store-purge-accounts"),
    path(
        "store/purge/account/<str:account_id>",
        api.PurgeAccountApi.as_view(),
        name="api-store-purge-account",
    ),
    path("store/purge/blob", api.PurgeBlobStoreApi.as_view(), name="api-store-purge-blob"),
    path("store/purge/data", api.PurgeDataStoreApi.as_view(), name="api-store-purge-data"),
    path(
        "store/purge/in-memory",
        api.PurgeInMemoryStoreApi.as_view(),
        name="api-store-purge-in-memory",
    ),
    path("store/undelete/<str:account_id>", api.UndeleteApi.as_view(), name="api-store-undelete"),
    path("store/uids/<str:account_id>", api.UidsResetApi.as_view(), name="api-store-uids"),
]
