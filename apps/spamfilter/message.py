"""One message taken apart once for every rule and for Bayes: headers (decoded), text and
HTML parts (transfer- and charset-decoded), links with their anchor text, attachments.

Hostile input is the normal case here: every decoder is lenient, nothing raises.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses
from functools import cached_property

from mailadmin.mime import message_from_bytes

MAX_PARTS = 200
MAX_TEXT = 500_000  # characters of decoded text looked at per part
MAX_ANCHORS = 1000
MAX_ANCHOR_TEXT = 2000
MAX_DECODED = 16_384  # characters of a header field whose encoded words are decoded
TAG = re.compile(r"<[^>]*>", re.DOTALL)
INVISIBLE_START = re.compile(r"<(script|style|head)\b", re.IGNORECASE)
# Linear scans only (no `.*?` between two tags: a message full of unclosed <a> or <script>
# tags would make such a pattern quadratic).
ANCHOR_START = re.compile(r"<a\s[^>]{0,2000}>", re.IGNORECASE)
HREF = re.compile(r"href\s*=\s*([\"']?)([^\"'\s>]+)", re.IGNORECASE)
# \bhttps?://... case-insensitively, spelt so that the regex engine can skip to each h:
# `[hH]` first (a leading \b and IGNORECASE leave it no prefix to search for), the word
# boundary as a look-behind, and every character re.IGNORECASE matches (LONG S for s).
URL = re.compile(r"[hH](?<!\w.)[tT][tT][pP][sS\u017f]?://[^\s<>\"'()\[\]{}]+")
BARE_HOST = re.compile(r"^(?:https?://)?((?:[a-z0-9-]+\.)+[a-z]{2,})(?:[/:?#]|$)", re.IGNORECASE)
SPACES = re.compile(r"\s+")


@dataclass
class Address:
    name: str
    address: str

    @property
    def domain(self) -> str:
        return self.address.rsplit("@", 1)[1].lower() if "@" in self.address else ""


@dataclass
class Anchor:
    href: str
    text: str


@dataclass
class Attachment:
    filename: str
    content_type: str


@dataclass
class ParsedMessage:
    raw: bytes
    headers: list[tuple[str, str]]  # (name as sent, decoded value), in order
    # Each header's value with its encoded words as sent (same order): addresses are read
    # from it, since an encoded word is text in a display name or comment, never syntax
    # (RFC 2047 section 5): `=?utf-8?q?x=40evil.example_=3C?= <ceo@bank.example>` is
    # from ceo@bank.example, as a mail program shows it, not from x@evil.example.
    undecoded: list[str] = field(default_factory=list)
    text_parts: list[str] = field(default_factory=list)
    html_parts: list[str] = field(default_factory=list)  # raw HTML (decoded)
    html_text: list[str] = field(default_factory=list)  # HTML with the markup removed
    anchors: list[Anchor] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    charsets: set[str] = field(default_factory=set)
    part_count: int = 0
    defects: int = 0
    # Every part's content type in walk order, multiparts included, and the transfer
    # encodings the parts declare: the MIME structure, which mail programs and bulk
    # senders each build their own way.
    structure: list[str] = field(default_factory=list)
    encodings: list[str] = field(default_factory=list)
    # A text part with 8-bit bytes that names no charset: no reader can know its letters.
    undeclared_8bit: bool = False
    # A text part sent as 7bit (declared, or by default) that holds 8-bit bytes.
    bad_7bit: bool = False

    # Rules and Bayes ask for the same few headers dozens of times per message: the lookups
    # below go through an index by lower-cased name, and parsed address lists are kept, both
    # built on first use (a ParsedMessage is not changed once parse() has returned it).
    @cached_property
    def _by_name(self) -> dict[str, list[str]]:
        index: dict[str, list[str]] = {}
        for key, value in self.headers:
            index.setdefault(key.lower(), []).append(value)
        return index

    @cached_property
    def _undecoded_by_name(self) -> dict[str, list[str]]:
        index: dict[str, list[str]] = {}
        for (key, _), value in zip(self.headers, self.undecoded, strict=False):
            index.setdefault(key.lower(), []).append(value)
        return index

    @cached_property
    def _addresses(self) -> dict[str, list[Address]]:
        return {}

    def header(self, name: str) -> str | None:
        values = self._by_name.get(name.lower())
        return values[0] if values else None

    def header_all(self, name: str) -> list[str]:
        return list(self._by_name.get(name.lower(), ()))

    def repeats(self, names: Iterable[str]) -> bool:
        """Whether a header of these (lower-case) names appears more than once."""
        index = self._by_name
        return any(len(index.get(name, ())) > 1 for name in names)

    def has(self, name: str) -> bool:
        return name.lower() in self._by_name

    def addresses(self, name: str) -> list[Address]:
        key = name.lower()
        found = self._addresses.get(key)
        if found is None:
            found = self._addresses[key] = self._parse_addresses(key)
        return list(found)

    def _parse_addresses(self, name: str) -> list[Address]:
        values = self._undecoded_by_name.get(name)
        if not values:
            return []
        try:
            pairs = getaddresses(values)
        except Exception:  # noqa: BLE001 - malformed address lists
            return []
        return [Address(_decode_header(n), a.strip()) for n, a in pairs if a or n]

    @property
    def from_address(self) -> Address | None:
        found = self.addresses("From")
        return found[0] if found else None

    @property
    def subject(self) -> str:
        return self.header("Subject") or ""

    @cached_property
    def body_text(self) -> str:
        return "\n".join(self.text_parts + self.html_text)


def _field_text(raw: str, value: object) -> str:
    """A field's text: its 8-bit bytes (which the parser keeps in `raw` as surrogate
    escapes) read as UTF-8 when they are UTF-8, which RFC 6532 allows in headers (SMTPUTF8
    mail: `From: joe@пример.рф`); in any other charset they stay unreadable (U+FFFD), as
    the parser's own `value` gives them."""
    if isinstance(raw, str) and not raw.isascii():
        try:
            return raw.encode("ascii", "surrogateescape").decode("utf-8")
        except UnicodeError:
            pass  # another charset, or characters that were never bytes
    return value if isinstance(value, str) else str(value)


def _decode_header(value: str) -> str:
    if "=?" not in value:
        return SPACES.sub(" ", value).strip()
    # decode_header is quadratic in a field's encoded words (it pops them off the front of
    # a list): past MAX_DECODED, at a space (never inside an encoded word), the field is
    # kept as sent.
    cut = len(value) if len(value) <= MAX_DECODED else value.rfind(" ", 0, MAX_DECODED)
    cut = MAX_DECODED if cut <= 0 else cut
    if not value.isascii():
        return SPACES.sub(" ", _decode_mixed(value[:cut]) + value[cut:]).strip()
    try:
        decoded = str(make_header(decode_header(value[:cut]))) + value[cut:]
    except Exception:  # noqa: BLE001 - bad encoded words stay as sent
        decoded = value
    return SPACES.sub(" ", decoded).strip()


def _decode_mixed(value: str) -> str:
    """Encoded words beside raw UTF-8 text (RFC 6532 mail may carry both), which
    make_header misreads: it takes the text between the words for ASCII (and decode_header
    hands it over as raw-unicode-escape bytes)."""
    parts = []
    try:
        for chunk, charset in decode_header(value):
            if isinstance(chunk, str):
                parts.append(chunk)
            elif charset is None:  # decode_header's own spelling of the text between
                parts.append(chunk.decode("raw-unicode-escape"))
            else:
                try:
                    parts.append(chunk.decode(charset, "replace"))
                except LookupError:
                    parts.append(chunk.decode("latin-1"))
    except Exception:  # noqa: BLE001 - bad encoded words stay as sent
        return value
    return "".join(parts)


def _without_invisible(markup: str) -> str:
    """Drop <script>, <style> and <head> elements (to the end when one is not closed)."""
    lower = markup.lower()
    kept, position = [], 0
    for match in INVISIBLE_START.finditer(markup):
        if match.start() < position:
            continue
        kept.append(markup[position : match.start()])
        end = lower.find(f"</{match[1].lower()}", match.end())
        position = len(markup) if end < 0 else end
    kept.append(markup[position:])
    return " ".join(kept)


def html_to_text(markup: str) -> str:
    text = _without_invisible(markup)
    # No tag starts after the last '>': TAG tried at each '<' there would scan to the end
    # of the text and fail (quadratic on markup of unclosed tags), so it is not tried.
    end = text.rfind(">") + 1
    text = TAG.sub(" ", text[:end]) + text[end:]
    return SPACES.sub(" ", html.unescape(text)).strip()


def anchors(markup: str) -> list[Anchor]:
    found = []
    lower = markup.lower()
    for match in ANCHOR_START.finditer(markup):
        href = HREF.search(match[0])
        if href is None:
            continue
        end = lower.find("</a", match.end(), match.end() + MAX_ANCHOR_TEXT)
        text = markup[match.end() : end] if end >= 0 else ""
        found.append(Anchor(html.unescape(href[2]), html_to_text(text)[:500]))
        if len(found) >= MAX_ANCHORS:
            break
    return found


def _claims_7bit(encoding: object) -> bool:
    return encoding is None or (isinstance(encoding, str) and encoding.strip().lower() == "7bit")


def _payload_text(part: Message) -> str:
    try:
        payload = part.get_payload(decode=True)
    except Exception:  # noqa: BLE001
        payload = None
    if payload is None:
        raw = part.get_payload()
        return raw if isinstance(raw, str) else ""
    charset = part.get_content_charset() or "us-ascii"
    try:
        return payload.decode(charset, "replace")
    except (LookupError, ValueError):
        return payload.decode("latin-1", "replace")


def parse(raw: bytes) -> ParsedMessage:
    if raw.startswith(b"From ") and b"\n" in raw[:1000]:
        raw_for_parse = raw.split(b"\n", 1)[1]  # an mbox "From " line
    else:
        raw_for_parse = raw
    msg = message_from_bytes(raw_for_parse)  # MimeTooDeep past 100 nested parts
    names, undecoded = [], []
    for (name, raw_value), value in zip(msg.raw_items(), msg.values(), strict=True):
        names.append(name.strip())
        undecoded.append(_field_text(raw_value, value))
    headers = [(name, _decode_header(value)) for name, value in zip(names, undecoded, strict=True)]
    parsed = ParsedMessage(raw=raw, headers=headers, undecoded=undecoded)
    parsed.defects = len(msg.defects)
    for index, part in enumerate(msg.walk()):
        if index >= MAX_PARTS:
            break
        parsed.defects += len(part.defects)
        parsed.structure.append(part.get_content_type())
        encoding = part.get("Content-Transfer-Encoding")
        if isinstance(encoding, str) and encoding:
            parsed.encodings.append(encoding.strip().lower()[:30])
        if part.is_multipart():
            continue
        parsed.part_count += 1
        charset = part.get_param("charset")
        if isinstance(charset, str) and charset:
            parsed.charsets.add(charset.lower().strip('"'))
        content_type = part.get_content_type()
        filename = None
        try:
            filename = part.get_filename()
        except Exception:  # noqa: BLE001
            filename = None
        disposition = (part.get("Content-Disposition") or "").lower()
        if filename or disposition.startswith("attachment"):
            parsed.attachments.append(Attachment(_decode_header(filename or ""), content_type))
            continue
        declared = isinstance(charset, str) and bool(charset)
        if content_type.startswith("text/") and _claims_7bit(encoding):
            try:
                payload = part.get_payload()
            except (ValueError, TypeError):
                # 8-bit bytes the declared charset's codec refused to decode with
                # "replace" (idna, punycode raise: the stdlib only catches LookupError),
                # or an RFC 2231 charset*= (a tuple the stdlib passes on as a codec name)
                payload = "\ufffd"
            if isinstance(payload, str) and not payload.isascii():
                parsed.bad_7bit = True
        if content_type == "text/html":
            markup = _payload_text(part)[:MAX_TEXT]
            parsed.undeclared_8bit |= not declared and "\ufffd" in markup
            parsed.html_parts.append(markup)
            parsed.html_text.append(html_to_text(markup))
            parsed.anchors.extend(anchors(markup))
        elif content_type.startswith("text/") or content_type == "message/rfc822":
            text = _payload_text(part)[:MAX_TEXT]
            parsed.text_parts.append(text)
            parsed.undeclared_8bit |= not declared and "\ufffd" in text
        elif content_type.startswith(("application/", "image/", "audio/", "video/")):
            parsed.attachments.append(Attachment("", content_type))
    for text in parsed.text_parts + parsed.html_parts:
        parsed.urls.extend(m[0].rstrip(".,;:!") for m in URL.finditer(text))
    parsed.urls.extend(a.href for a in parsed.anchors if a.href.lower().startswith("http"))
    parsed.urls = list(dict.fromkeys(parsed.urls))[:1000]
    return parsed


def url_host(url: str) -> str:
    match = BARE_HOST.match(url.strip())
    return match[1].lower() if match else ""
