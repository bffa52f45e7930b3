"""DRF permission classes that name what an endpoint needs; an endpoint naming nothing is refused.

Every API view declares, for every method it answers, one of:
- a permission of the vocabulary (`require("principal-list")`), or a tuple of them any
  one of which will do (`require(("quarantine-list", "manage-own-quarantine"))`: the
  operation then narrows what it shows to what the one held allows),
- `Authenticated`: any signed-in principal (who-am-I, obtaining an OAuth code),
- `Public`: anyone, signed in or not (the OAuth token endpoint, the schema and its docs).
`Undeclared` is the default permission class (settings.REST_FRAMEWORK): a view or method
that forgets to declare is refused (fail closed), and tests/unit/core/test_permission_walk.py
walks every URL pattern to prove none does.
"""

from __future__ import annotations

from rest_framework.permissions import BasePermission

from mailadmin.errors import PermissionDenied

PUBLIC = "public"
AUTHENTICATED = "authenticated"
UNDECLARED_DETAIL = "This operation declares no permission, so it is refused."


def _signed_in(request) -> bool:
    actor = request.user
    return actor is not None and getattr(actor, "is_authenticated", False)


class Undeclared(BasePermission):
    """The default: nothing declared, nothing allowed (401 when anonymous, else 403)."""

    required: str | None = None
    message = UNDECLARED_DETAIL

    def has_permission(self, request, view) -> bool:
        return False


class Public(BasePermission):
    """Declared open to everyone, signed in or not."""

    required = PUBLIC

    def has_permission(self, request, view) -> bool:
        return True


class Authenticated(BasePermission):
    """Declared open to any signed-in principal, whatever its permissions."""

    required = AUTHENTICATED

    def has_permission(self, request, view) -> bool:
        return _signed_in(request)  # DRF turns False into 401 for anonymous callers


def require(permission: str | tuple[str, ...]) -> type[BasePermission]:
    """`permission_classes = [require("principal-list")]`; a missing one is a 403 naming it.
    A tuple: any one of them (403 naming the first when none is held)."""
    if isinstance(permission, tuple):
        return _require_any(permission)
    if permission == PUBLIC:
        return Public
    if permission == AUTHENTICATED:
        return Authenticated

    class HasPermission(BasePermission):
        required = permission

        def has_permission(self, request, view) -> bool:
            if not _signed_in(request):
                return False  # DRF turns this into 401 for anonymous callers
            if not request.user.has_permission(permission):
                raise PermissionDenied(permission)
            return True

    HasPermission.__name__ = f"Has_{permission.replace('-', '_')}"
    return HasPermission


def _require_any(permissions: tuple[str, ...]) -> type[BasePermission]:
    if not permissions or PUBLIC in permissions or AUTHENTICATED in permissions:
        raise ValueError("require() takes a tuple of vocabulary permissions")

    class HasAnyPermission(BasePermission):
        required = permissions

        def has_permission(self, request, view) -> bool:
            if not _signed_in(request):
                return False
            if not any(request.user.has_permission(p) for p in permissions):
                raise PermissionDenied(permissions[0])
            return True

    HasAnyPermission.__name__ = "Has_" + "_or_".join(p.replace("-", "_") for p in permissions)
    return HasAnyPermission
