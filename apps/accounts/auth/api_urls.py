"""Authentication API routes: /api/oauth, /api/account/auth, /api/account/crypto, API keys."""

from django.urls import path

from apps.accounts.auth import api as auth_api

urlpatterns = [
    path("oauth", auth_api.OAuthCodeApi.as_view(), name="api-oauth"),
    path("oauth/token", auth_api.OAuthTokenApi.as_view(), name="api-oauth-token"),
    path("account/auth", auth_api.AccountAuthApi.as_view(), name="api-account-auth"),
    path("account/crypto", auth_api.AccountCryptoApi.as_view(), name="api-account-crypto"),
    path("account/api-keys", auth_api.ApiKeyListCreateApi.as_view(), name="api-api-keys"),
    path(
        "account/api-keys/<str:key_id>",
        auth_api.ApiKeyDetailApi.as_view(),
        name="api-api-key",
    ),
]
