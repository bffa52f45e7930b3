"""Errors raised by services; the API maps them to problem JSON, HTML views to messages."""

from __future__ import annotations


class ServiceError(Exception):
    """A request that cannot be carried out, with a message meant for a person."""

    status = 400
    title = "Bad Request"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class ValidationFailed(ServiceError):
    pass


class NotFound(ServiceError):
    status = 404
    title = "Not Found"

    def __init__(
        self, message: str = "The requested resource does not exist on this server."
    ) -> None:
        super().__init__(message)


class PermissionDenied(ServiceError):
    status = 403
    title = "Forbidden"

    def __init__(self, permission: str) -> None:
        super().__init__(f"You do not have the permission '{permission}' needed for this.")
        self.permission = permission


class Conflict(ServiceError):
    status = 409
    title = "Conflict"


class LimitExceeded(ServiceError):
    status = 400
    title = "Bad Request"
