"""Mail store API routes (management API paths, under /api/)."""

from django.urls import path

from apps.store import api

urlpatterns = [
    path("store/blobs/<str:blob_id>", api.BlobFetchApi.as_view(), name="api-store-blob"),
]
