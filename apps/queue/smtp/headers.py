"""Message header work for the listeners: pure functions over bytes, no I/O.

A message keeps the line endings it came with (CRLF over SMTP; LF from files and some
APIs): every header added here ends the way the message's first line does, so a DKIM
signature made over the result verifies byte for byte.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

CRLF = b"\r\n"
LF = b"\n"
_DOMAIN = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$"
)


def line_ending(message: bytes) -> bytes:
    """CRLF or LF, as the message's first line ends (CRLF when it has no line break)."""
    end = message.find(LF)
    if end > 0 and message[end - 1 : end] == b"\r":
        return CRLF
    return LF if end >= 0 else CRLF


def header_end(message: bytes) -> int:
    """The offset where the header section ends (the blank line starts, or the end)."""
    if message.startswith((CRLF, LF)):
        return 0
    ends = [i for i in (message.find(b"\n\n"), message.find(b"\n\r\n")) if i >= 0]
    return min(ends) + 1 if ends else len(message)


def has_header(message: bytes, name: str) -> bool:
    pattern = re.compile(rb"^" + re.escape(name.encode("ascii")) + rb"[ \t]*:", re.I | re.M)
    return pattern.search(message, 0, header_end(message)) is not None


def address_literal(ip: str) -> str:
    """`[192.0.2.1]` or `[IPv6:2001:db8::1]` (RFC 5321 4.1.3); an IPv4-mapped address
    as the IPv4 one."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return "[unknown]"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return f"[{address.ipv4_mapped}]"
        return f"[IPv6:{address.compressed}]"
    return f"[{address}]"


def _valid_helo(helo: str | None) -> bool:
    if not helo:
        return False
    if helo.startswith("[") and helo.endswith("]"):
        inner = helo[1:-1]
        inner = inner[5:] if inner[:5].lower() == "ipv6:" else inner
        try:
            ipaddress.ip_address(inner)
        except ValueError:
            return False
        return True
    return bool(_DOMAIN.match(helo))


def _safe_path(address: str) -> bool:
    return bool(address) and not any(ord(c) < 0x21 or ord(c) == 0x7F for c in address)


@dataclass(frozen=True)
class TlsInfo:
    version: str  # "TLSv1.3"
    cipher: str
    bits: int

    @property
    def comment(self) -> str:
        return f"(using {self.version} with cipher {self.cipher} ({self.bits} bits))"


def protocol_name(*, extended: bool, tls: bool, authenticated: bool, smtputf8: bool) -> str:
    """The `with` keyword of the Received line (RFC 3848, RFC 6531)."""
    if not extended:
        return "SMTP"
    base = "UTF8SMTP" if smtputf8 else "ESMTP"
    return base + ("S" if tls else "") + ("A" if authenticated else "")


def received_header(
    *,
    helo: str | None,
    ip: str,
    hostname: str,
    protocol: str,
    queue_id: str,
    tls: TlsInfo | None,
    recipients: list[str],
    now: datetime,
    eol: bytes = CRLF,
) -> bytes:
    """The Received line (RFC 5321 4.4) this server prepends to a message it accepts.

    A HELO name that is neither a domain nor an address literal is replaced by the
    address literal; the recipient is named only when there is one (RFC 5321 7.6).
    """
    literal = address_literal(ip)
    origin = helo if _valid_helo(helo) else literal
    lines = [f"Received: from {origin} ({literal})"]
    if tls is not None:
        lines.append(f"\t{tls.comment}")
    by = f"\tby {hostname} (mailadmin) with {protocol} id {queue_id}"
    stamp = format_datetime(now)
    if len(recipients) == 1 and _safe_path(recipients[0]):
        lines.append(by)
        lines.append(f"\tfor <{recipients[0]}>; {stamp}")
    else:
        lines.append(f"{by}; {stamp}")
    text = "".join(line + "\n" for line in lines)
    return text.encode("utf-8", "surrogateescape").replace(LF, eol)


def new_message_id(domain: str) -> str:
    return f"<{uuid.uuid4().hex}@{domain}>"


def add_missing_headers(message: bytes, *, domain: str, now: datetime) -> bytes:
    """Date and Message-ID at the end of the header section when the client left them
    out (RFC 6409 8.2, 8.3), in the message's own line endings."""
    eol = line_ending(message)
    added = b""
    if not has_header(message, "Date"):
        added += b"Date: " + format_datetime(now).encode("ascii") + eol
    if not has_header(message, "Message-ID"):
        added += b"Message-ID: " + new_message_id(domain).encode("ascii") + eol
    if not added:
        return message
    end = header_end(message)
    if end == len(message) and message and not message.endswith(LF):
        added = eol + added  # headers only, the last one without its line ending
    if end == len(message):
        added += eol  # no body: the blank line ends the new header section
    return message[:end] + added + message[end:]
