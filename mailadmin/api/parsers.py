"""The JSON body parser: bounded in size and in nesting, so no body can cost a 500.

DRF reads a JSON body straight from the socket, past Django's DATA_UPLOAD_MAX_MEMORY_SIZE
(which guards only `request.body` and forms), and a body nested a thousand levels deep
makes `json.loads` or anything walking the result raise RecursionError. Both become
problem JSON here: 413 naming the limit, 400 naming the field.
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import APIException, ParseError

# Deeper than any body of our API needs (PATCH operations are 3 levels) and far below
# Python's recursion limit, so serializers, renderers and error flattening stay safe.
MAX_DEPTH = 32
_SURROGATE = re.compile("[\ud800-\udfff]")


class PayloadTooLarge(APIException):
    status_code = 413
    default_code = "payload_too_large"


class BodyError(ParseError):
    """A malformed body, with the field it is about (`body` for the whole of it)."""

    def __init__(self, message: str, field: str = "body") -> None:
        super().__init__(message)
        self.field = field


def body_limit() -> int:
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 2_621_440


def too_large_detail() -> str:
    return f"The request body is larger than the limit of {body_limit()} bytes."


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        limit = body_limit()
        request = (parser_context or {}).get("request")
        declared = _content_length(request)
        if declared is not None and declared > limit:
            raise PayloadTooLarge(too_large_detail())
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise PayloadTooLarge(too_large_detail())
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            raise BodyError(f"Malformed request body: it is not valid {encoding}.") from None
        try:
            data = json.loads(text, parse_constant=_no_constant)
        except RecursionError:
            raise BodyError(
                f"Malformed request body: nested deeper than {MAX_DEPTH} levels."
            ) from None
        except ValueError as exc:
            raise BodyError(f"Malformed request body: {exc}") from None
        check_depth(data)
        return data


def check_depth(data: Any) -> None:
    """Refuse values nested deeper than MAX_DEPTH, naming the top-level field that is, and
    strings no column can hold (see _check_text), naming the key they stand under."""
    stack: list[tuple[Any, int, str, str]] = [(data, 0, "body", "body")]
    while stack:
        value, depth, field, name = stack.pop()
        if depth > MAX_DEPTH:
            raise BodyError(
                f"Invalid value for field {field}: nested deeper than {MAX_DEPTH} levels.", field
            )
        if isinstance(value, str):
            _check_text(value, name)
        elif isinstance(value, dict):
            for key, item in value.items():
                _check_text(key, name)
                top = str(key) if depth == 0 else field
                stack.append((item, depth + 1, top, str(key)))
        elif isinstance(value, list):
            stack.extend((item, depth + 1, field, name) for item in value)


def _check_text(text: str, field: str) -> None:
    """No string of a body may hold NUL or a lone surrogate (`"\\ud800"` is valid JSON):
    neither can be stored (PostgreSQL refuses NUL, UTF-8 a surrogate), and a field that
    no DRF CharField checks (the provisioning API's) answered 500. DRF's own wording."""
    if "\x00" in text:
        raise BodyError(f"Invalid value for field {field}: Null characters are not allowed.", field)
    surrogate = _SURROGATE.search(text)
    if surrogate:
        raise BodyError(
            f"Invalid value for field {field}: Surrogate characters are not allowed: "
            f"U+{ord(surrogate.group()):X}.",
            field,
        )


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _content_length(request) -> int | None:
    if request is None:
        return None
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except (TypeError, ValueError):
        return None
