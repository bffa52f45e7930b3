from django.contrib import admin
from django.urls import include, path

from apps.accounts.auth import views as account_views
from mailadmin.api.views import DocsView, SchemaView
from mailadmin.core import views as core_views

urlpatterns = [
    path("", core_views.dashboard, name="dashboard"),
    path("login/", account_views.login_view, name="login"),
    path("logout/", account_views.logout_view, name="logout"),
    path("tasks/<uuid:run_id>/", core_views.task_status, name="task-status"),
    path("tenant/", core_views.tenant_switch, name="tenant-switch"),
    path("accounts/", include("apps.accounts.principals.urls")),
    path("account/", include("apps.accounts.auth.urls")),
    path("domains/", include("apps.domains.urls")),
    path("queue/", include("apps.queue.urls")),
    path("reports/", include("apps.reports.urls")),
    path("spam-filter/", include("apps.spamfilter.urls")),
    path("telemetry/", include("apps.telemetry.urls")),
    path("store/", include("apps.store.urls")),
    path("settings/", include("apps.config.urls")),
    path("admin/", admin.site.urls),
    path("api/schema/", SchemaView.as_view(), name="api-schema"),
    path("api/docs/", DocsView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/", include("mailadmin.api.urls")),
]
