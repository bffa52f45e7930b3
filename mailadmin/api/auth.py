"""API authentication: bearer tokens (API keys, OAuth tokens), HTTP Basic, browser sessions."""

from __future__ import annotations

import base64
import binascii

from django.contrib.auth import authenticate
from rest_framework import authentication, exceptions

from apps.accounts.auth import tokens


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() != "bearer":
            return None
        credentials = credentials.strip()
        if not credentials:
            raise exceptions.AuthenticationFailed("The bearer token is missing.")
        principal = tokens.principal_for_token(credentials)
        if principal is None:
            raise exceptions.AuthenticationFailed("The bearer token is invalid or has expired.")
        return principal, credentials

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="mailadmin"'


class BasicAuthentication(authentication.BaseAuthentication):
    """HTTP Basic with the account's password or one of its app passwords."""

    def authenticate(self, request):
        header = authentication.get_authorization_header(request)
        scheme, _, credentials = header.partition(b" ")
        if scheme.lower() != b"basic":
            return None
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise exceptions.AuthenticationFailed("Malformed Basic credentials.") from None
        username, sep, password = decoded.partition(":")
        if not sep:
            raise exceptions.AuthenticationFailed("Malformed Basic credentials.")
        principal = authenticate(request._request, username=username, password=password, api=True)
        if principal is None:
            raise exceptions.AuthenticationFailed("Invalid username or password.")
        return principal, None

    def authenticate_header(self, request) -> str:
        return 'Basic realm="mailadmin"'


CROSS_SITE_SESSION = (
    "The console's session is not accepted on a request another site started "
    "(Sec-Fetch-Site: {site}): call the API with an API key, or open the address yourself."
)


class SessionAuthentication(authentication.SessionAuthentication):
    """The browser session of the HTML console, with CSRF enforced on unsafe methods, and
    refused on any request another site started: the spec makes some actions GETs (purge
    a Bayes model or the store's data, reload the rules), which CSRF does not guard and
    which a Lax session cookie accompanies when another site links to them. Browsers say
    who started a request in Sec-Fetch-Site: `same-origin` (the console) and `none` (an
    address typed or bookmarked) pass."""

    def authenticate(self, request):
        found = super().authenticate(request)
        site = request.META.get("HTTP_SEC_FETCH_SITE", "").strip().lower()
        if found is not None and site in ("cross-site", "same-site"):
            raise exceptions.PermissionDenied(CROSS_SITE_SESSION.format(site=site))
        return found
