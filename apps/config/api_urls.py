"""Settings store API routes (management API paths, under /api/)."""

from django.urls import path

from apps.config import api, webadmin

urlpatterns = [
    path("settings", api.SettingsUpdateApi.as_view(), name="api-settings-update"),
    path("settings/keys", api.SettingsKeysApi.as_view(), name="api-settings-keys"),
    path("settings/group", api.SettingsGroupApi.as_view(), name="api-settings-group"),
    path("settings/list", api.SettingsListApi.as_view(), name="api-settings-list"),
    path("reload/", api.SettingsReloadApi.as_view(), name="api-settings-reload"),
]

# Update WebAdmin: the console ships with the product (apps.config.webadmin).
urlpatterns.append(
    path("update/webadmin", webadmin.WebadminUpdateApi.as_view(), name="api-webadmin-update")
)
