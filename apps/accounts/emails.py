"""E-mail addresses and domain names: stored normalized, shown to people in Unicode.

Stored form: the whole address lower-case, the domain in punycode (IDNA 2003, the stdlib
codec), so `Jane@Bücher.Example` and `jane@xn--bcher-kva.example` are the same mailbox and
the unique constraint on PrincipalEmail.address sees them as one.
"""

from __future__ import annotations

import re

from mailadmin.errors import ValidationFailed

MAX_ADDRESS = 320
MAX_LOCAL = 64
MAX_DOMAIN = 253
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# RFC 5321 dot-atom text; non-ASCII letters are allowed too (SMTPUTF8 local parts).
_LOCAL_FORBIDDEN = re.compile(r'[\s()<>\[\]:;@\\,"\x00-\x1f\x7f]')


class InvalidAddress(ValidationFailed):
    pass


def normalize_domain(raw: str) -> str:
    """A domain name in its stored form (lower-case, punycode), or InvalidAddress."""
    text = (raw or "").strip().rstrip(".").lower()
    # Never shorter in punycode; and the codec takes quadratic time (1 MB of text: hours).
    if len(text) > MAX_DOMAIN:
        raise InvalidAddress(f"'{raw}' is not a valid domain name.")
    try:
        ascii_form = text.encode("idna").decode("ascii") if text else ""
    except UnicodeError:
        ascii_form = ""
    labels = ascii_form.split(".")
    if (
        not ascii_form
        or len(ascii_form) > MAX_DOMAIN
        or len(labels) < 2
        or not all(_LABEL.match(label) for label in labels)
        or labels[-1].isdigit()
    ):
        raise InvalidAddress(f"'{raw}' is not a valid domain name.")
    return ascii_form


def normalize_address(raw: str) -> str:
    """An address in its stored form, or InvalidAddress naming it."""
    text = (raw or "").strip()
    local, at, domain = text.rpartition("@")
    message = f"'{raw}' is not a valid email address."
    if (
        not at
        or not local
        or len(local) > MAX_LOCAL
        or _LOCAL_FORBIDDEN.search(local)
        or local.startswith(".")
        or local.endswith(".")
        or ".." in local
    ):
        raise InvalidAddress(message)
    try:
        ascii_domain = normalize_domain(domain)
    except InvalidAddress:
        raise InvalidAddress(message) from None
    address = f"{local.lower()}@{ascii_domain}"
    if len(address) > MAX_ADDRESS:
        raise InvalidAddress(message)
    return address


def display_domain(domain: str) -> str:
    """The Unicode form of a stored domain (punycode labels decoded)."""
    if "xn--" not in domain:
        return domain
    try:
        return domain.encode("ascii").decode("idna")
    except UnicodeError:
        return domain


def display_address(address: str) -> str:
    """The Unicode form of a stored address, for pages and API responses."""
    local, _, domain = address.rpartition("@")
    return f"{local}@{display_domain(domain)}"


def domain_of(address: str) -> str:
    return address.rpartition("@")[2]


def search_variants(text: str) -> set[str]:
    """What to look for in stored addresses when a person types `text` (maybe Unicode)."""
    variants = {text.lower()}
    local, at, domain = text.rpartition("@")
    candidate = domain if at else text
    if candidate and not candidate.isascii():
        try:
            encoded = candidate.lower().encode("idna").decode("ascii")
        except UnicodeError:
            return variants
        variants.add(f"{local.lower()}@{encoded}" if at else encoded)
    return variants
