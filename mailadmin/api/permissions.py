"""A DRF permission class that names the permission an endpoint needs."""

from __future__ import annotations

from rest_framework.permissions import BasePermission

from mailadmin.errors import PermissionDenied


def require(permission: str) -> type[BasePermission]:
    """`permission_classes = [require("principal-list")]`; a missing one is a 403 naming it."""

    class HasPermission(BasePermission):
        required = permission

        def has_permission(self, request, view) -> bool:
            actor = request.user
            if actor is None or not getattr(actor, "is_authenticated", False):
                return False  # DRF turns this into 401 for anonymous callers
            if not actor.has_permission(permission):
                raise PermissionDenied(permission)
            return True

    HasPermission.__name__ = f"Has_{permission.replace('-', '_')}"
    return HasPermission
