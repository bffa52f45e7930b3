"""Password login for principals that may log in (accounts), by name or e-mail address.

All checks (lockout, imported hashes, app passwords) live in
`login.authenticate_password`; this backend adapts it to Django's `authenticate()`:

- `api=True` (HTTP Basic, from mailadmin.api.auth): the account password or an app
  password; a lockout is raised as DRF's Throttled (429 with Retry-After and the message).
  A login that succeeded is remembered for a short while (remembered.py), so a client
  repeating its credentials does not pay a password hash per request.
- otherwise (e.g. the Django admin's login form): the account password only, and never
  for an account with two-factor authentication, which must log in through /login/.
"""

from __future__ import annotations

from django.contrib.auth.backends import BaseBackend
from django.core.exceptions import PermissionDenied

from apps.accounts.auth import login
from apps.accounts.auth.common import AuthMethod
from apps.accounts.models import Principal
from mailadmin.audit import client_ip


class PrincipalBackend(BaseBackend):
    def authenticate(
        self,
        request,
        username: str | None = None,
        password: str | None = None,
        api: bool = False,
        **kwargs,
    ) -> Principal | None:
        if not username or password is None:
            return None
        ip = client_ip(request) if request is not None else None
        try:
            principal = login.authenticate_password(
                identifier=username, password=password, ip=ip, app_passwords=api
            )
        except login.InvalidCredentials:
            return None
        except login.LoginLocked as exc:
            if api:
                from rest_framework.exceptions import Throttled

                throttled = Throttled(detail=exc.message)
                throttled.wait = exc.retry_after
                raise throttled from None
            raise PermissionDenied(exc.message) from None
        if not api and principal.otp_enabled:
            return None  # a password alone does not log a 2FA account in
        if api:
            login.login_cleared(principal=principal, ip=ip)
        return principal

    def get_user(self, user_id: int) -> Principal | None:
        """The principal of a console session, which logged in with password (+ code)."""
        principal = Principal.objects.filter(pk=user_id, is_active=True).first()
        if principal is not None:
            principal.authenticated_by = AuthMethod.SESSION
        return principal
