"""Parsing a message someone sent us, with its MIME nesting bounded.

The standard library's email parser recurses once per nested part (multipart or
message/rfc822), so a 100 KB message of a thousand nested multiparts, under every size
limit, raises RecursionError wherever it is parsed: the MX answered 451 to it for ever,
the classify and train APIs a 500. Like Postfix (`mime_nesting_limit = 100`), we read
no message nested deeper than MAX_MIME_DEPTH and say so.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable
from email.message import Message
from email.policy import Policy

from mailadmin.errors import ValidationFailed

MAX_MIME_DEPTH = 100
TOO_DEEP = f"The message's MIME parts are nested more than {MAX_MIME_DEPTH} levels deep."


# Characters of a Content-Type or Content-Disposition field whose parameters are read.
MAX_PARAMETERS = 16_384


class BoundedMessage(Message):
    """A compat32 Message whose parameters are read from the field's first MAX_PARAMETERS
    characters (to the last ';' there): the stdlib's parser copies the rest of the field
    once per ';', so a Content-Type of 200,000 parameters (1 MB) cost seconds at every
    get_param (charset, boundary, filename), once in the parser itself."""

    def _get_params_preserve(self, failobj, header):
        value = self.get(header)
        if not isinstance(value, str) or len(value) <= MAX_PARAMETERS:
            return super()._get_params_preserve(failobj, header)
        cut = value.rfind(";", 0, MAX_PARAMETERS)
        short = Message()
        short[header] = value[: cut if cut > 0 else MAX_PARAMETERS]
        return short._get_params_preserve(failobj, header)


class MimeTooDeep(ValidationFailed):
    def __init__(self, *, field: str = "message") -> None:
        super().__init__(TOO_DEEP, field=field)


def message_from_bytes(raw: bytes, *, policy: Policy = email.policy.compat32) -> Message:
    return _parsed(email.message_from_bytes, raw, policy)


def message_from_string(text: str, *, policy: Policy = email.policy.compat32) -> Message:
    return _parsed(email.message_from_string, text, policy)


def _parsed(parse: Callable[..., Message], source: bytes | str, policy: Policy) -> Message:
    factory = BoundedMessage if policy.message_factory is None else None  # compat32's
    try:
        message = parse(source, factory, policy=policy)
    except RecursionError:
        raise MimeTooDeep() from None
    _check_depth(message)
    return message


def _check_depth(message: Message) -> None:
    """Walks the parts without recursion (Message.walk recurses too)."""
    stack = [(message, 0)]
    while stack:
        part, depth = stack.pop()
        if depth > MAX_MIME_DEPTH:
            raise MimeTooDeep()
        if part.is_multipart():  # get_payload() of a leaf decodes it: not needed here
            children = part.get_payload()
            stack.extend((child, depth + 1) for child in children if isinstance(child, Message))
