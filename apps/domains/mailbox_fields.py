"""The provisioning API's mailbox fields (mailbox-provisioning-api.txt): their names, types
and the exact messages refusing them. The API and the CSV import both parse through here,
so a file and a request are refused with the same words.

Parsing turns the spec's field names into MailboxProfile attribute names with typed values;
the rules that need the database (name taken, tenant quota) live in mailbox_services.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mailadmin.converters import digits
from mailadmin.errors import ValidationFailed

STRING, INTEGER, BOOLEAN = "string", "integer", "boolean"


@dataclass(frozen=True)
class Field:
    api: str  # the spec's name
    attr: str  # MailboxProfile attribute (or password / size / enabled)
    kind: str
    max_length: int = 0


FIELDS: tuple[Field, ...] = (
    Field("displayName", "display_name", STRING, 256),
    Field("password", "password", STRING, 1024),
    Field("size", "size", INTEGER),
    Field("isHidden", "is_hidden", BOOLEAN),
    Field("isPublicFolderAdmin", "is_public_folder_admin", BOOLEAN),
    Field("firstName", "first_name", STRING, 64),
    Field("lastName", "last_name", STRING, 64),
    Field("company", "company", STRING, 128),
    Field("department", "department", STRING, 128),
    Field("jobTitle", "job_title", STRING, 128),
    Field("addressLine1", "address_line1", STRING, 256),
    Field("city", "city", STRING, 128),
    Field("state", "state", STRING, 128),
    Field("zip", "zip", STRING, 32),
    Field("country", "country", STRING, 128),
    Field("businessnumber", "business_number", STRING, 32),
    Field("pagernumber", "pager_number", STRING, 32),
    Field("homenumber", "home_number", STRING, 32),
    Field("mobilenumber", "mobile_number", STRING, 32),
    Field("faxnumber", "fax_number", STRING, 32),
    Field("notes", "notes", STRING, 4096),
    Field("emailForwardingAddress", "forwarding_address", STRING, 320),
    Field("enabled", "enabled", BOOLEAN),
)
BY_API = {f.api: f for f in FIELDS}
BY_ATTR = {f.attr: f for f in FIELDS}
REQUIRED_ON_ADD = ("displayName", "password", "size")
# Attributes stored on MailboxProfile (the others live on the principal).
PROFILE_ATTRS = tuple(f.attr for f in FIELDS if f.attr not in {"password", "size", "enabled"})
# The largest size in MB whose bytes still fit Principal.quota.
MAX_SIZE_MB = (2**63 - 1) // 1024**2

TRUE_WORDS, FALSE_WORDS = {"true"}, {"false"}


def parse(raw: Mapping[str, Any], *, creating: bool) -> dict[str, Any]:
    """Typed values by attribute name from the spec's fields (strings from a form or a CSV
    file, or JSON values). Refuses with the spec's messages, in the spec's order: an
    unknown field, a missing or empty required one, then each value's format."""
    for name in raw:
        if name not in BY_API:
            raise ValidationFailed(f"Unrecognized field: {name}", field=str(name))
    if creating:
        for name in REQUIRED_ON_ADD:
            if name not in raw:
                raise ValidationFailed(f"Missing required field: {name}", field=name)
    for name in REQUIRED_ON_ADD:
        if name in raw and _blank(raw[name]):
            raise ValidationFailed(f"Required field {name} cannot be empty", field=name)
    values: dict[str, Any] = {}
    for name, value in raw.items():
        field = BY_API[name]
        values[field.attr] = _typed(field, value)
    return values


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _typed(field: Field, value: Any) -> Any:
    if field.kind == INTEGER:
        if isinstance(value, bool):
            value = None
        elif isinstance(value, str) and digits(value.strip()[value.strip()[:1] in "+-" :]):
            # One sign at most ("--5" passed lstrip and int() raised: a 500).
            text = value.strip()  # int() refuses 4,300 digits and more: too large anyway
            value = int(text) if len(text) <= 18 else MAX_SIZE_MB + 1
        elif isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int):
            raise ValidationFailed(
                f"Invalid format for {field.api}, input must be an integer", field=field.api
            )
        if value <= 0 or value > MAX_SIZE_MB:
            raise ValidationFailed(
                f"Invalid value for {field.api}, input must be a positive integer "
                f"of at most {MAX_SIZE_MB}",
                field=field.api,
            )
        return value
    if field.kind == BOOLEAN:
        if isinstance(value, bool):
            return value
        text = value.strip().lower() if isinstance(value, str) else None
        if text in TRUE_WORDS:
            return True
        if text in FALSE_WORDS:
            return False
        if field.api == "enabled":  # the spec's own words for this one
            raise ValidationFailed(
                "Invalid format for Enabled, input must be True or False", field=field.api
            )
        raise ValidationFailed(
            f"Invalid format for {field.api}, input must be true or false", field=field.api
        )
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationFailed(
            f"Invalid format for {field.api}, input must be a string", field=field.api
        )
    text = value if field.attr == "password" else value.strip()
    if "\x00" in text:  # a form body can carry one (JSON bodies are refused at parsing)
        raise ValidationFailed(
            f"Invalid value for {field.api}, null characters are not allowed", field=field.api
        )
    if len(text) > field.max_length:
        raise ValidationFailed(
            f"Invalid value for {field.api}, at most {field.max_length} characters",
            field=field.api,
        )
    return text
