"""Own-account pages: two-factor authentication, app passwords, API keys (and login step 2)."""

from django.urls import path

from apps.accounts.auth import views as auth_views

app_name = "account"

urlpatterns = [
    path("login/verify/", auth_views.login_verify, name="login-verify"),
    path("security/", auth_views.security, name="security"),
    path("password/", auth_views.password_change_view, name="password-change"),
    path("security/totp/", auth_views.totp_enrol, name="totp-enrol"),
    path("security/totp/disable/", auth_views.totp_disable, name="totp-disable"),
    path("security/recovery-codes/", auth_views.recovery_codes, name="recovery-codes"),
    path("app-passwords/", auth_views.app_passwords, name="app-passwords"),
    path(
        "app-passwords/<id:pk>/revoke/",
        auth_views.app_password_revoke,
        name="app-password-revoke",
    ),
    path("api-keys/", auth_views.api_keys, name="api-keys"),
    path("api-keys/new/", auth_views.api_key_create, name="api-key-create"),
    path("api-keys/<id:pk>/revoke/", auth_views.api_key_revoke, name="api-key-revoke"),
]
