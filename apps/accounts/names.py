"""The one rule for principal names, shared by both rooms (they are login names)."""

from __future__ import annotations

import re

NAME_RE = re.compile(r"^[A-Za-z0-9._@-]{1,255}$")
# The same rule for the OpenAPI schema (with maxLength 255): one non-digit at least.
NAME_PATTERN = r"^[A-Za-z0-9._@-]*[A-Za-z._@-][A-Za-z0-9._@-]*$"


def name_problem(name: object) -> str | None:
    """Why `name` cannot name a principal (a message for a person), or None when it can."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        shown = name if isinstance(name, str) else ""
        return (
            f"The name '{shown[:255]}' is not valid: use letters, digits, '.', '_', '-' and '@' "
            "(at most 255 characters)."
        )
    if name.isdigit():
        return f"The name '{name}' is not valid: it can't be only digits."
    return None
