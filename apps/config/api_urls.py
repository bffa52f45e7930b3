"""Settings store API routes (management API paths, under /api/)."""

from django.urls import path

from apps.config import api

urlpatterns = [
    path("settings", api.SettingsUpdateApi.as_view(), name="api-settings-update"),
    path("settings/keys", api.SettingsKeysApi.as_view(), name="api-settings-keys"),
    path("settings/group", api.SettingsGroupApi.as_view(), name="api-settings-group"),
    path("settings/list", api.SettingsListApi.as_view(), name="api-settings-list"),
    path("reload/", api.SettingsReloadApi.as_view(), name="api-settings-reload"),
]
