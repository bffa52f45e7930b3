"""Every API error as an RFC 7807 problem body, with human messages that name the field."""

from __future__ import annotations

from typing import Any

import redis.exceptions
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.views import set_rollback

from mailadmin.api.parsers import BodyError
from mailadmin.errors import ServiceError

UNAUTHENTICATED_DETAIL = "You have to authenticate first."
NOT_FOUND_DETAIL = "The requested resource does not exist on this server."
TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    409: "Conflict",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    429: "Too Many Requests",
    500: "Internal Server Error",
}
# What a problem says when nothing more precise is known (errors outside DRF's views).
DEFAULT_DETAILS = {
    400: "The request is malformed.",
    401: UNAUTHENTICATED_DETAIL,
    403: "You are not allowed to do this.",
    404: NOT_FOUND_DETAIL,
    405: "This method is not allowed here.",
    413: "The request body is too large.",
    500: "The server failed to carry out the request; the error has been logged.",
}


def problem(status: int, detail: str, **extra: Any) -> dict[str, Any]:
    body = {"type": "about:blank", "status": status, "title": TITLES.get(status, "Error")}
    body["detail"] = detail
    body.update(extra)
    return body


def problem_response(status: int, detail: str, headers=None, **extra: Any) -> Response:
    return Response(problem(status, detail, **extra), status=status, headers=headers)


def field_errors(detail: Any, prefix: str = "") -> list[dict[str, str]]:
    """Flatten DRF's nested ErrorDetail structure into [{field, message}] with our wording."""
    errors: list[dict[str, str]] = []
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = prefix if key == "non_field_errors" else f"{prefix}{key}"
            if isinstance(value, dict | list):
                nested = field_errors(
                    value, f"{name}." if isinstance(value, dict) and name else name
                )
                errors.extend(nested)
            else:
                errors.append(_one(name, value))
    elif isinstance(detail, list):
        for index, value in enumerate(detail):
            if isinstance(value, dict):
                errors.extend(field_errors(value, f"{prefix}[{index}]."))
            elif isinstance(value, list):
                errors.extend(field_errors(value, f"{prefix}[{index}]"))
            else:
                errors.append(_one(prefix.rstrip("."), value))
    else:
        errors.append(_one(prefix.rstrip("."), detail))
    return errors


def _one(field: str, message: Any) -> dict[str, str]:
    code = getattr(message, "code", None)
    text = str(message)
    if code == "required" and field:
        text = f"Missing required field: {field}"
    elif code in {"unrecognized", "custom"} or not field or text.startswith(field):
        pass
    else:
        text = f"Invalid value for field {field}: {text}"
    return {"field": field, "message": text}


def _one_as_is(field: str, message: Any) -> dict[str, str]:
    return {"field": field, "message": str(message)}


STORE_UNAVAILABLE_DETAIL = "The in-memory store (Redis) is unavailable: try again later."


def problem_exception_handler(exc: Exception, context: dict) -> Response | None:
    headers: dict[str, str] = {}
    if isinstance(exc, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
        # Bayes models, caches and rate counters live there: a passing outage, not a bug.
        set_rollback()
        return problem_response(503, STORE_UNAVAILABLE_DETAIL, headers={"Retry-After": "30"})
    if isinstance(exc, ServiceError):
        set_rollback()
        extra = {"errors": [{"field": exc.field, "message": exc.message}]} if exc.field else {}
        permission = getattr(exc, "permission", None)
        if permission:
            extra["permission"] = permission
        return problem_response(exc.status, exc.message, **extra)
    if isinstance(exc, Http404):
        return problem_response(404, NOT_FOUND_DETAIL)
    if isinstance(exc, DjangoPermissionDenied):
        return problem_response(403, str(exc) or "You are not allowed to do this.")
    if isinstance(exc, drf.NotAuthenticated | drf.AuthenticationFailed):
        auth_header = getattr(exc, "auth_header", None)
        if auth_header:
            headers["WWW-Authenticate"] = auth_header
        detail = UNAUTHENTICATED_DETAIL
        if isinstance(exc, drf.AuthenticationFailed):
            detail = str(exc.detail)
        set_rollback()
        return problem_response(401, detail, headers=headers)
    if isinstance(exc, drf.ValidationError):
        set_rollback()
        errors = field_errors(exc.detail)
        detail = errors[0]["message"] if errors else "Invalid request."
        return problem_response(400, detail, errors=errors)
    if isinstance(exc, BodyError):
        set_rollback()
        return problem_response(400, str(exc.detail), errors=[_one_as_is(exc.field, exc.detail)])
    if isinstance(exc, drf.ParseError):
        detail = f"Malformed request body: {exc.detail}"
        return problem_response(400, detail, errors=[_one_as_is("body", detail)])
    if isinstance(exc, drf.APIException):
        set_rollback()
        if isinstance(exc, drf.Throttled) and exc.wait:
            headers["Retry-After"] = str(int(exc.wait))
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return problem_response(exc.status_code, str(detail), headers=headers)
    return None
