"""What every part of authentication shares: input bounds, how an actor authenticated,
and the actor checks."""

from __future__ import annotations

from enum import StrEnum

from apps.accounts.models import (
    Principal,
    PrincipalType,
)
from mailadmin.errors import PermissionDenied, ServiceError

MAX_IDENTIFIER = 320
MAX_PASSWORD = 1024


class AuthMethod(StrEnum):
    """How a request proved who it is (`Principal.authenticated_by`)."""

    SESSION = "session"  # the console: password, then the second factor when enabled
    PASSWORD = "password"  # noqa: S105 - HTTP Basic with the account password (2FA off)
    APP_PASSWORD = "app-password"  # noqa: S105 - HTTP Basic (later SMTP/IMAP AUTH)
    API_KEY = "api-key"  # Bearer: an API key's secret
    OAUTH = "oauth"  # Bearer: an OAuth token asked for with the main password
    OAUTH_LIMITED = "oauth-limited"  # Bearer: an OAuth token asked for with an app password


# Methods that may change credentials and security settings (None: a service called from
# inside, by a task or a command, not over an interface).
CREDENTIAL_METHODS = frozenset({AuthMethod.SESSION, AuthMethod.PASSWORD, AuthMethod.OAUTH, None})

CREDENTIALS_REFUSED = {
    AuthMethod.APP_PASSWORD: (
        "App passwords are for mail clients: they cannot change passwords, two-factor "
        "authentication, app passwords, API keys or encryption settings. Sign in with "
        "your account password (and second factor) to do this."
    ),
    AuthMethod.API_KEY: (
        "An API key cannot change passwords, two-factor authentication, app passwords, "
        "API keys or encryption settings. Sign in with your account password (and second "
        "factor) to do this."
    ),
    AuthMethod.OAUTH_LIMITED: (
        "This token was obtained with an app password, so it cannot change passwords, "
        "two-factor authentication, app passwords, API keys or encryption settings. Sign "
        "in with your account password (and second factor) to do this."
    ),
}


class CredentialsNeedMainLogin(ServiceError):
    """403: the actor authenticated with something less than its main password."""

    status = 403
    title = "Forbidden"


def _require(actor: Principal, permission: str) -> None:
    if not actor.has_permission(permission):
        raise PermissionDenied(permission)


def _require_account(actor: Principal) -> None:
    if actor.type != PrincipalType.INDIVIDUAL:
        raise ServiceError(
            "Only accounts have passwords, app passwords and two-factor authentication."
        )


def require_main_login(actor: Principal) -> None:
    """Changing credentials or security settings needs the main password (and the second
    factor when it is on): an app password, an API key or a token obtained with an app
    password may not, so a leaked mail-client password cannot take the account over."""
    method = actor.authenticated_by
    if method not in CREDENTIAL_METHODS:
        raise CredentialsNeedMainLogin(
            CREDENTIALS_REFUSED.get(method, CREDENTIALS_REFUSED[AuthMethod.APP_PASSWORD])
        )


def require_main_login_to_set_secret(actor: Principal, principal: Principal) -> None:
    """Setting a principal's password: one's own (or, for an API key, its owner's) needs
    the main login; an app password, or a token obtained with one, sets nobody's (a
    leaked mail-client password must not reset an administrator's colleague and log in
    as them). An API key may set other accounts' passwords, as provisioning scripts do."""
    owner_id = actor.created_by_id if actor.type == PrincipalType.API_KEY else None
    mail_client = actor.authenticated_by in (AuthMethod.APP_PASSWORD, AuthMethod.OAUTH_LIMITED)
    if principal.pk in (actor.pk, owner_id) or mail_client:
        require_main_login(actor)
