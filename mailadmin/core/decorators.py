"""HTML views declare the permission they need, like API views do.

Every page is either `@permission_required(...)` or `@public` (login, logout); the URL walk
in tests/unit/core/test_permission_walk.py fails on a page that declares neither.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from mailadmin.api.permissions import PUBLIC

View = Callable[..., HttpResponse]


def permission_required(*permissions: str) -> Callable[[View], View]:
    """The signed-in principal must hold every one of `permissions` (403 naming the first
    missing one); anonymous visitors are sent to the login page."""
    if not permissions:
        raise TypeError("permission_required() needs at least one permission")

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            for permission in permissions:
                if not request.user.has_permission(permission):
                    raise PermissionDenied(
                        f"You do not have the permission '{permission}' needed for this page."
                    )
            return view(request, *args, **kwargs)

        wrapper.required_permissions = permissions  # type: ignore[attr-defined]
        wrapper.required_permission = permissions[0]  # type: ignore[attr-defined]
        return wrapper

    return decorator


def public(view: View) -> View:
    """Declares a page open to everyone, signed in or not (it checks what it needs itself)."""
    view.required_permissions = (PUBLIC,)  # type: ignore[attr-defined]
    view.required_permission = PUBLIC  # type: ignore[attr-defined]
    return view


def any_permission_required(*permissions: str) -> Callable[[View], View]:
    """The signed-in principal must hold at least one of `permissions` (403 naming the
    first when it holds none): for a page that shows each principal what the permission
    it holds allows (the whole tenant's quarantine, or only its own mailbox's)."""
    if not permissions:
        raise TypeError("any_permission_required() needs at least one permission")

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not any(request.user.has_permission(p) for p in permissions):
                raise PermissionDenied(
                    f"You do not have the permission '{permissions[0]}' needed for this page."
                )
            return view(request, *args, **kwargs)

        # Declared like permission_required's (the URL walk checks each is a real one).
        wrapper.required_permissions = permissions  # type: ignore[attr-defined]
        wrapper.required_permission = permissions[0]  # type: ignore[attr-defined]
        wrapper.any_of = True  # type: ignore[attr-defined]
        return wrapper

    return decorator


def form_body_limit(limit: int) -> Callable[[View], View]:
    """Let a form page take a body of up to `limit` bytes, past Django's
    DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB): a pasted message of up to 10 MB (the classify
    tester's, the DMARC troubleshooter's) would otherwise get a bare 400 before the form
    can say anything; a multipart form's text over Django's limit is flagged for the page
    to refuse beside its field. Only for principals holding the page's permissions (see
    mailadmin.core.middleware.FormBodyLimitMiddleware); put it above permission_required."""

    def decorator(view: View) -> View:
        view.form_body_limit = limit  # type: ignore[attr-defined]
        return view

    return decorator
