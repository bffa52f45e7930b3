"""A domain's records as BIND zone-file text (RFC 1035 section 5): pure functions.

TXT data is a list of character-strings of at most 255 bytes each (RFC 1035 3.3.14), so a
2048-bit DKIM key must be split, and each string is quoted so a `;` (a comment in a zone
file) or a space stays part of the data.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from apps.domains.records import Record

TTL = 3600
MAX_STRING = 255


def _chunks(data: bytes) -> list[bytes]:
    """Split at 255 bytes, never inside a UTF-8 character."""
    chunks = []
    while len(data) > MAX_STRING:
        cut = MAX_STRING
        while cut > 0 and data[cut] & 0xC0 == 0x80:  # a continuation byte: back off
            cut -= 1
        chunks.append(data[:cut])
        data = data[cut:]
    chunks.append(data)
    return chunks


def _quote(chunk: bytes) -> str:
    out = []
    for byte in chunk:
        if byte in (0x22, 0x5C):  # " and \
            out.append("\\" + chr(byte))
        elif 0x20 <= byte < 0x7F:
            out.append(chr(byte))
        else:
            out.append(f"\\{byte:03d}")
    return '"' + "".join(out) + '"'


def txt_data(text: str) -> str:
    """TXT content as zone-file data: quoted strings of at most 255 bytes."""
    return " ".join(_quote(chunk) for chunk in _chunks(text.encode("utf-8")))


def rdata(record: Record) -> str:
    """A record's data as a zone file (and the API) writes it."""
    if record["type"].upper() == "TXT":
        return txt_data(record["content"])
    return record["content"]


def _in_zone(name: str, origin: str) -> bool:
    name, origin = name.lower().rstrip(".") + ".", origin.lower()
    return name == origin or name.endswith("." + origin)


def zone_file(
    *,
    domain: str,
    records: Iterable[Record],
    hostname: str,
    host_addresses: Iterable[str] = (),
) -> str:
    """The records of `domain` (punycode) as a zone file that loads on its own.

    A zone needs an SOA and NS records to load (named-checkzone refuses it otherwise); ours
    are placeholders naming this server, marked so, for the customer's DNS host keeps its own.
    When this server's name is inside the domain, its A/AAAA records (`host_addresses`)
    belong to the zone too. Records named outside the zone (the TLSA record of an MX host
    in another zone) are listed as comments: BIND would ignore them.
    """
    origin = domain.rstrip(".") + "."
    host = hostname.rstrip(".") + "."
    serial = datetime.now(UTC).strftime("%Y%m%d00")
    lines = [
        f"; DNS records for {origin} (mail served by {host})",
        "; Import these into your DNS; keep your DNS host's own SOA and NS records.",
        f"$ORIGIN {origin}",
        f"$TTL {TTL}",
        f"@\tIN\tSOA\t{host} hostmaster.{origin} {serial} 7200 3600 1209600 3600 ; placeholder",
        f"@\tIN\tNS\t{host} ; placeholder",
        "",
    ]
    if _in_zone(host, origin):
        for address in host_addresses:
            rtype = "AAAA" if ":" in address else "A"
            lines.append(f"{host}\t{TTL}\tIN\t{rtype}\t{address}")
    outside = []
    for record in records:
        line = f"{record['name']}\t{TTL}\tIN\t{record['type']}\t{rdata(record)}"
        if _in_zone(record["name"], origin):
            lines.append(line)
        else:
            outside.append(line)
    if outside:
        lines += ["", "; Outside this zone: publish these in the zone that holds their names."]
        lines += [f"; {line}" for line in outside]
    return "\n".join(lines) + "\n"
