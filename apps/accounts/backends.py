"""Password login for principals that may log in (accounts), by name or e-mail address."""

from __future__ import annotations

from django.contrib.auth.backends import BaseBackend

from apps.accounts.models import LOGIN_TYPES, Principal


class PrincipalBackend(BaseBackend):
    def authenticate(
        self, request, username: str | None = None, password: str | None = None, **kwargs
    ) -> Principal | None:
        if not username or password is None or len(username) > 255:
            return None
        principal = Principal.objects.filter(name=username, type__in=LOGIN_TYPES).first()
        if principal is None:
            Principal().set_password(password)  # same work as a real check: no timing oracle
            return None
        if principal.is_active and principal.check_password(password):
            return principal
        return None

    def get_user(self, user_id: int) -> Principal | None:
        principal = Principal.objects.filter(pk=user_id, is_active=True).first()
        return principal
