"""The `<id:...>` path converter: a database id, at most 18 digits.

Django's `<int:...>` matches any number of digits, and a 20-digit id overflows the
database's integer (OverflowError on SQLite: a 500). An id too long to exist is simply a
path that names nothing: 404.
"""

from __future__ import annotations

from django.urls import register_converter


class IdConverter:
    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(IdConverter, "id")


def digits(text: str) -> bool:
    """ASCII digits only. str.isdigit() is true of '²' and '①' too, which int() refuses:
    `x.isdigit() and int(x)` turned `?page=²` or an id of '²' into a 500."""
    return text.isascii() and text.isdigit()


def is_id(text: str) -> bool:
    """Text an id can be (as `<id:...>` matches it): 1 to 18 ASCII digits."""
    return digits(text) and len(text) <= 18
