from django.contrib import admin
from django.urls import include, path, re_path

from apps.accounts.auth import views as account_views
from apps.domains import client_views
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
    # Mail client autoconfiguration (public; hosted domains only).
    path("mail/config-v1.1.xml", client_views.thunderbird_autoconfig, name="autoconfig"),
    path(
        ".well-known/autoconfig/mail/config-v1.1.xml",
        client_views.thunderbird_autoconfig,
        name="autoconfig-well-known",
    ),
    re_path(
        r"^[Aa]uto[Dd]iscover/[Aa]uto[Dd]iscover\.xml$",  # Outlook capitalises it
        client_views.outlook_autodiscover,
        name="autodiscover",
    ),
]
