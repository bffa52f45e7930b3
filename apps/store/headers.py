"""The header fields a message list shows, read defensively from raw message bytes.

Mail arrives from anyone: headers may be huge, folded forever, in undeclared or broken
charsets, with encoded words that do not decode, dates that do not parse and NUL bytes.
`parse_summary` never raises; a field it cannot read comes back empty (date: None). Values
are cut to the model's column sizes and cleaned of what PostgreSQL text refuses (NUL, lone
surrogates). Pure functions, no Django.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.header import decode_header, make_header
from email.parser import HeaderParser
from email.policy import compat32
from email.utils import getaddresses, parsedate_to_datetime

# Only the header block is parsed, and only this much of it.
MAX_HEADER_BYTES = 256 * 1024
MAX_FIELD_CHARS = 16 * 1024
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_SPACE = re.compile(r"\s+")
_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")


@dataclass(frozen=True)
class Summary:
    from_name: str = ""
    from_address: str = ""
    subject: str = ""
    date: datetime | None = None
    message_id: str = ""


def header_block(data: bytes) -> bytes:
    """The bytes before the first empty line (at most MAX_HEADER_BYTES of them)."""
    head = data[:MAX_HEADER_BYTES]
    ends = [i for i in (head.find(b"\r\n\r\n"), head.find(b"\n\n")) if i >= 0]
    return head[: min(ends)] if ends else head


def header_text(block: bytes) -> str:
    """Header bytes as text, line by line: raw UTF-8 (SMTPUTF8, and common in the wild)
    where a line is valid UTF-8, else Windows-1252, the usual undeclared 8-bit charset."""
    lines = []
    for line in block.split(b"\n"):
        try:
            lines.append(line.decode("utf-8"))
        except UnicodeDecodeError:
            lines.append(line.decode("cp1252", "replace"))
    return "\n".join(lines)


def clean(text: str, limit: int) -> str:
    """One line of storable text: no control characters, no lone surrogates, cut to limit."""
    text = text.encode("utf-8", "replace").decode("utf-8", "replace")
    text = _SPACE.sub(" ", _CONTROL.sub(" ", text)).strip()
    return text[:limit]


def decode(raw: object) -> str:
    """A header value with RFC 2047 encoded words decoded; the raw text when they do not."""
    if raw is None:
        return ""
    text = str(raw)[:MAX_FIELD_CHARS]
    try:
        return str(make_header(decode_header(text)))
    except Exception:  # noqa: BLE001 - any header may be hostile; keep the raw text
        return text


def parse_summary(data: bytes) -> Summary:
    try:
        headers = HeaderParser(policy=compat32).parsestr(header_text(header_block(data)))
    except Exception:  # noqa: BLE001
        return Summary()
    return Summary(
        **_from_fields(headers.get("From")),
        subject=_safe(lambda: clean(decode(headers.get("Subject")), 998), ""),
        date=_safe(lambda: _date(headers.get("Date")), None),
        message_id=_safe(lambda: clean(str(headers.get("Message-ID") or ""), 998), ""),
    )


def _from_fields(raw: object) -> dict[str, str]:
    """The first From address as the sender wrote it, and its display name decoded.

    The address is read with the encoded words left out, as mail clients read it (RFC
    2047 5: an encoded word is never part of an addr-spec): a display name's encoded word
    may decode to an address of its own and a '<' (`=?utf-8?q?ceo=40bank.example_=3C?=
    <x@evil.example>`), which the lists showed as the sender. Only a field with no address
    outside encoded words (a mailer that encodes the whole field) is read decoded."""

    def parse() -> dict[str, str]:
        text = "" if raw is None else str(raw)[:MAX_FIELD_CHARS]
        skeleton = getaddresses([_ENCODED_WORD.sub("x", text)])
        # (an encoded word inside the address itself: not an address written outside)
        outside = [pair for pair in skeleton if "@" in pair[1] and pair[1] in text]
        if not outside:
            decoded = decode(raw)
            pairs = [pair for pair in getaddresses([decoded]) if pair[1] or pair[0]]
            if not pairs:
                return {"from_name": clean(decoded, 255), "from_address": ""}
            name, address = pairs[0]
            return {"from_name": clean(name, 255), "from_address": clean(address, 320)}
        address = outside[0][1]
        written = getaddresses([text])
        if written and written[0][1] == address:
            name = decode(written[0][0])
        else:  # the encoded words hold specials: the decoded field without the address
            name = decode(text).replace(f"<{address}>", " ").replace(address, " ")
        return {"from_name": clean(name, 255).strip(' "'), "from_address": clean(address, 320)}

    return _safe(parse, {"from_name": "", "from_address": ""})


def _date(raw: object) -> datetime | None:
    if not raw:
        return None
    value = parsedate_to_datetime(str(raw)[:200])
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)  # OverflowError at the ends of the calendar: no date
    return value if 1900 <= value.year <= 9000 else None


def _safe(read, default):
    try:
        return read()
    except Exception:  # noqa: BLE001 - a field that cannot be read is left empty
        return default
