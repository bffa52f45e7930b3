"""DKIM and DNS record API routes (management API paths)."""

from django.urls import path

from apps.domains.api import DkimCollectionApi, DkimDetailApi, DnsRecordsApi

urlpatterns = [
    path("dkim", DkimCollectionApi.as_view(), name="api-dkim-list"),
    path("dkim/<id:key_id>", DkimDetailApi.as_view(), name="api-dkim"),
    path("dns/records/<str:domain>", DnsRecordsApi.as_view(), name="api-dns-records"),
]
