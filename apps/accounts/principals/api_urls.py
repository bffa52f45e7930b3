"""Principal API routes (management API: /api/principal...) and the audit log."""

from django.urls import path

from apps.accounts.principals.api import AuditListApi, PrincipalCollectionApi, PrincipalDetailApi

urlpatterns = [
    path("principal", PrincipalCollectionApi.as_view(), name="api-principal-list"),
    path("principal/<str:id_or_name>", PrincipalDetailApi.as_view(), name="api-principal"),
    path("audit", AuditListApi.as_view(), name="api-audit"),
]
