"""Every app's API routes, mounted under /api/ with the management API's paths."""

from django.urls import include, path

from mailadmin.api.views import ApiRootView
from mailadmin.core.api import TaskRunDetailApi

urlpatterns = [
    path("", ApiRootView.as_view(), name="api-root"),
    path("task/<uuid:run_id>", TaskRunDetailApi.as_view(), name="api-task"),
    path("", include("apps.accounts.principals.api_urls")),
    path("", include("apps.accounts.auth.api_urls")),
    path("", include("apps.telemetry.api_urls")),
    path("", include("apps.domains.api_urls")),
    path("", include("apps.reports.api_urls")),
    path("", include("apps.store.api_urls")),
    path("", include("apps.queue.api_urls")),
    path("", include("apps.spamfilter.api_urls")),
    path("", include("apps.config.api_urls")),
]
