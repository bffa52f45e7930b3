"""Input serializers every app's API uses: unknown fields and loose types are errors.

The problem handler (mailadmin.api.exceptions) turns the errors raised here into
`Unrecognized field: <name>` and `Invalid value for field <name>: ...`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, time
from typing import Any

from django.utils.dateparse import parse_date, parse_datetime
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail, ValidationError

from mailadmin.errors import ValidationFailed


def unrecognized(name: str) -> ValidationError:
    return ValidationError(
        {name: [ErrorDetail(f"Unrecognized field: {name}", code="unrecognized")]}
    )


def custom_error(name: str, message: str) -> ValidationError:
    """An error whose message is shown as written (the handler adds no prefix)."""
    return ValidationError({name: [ErrorDetail(message, code="custom")]})


class StrictSerializer(serializers.Serializer):
    """Rejects fields it does not declare instead of silently dropping them."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            for name in data:
                field = self.fields.get(name)
                if field is None or field.read_only:
                    raise unrecognized(str(name))
        return super().to_internal_value(data)


class QueryParams(StrictSerializer):
    """A list's query string: undeclared parameters are errors, except the ones every
    operation shares: `format` (chosen by content negotiation) and the paging parameters
    (checked by mailadmin.api.pagination.PageParams). An empty value (`?action=`, as a
    form sends an empty filter) is no filter."""

    shared = frozenset({"format", "page", "limit", "max-total", "cursor"})

    def to_internal_value(self, data: Any) -> Any:
        return super().to_internal_value(
            {k: v for k, v in data.items() if k not in self.shared and v != ""}
        )


class StrictCharField(serializers.CharField):
    """A JSON string: numbers and booleans are not silently turned into text."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    """A JSON number without a fraction: "5", true and 5.5 are refused."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        if isinstance(data, float) and not data.is_integer():
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """A JSON boolean: 0, "yes" and the like are refused, not guessed."""

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


def date_time_param(value: str | None, field: str, *, end: bool = False) -> datetime | None:
    """A query parameter holding an ISO date-time, or a day (its first instant, or its
    last with `end`), in UTC; anything else is a 400 naming the field."""
    if value is None:
        return None
    text = value.strip()
    try:
        moment = parse_datetime(text)
        if moment is None:
            day = parse_date(text)
            moment = (
                datetime.combine(day, time.max if end else time.min, tzinfo=UTC) if day else None
            )
        # In UTC: PostgreSQL refuses offsets past 15:59 that Python accepts (+18:56).
        elif moment.tzinfo:
            moment = moment.astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: year 1 east of UTC
        moment = None
    if moment is None:
        raise ValidationFailed(
            f"Invalid value for field {field}: '{text[:64]}' is not a date or date-time.",
            field=field,
        )
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
