"""The client a fetched message's provider accepted it from, read from its Received lines.

Mail fetched from a remote mailbox (IMAP/POP3) was not sent by the server we fetched it
from: the host that sent it is the client named by the Received line the remote provider
wrote when it accepted the message, the topmost one (RFC 5321 4.4: each hop prepends its
own). SPF, iprev and the HELO checks judge that client, as SpamAssassin and rspamd do
with mail relayed by a trusted host. Pure functions; headers are hostile: lengths are
bounded and nothing here raises.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

MAX_HOPS = 10  # Received fields read, from the top
MAX_FIELD = 2048  # characters of each field read
MAX_HELO = 253

# The from-clause: from its start to the `by`/`via`/`with`/`id`/`for` clause or the date.
_FROM_CLAUSE = re.compile(
    r"^\s*from\s+(.*?)(?=\s(?:by|via|with|id|for)\s|;|$)", re.IGNORECASE | re.DOTALL
)
# An address in brackets (Postfix, Sendmail, Exim, Gmail: `[203.0.113.5]`,
# `[IPv6:2001:db8::1]`) or bare in parentheses (qmail: `(203.0.113.5)`).
_BRACKETED = re.compile(r"\[(?:IPv6:)?([0-9A-Fa-f.:]{2,45})\]")
_PARENTHESISED = re.compile(r"\(([0-9A-Fa-f.:]{2,45})\)")
_EXIM_HELO = re.compile(r"\bhelo=([^\s()]+)", re.IGNORECASE)
_QMAIL_HELO = re.compile(r"\(HELO\s+([^\s()]+)\)", re.IGNORECASE)
_HOST = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?\.?")
# The client's HELO where an MTA records it inside its comment: not where its IP is.
_CLIENT_HELO = re.compile(r"\bhelo=\S*|\(HELO\s[^()]*\)", re.IGNORECASE)
_IP_LITERAL = re.compile(r"\[(?:IPv6:)?[0-9A-Fa-f.:]{2,45}\]")
# The hop used TLS: its `with` protocol says so (RFC 3848 ESMTPS/ESMTPSA/LMTPS/LMTPSA,
# RFC 6531 UTF8SMTPS/UTF8SMTPSA/UTF8LMTPS/UTF8LMTPSA), or the receiving MTA noted the TLS
# version (Postfix `(using TLSv1.3 with cipher ...)`, Microsoft `(version=TLS1_2, ...)`).
_TLS = re.compile(
    r"\bwith\s+(?:UTF8)?(?:E?SMTP|LMTP)SA?\b|\(\s*using\s+TLS|\bversion=TLS", re.IGNORECASE
)
# The hop was an SMTPUTF8 transaction: RFC 6531 section 4.3's `with` protocols
# (UTF8SMTP, UTF8SMTPA, UTF8SMTPS, UTF8SMTPSA and the LMTP ones).
_SMTPUTF8 = re.compile(r"\bwith\s+UTF8(?:SMTP|LMTP)S?A?\b", re.IGNORECASE)


@dataclass(frozen=True)
class Hop:
    """The client judged for a fetched message: its IP ("" when no Received line names a
    public one: then SPF and iprev are not judged), the HELO it gave ("" unknown) and
    whether the provider took the message over TLS (its Received field says so; with no
    client named, the topmost field: RCVD_TLS_LAST is about that hop, not our fetch) and
    in an SMTPUTF8 transaction (raw UTF-8 headers are then allowed, RFC 6532)."""

    ip: str = ""
    helo: str = ""
    tls: bool = False
    smtputf8: bool = False


def _public(text: str) -> str:
    """The address in canonical text when it is a public one, else ""."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return ""
    mapped = getattr(address, "ipv4_mapped", None)
    address = mapped or address
    return str(address) if address.is_global and not address.is_multicast else ""


def _helo(clause: str) -> str:
    """The HELO name the hop recorded: Exim's `helo=`, qmail's `(HELO x)`, else the first
    word of the from-clause (Postfix, Sendmail, Gmail, Microsoft write the HELO there)."""
    found = _EXIM_HELO.search(clause) or _QMAIL_HELO.search(clause)
    if found:
        name = found[1]
    else:
        words = clause.split(None, 1)
        name = words[0] if words else ""
    name = name.strip().rstrip(".").lower()[: MAX_HELO + 1]
    if len(name) > MAX_HELO or name in ("", "unknown"):
        return ""
    if _IP_LITERAL.fullmatch(name) or _HOST.fullmatch(name):
        return name
    return ""


def hop_of(field: str) -> Hop | None:
    """The client one Received field names, when its from-clause has a public IP.

    The address is the one the receiving MTA wrote in its comment after the HELO word
    (Postfix, Sendmail, Gmail `(name [IP])`, Exim `([IP] helo=x)`, qmail `(IP)`), the
    first one there. The HELO word and the HELO inside Exim's `helo=` or qmail's
    `(HELO x)` are the client's own words (`EHLO [8.8.8.8]` is allowed) and never count,
    but for Exim's `from [IP] (helo=x)`, written for a client without a PTR name."""
    match = _FROM_CLAUSE.match(field[:MAX_FIELD].replace("\r", " ").replace("\n", " "))
    if match is None:
        return None
    clause = match[1]
    words = clause.split(None, 1)
    first, rest = (words + ["", ""])[:2]
    comment = _CLIENT_HELO.sub(" ", rest)
    found = _BRACKETED.search(comment) or _PARENTHESISED.search(comment)
    if found is None and _EXIM_HELO.search(rest):
        found = _BRACKETED.fullmatch(first)
    ip = _public(found[1]) if found is not None else ""
    if not ip:
        return None
    return Hop(ip=ip, helo=_helo(clause), tls=_used_tls(field), smtputf8=_used_smtputf8(field))


def _used_tls(field: str) -> bool:
    return _TLS.search(field[:MAX_FIELD]) is not None


def _used_smtputf8(field: str) -> bool:
    return _SMTPUTF8.search(field[:MAX_FIELD]) is not None


def received_fields(data: bytes) -> list[str]:
    """The first MAX_HOPS Received fields of a message's header section, top first,
    unfolded (each at most MAX_FIELD characters)."""
    end = re.search(rb"\r?\n\r?\n", data[: 256 * 1024])
    head = data[: end.start() if end else 256 * 1024]
    fields: list[bytes] = []
    current: bytes | None = None
    for line in head.splitlines():
        if line[:1] in (b" ", b"\t"):
            if current is not None and len(current) < MAX_FIELD:
                current += b" " + line.strip()
            continue
        if current is not None:
            fields.append(current)
            if len(fields) >= MAX_HOPS:
                break
            current = None
        name, colon, value = line.partition(b":")
        if colon and name.strip().lower() == b"received":
            current = value.strip()
    if current is not None and len(fields) < MAX_HOPS:
        fields.append(current)
    return [f[:MAX_FIELD].decode("utf-8", "replace") for f in fields]


def client_hop(data: bytes) -> Hop:
    """The client of the topmost Received field (of the first MAX_HOPS) of a message
    whose from-clause names a public IP; Hop() when none does (no Received field,
    private or loopback addresses only, nothing parsable)."""
    try:
        fields = received_fields(data)
        for field in fields:
            hop = hop_of(field)
            if hop is not None:
                return hop
        if not fields:
            return Hop()
        return Hop(tls=_used_tls(fields[0]), smtputf8=_used_smtputf8(fields[0]))
    except Exception:  # noqa: BLE001 - a hostile header names no client, never an error
        return Hop()
