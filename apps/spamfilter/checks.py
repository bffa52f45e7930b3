"""The rules computed in code: each function decides whether its tags apply to a message.
Scores, enabled flags and actions live in rules.yaml; a test checks that every tag named
here has a rule there.
"""

from __future__ import annotations

import email.utils
import ipaddress
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from apps.spamfilter.auth import AuthResults, aligned, organizational_domain
from apps.spamfilter.bayes import is_list_message
from apps.spamfilter.lookups import ERROR, FOUND, ScanLookups
from apps.spamfilter.message import ParsedMessage, url_host

CHECKS: list[Callable[[Context], Iterator[str]]] = []
# Every tag the checks below can give (families as TAG_*), for the rules-file test.
TAGS: set[str] = set()

BAD_EXTENSIONS = frozenset(
    [
        "exe",
        "scr",
        "pif",
        "bat",
        "cmd",
        "com",
        "cpl",
        "js",
        "jse",
        "vbs",
        "vbe",
        "wsf",
        "wsh",
        "hta",
        "jar",
        "msi",
        "msp",
        "lnk",
        "reg",
        "ps1",
        "iso",
        "img",
        "vhd",
        "scf",
        "application",
        "gadget",
    ]
)
DISGUISE_EXTENSIONS = frozenset(
    [
        "pdf",
        "doc",
        "docx",
        "xls",
        "xlsx",
        "txt",
        "jpg",
        "jpeg",
        "png",
        "gif",
        "zip",
        "rtf",
        "htm",
        "html",
    ]
)
WORD = re.compile(r"\w+", re.UNICODE)
LATIN = re.compile(r"[A-Za-z]")
LOOKALIKE = re.compile(r"[\u0370-\u03ff\u0400-\u04ff]")  # Greek, Cyrillic
ZERO_FONT = re.compile(r"font-size\s*:\s*0(?:px|pt|em|%)?\s*[;\"']", re.IGNORECASE)
IMG = re.compile(r"<img\b", re.IGNORECASE)
HTML_ROOT = re.compile(r"<html\b", re.IGNORECASE)
# A <font> tag (to its '>' or the end) and a large size in it: two linear scans. One
# pattern `<font\b[^>]*\bsize...` backtracked to the end from every unclosed <font.
FONT_TAG = re.compile(r"<font\b[^>]*", re.IGNORECASE)
FONT_LARGE = re.compile(r"\bsize\s*=\s*[\"']?\+?[4-7]", re.IGNORECASE)
EXCLAIM = re.compile(r"!{2,}")
# Free mail providers and what their own servers write in the Received headers and the
# Message-ID of mail they send (SpamAssassin's FORGED_HOTMAIL_RCVD2, FORGED_YAHOO_RCVD,
# FORGED_GMAIL_RCVD): a From address of theirs on mail that never passed through them is
# a forgery, the commonest one of bulk senders.
_MICROSOFT = ("hotmail.com", "outlook.com", "msn.com", "live.com")
_GOOGLE = ("google.com", "gmail.com", "googlemail.com")
FREEMAIL_MARKERS = {
    "hotmail.com": _MICROSOFT,
    "outlook.com": _MICROSOFT,
    "msn.com": _MICROSOFT,
    "live.com": _MICROSOFT,
    "gmail.com": _GOOGLE,
    "googlemail.com": _GOOGLE,
    "aol.com": ("aol.com", "aol.net", "aim.com"),
    "excite.com": ("excite.com",),
    "juno.com": ("juno.com", "untd.com"),
    "lycos.com": ("lycos.com",),
    "netscape.net": ("netscape.net", "aol.com"),
    "earthlink.net": ("earthlink.net",),
}
HOST_LIKE = re.compile(r"^(?:https?://)?(?:[a-z0-9-]+\.)+[a-z]{2,}(?:[/:?#]\S*)?$", re.I)


@dataclass
class Context:
    message: ParsedMessage
    remote_ip: str
    ehlo_domain: str
    env_from: str
    env_rcpt_to: Sequence[str]
    authenticated_as: str
    is_tls: bool
    auth: AuthResults | None  # None for authenticated submissions
    lookups: ScanLookups
    iprev_names: tuple[str, ...] = ()
    smtputf8: bool = False  # received in an SMTPUTF8 transaction (RFC 6531)


def check(*tags: str):
    def register(function):
        CHECKS.append(function)
        TAGS.update(tags)
        return function

    return register


def run_checks(context: Context) -> list[str]:
    found: list[str] = []
    for function in CHECKS:
        found.extend(function(context))
    return found


def _addr(value: str) -> str:
    return value.strip().strip("<>").lower()


def _domain(address: str) -> str:
    return address.rsplit("@", 1)[1].lower().rstrip(".") if "@" in address else ""


# --- headers ---------------------------------------------------------------------------


# RFC 5322 3.6.4: msg-id = "<" id-left "@" id-right ">" (comments around it allowed). A
# second @ on the left is let pass: list servers (Lyris) put the subscriber's address there.
MESSAGE_ID = re.compile(r"^\s*(?:\([^)]*\)\s*)?<[^<>\s]+@[^<>@\s]+>")


@check(
    "MISSING_DATE",
    "MISSING_MID",
    "INVALID_MSGID",
    "MISSING_MIME_VERSION",
    "MISSING_FROM",
    "MISSING_TO",
)
def _missing(c: Context) -> Iterator[str]:
    m = c.message
    if not m.has("Date"):
        yield "MISSING_DATE"
    message_id = (m.header("Message-ID") or "").strip()
    if not message_id:
        yield "MISSING_MID"
    elif not MESSAGE_ID.match(message_id):
        yield "INVALID_MSGID"
    if not m.has("MIME-Version") and (m.has("Content-Type") or m.has("Content-Transfer-Encoding")):
        yield "MISSING_MIME_VERSION"
    if not m.has("From"):
        yield "MISSING_FROM"
    if not (m.has("To") or m.has("Cc") or m.has("Bcc")):
        yield "MISSING_TO"


# No zone on earth is more than 14 hours from UTC (Kiribati, +14:00): bulk mailers that
# print their offset wrongly write -1600 or -1900 (SpamAssassin's INVALID_DATE_TZ_ABSURD).
MAX_ZONE_OFFSET = 14 * 3600


# The zone after the time of day, which RFC 5322 requires (an offset, or an obsolete zone
# name such as GMT or EST): Python's parser reads a Date without one as UTC.
DATE_ZONE = re.compile(r"\d{1,2}:\d{2}(?::\d{2})?\s*(?:[+-]\d{4}|\(?[A-Za-z]{1,5}\b)")
# A Date this far after the time the receiving server stamped on its Received line: the
# sender's clock is not merely wrong by a zone (SpamAssassin's DATE_IN_FUTURE_03_06 and up).
FUTURE_SLACK = 3 * 3600


def _timestamp(value: str) -> float | None:
    try:
        parsed = email.utils.parsedate_tz(value)
        return None if parsed is None else float(email.utils.mktime_tz(parsed))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


@check("INVALID_DATE", "INVALID_DATE_TZ_ABSURD", "DATE_IN_FUTURE")
def _date(c: Context) -> Iterator[str]:
    """A Date no RFC 5322 parser reads, without a zone, or of a year before 1970 (the "0102"
    that mailers adding 1900 to a two-digit year wrote), or with an offset no zone has, or hours
    after the message was received (bulk mailers date mail ahead to sort it on top)."""
    value = c.message.header("Date")
    if value is None:
        return  # MISSING_DATE
    try:
        parsed = email.utils.parsedate_tz(value)
    except (TypeError, ValueError, IndexError):
        parsed = None
    if parsed is None or parsed[0] < 1970 or not DATE_ZONE.search(value):
        yield "INVALID_DATE"
    elif parsed[9] is not None and abs(parsed[9]) > MAX_ZONE_OFFSET:
        yield "INVALID_DATE_TZ_ABSURD"
    else:
        received = c.message.header("Received")  # the newest: the receiving server's
        if received and ";" in received:
            sent, arrived = _timestamp(value), _timestamp(received.rsplit(";", 1)[1])
            if sent is not None and arrived is not None and sent - arrived > FUTURE_SLACK:
                yield "DATE_IN_FUTURE"


# Outlook Express and Outlook 97-2003 (Build 8 to 11) add X-MimeOLE to every message they
# write; bulk mailers that borrow their X-Mailer do not (SpamAssassin's FORGED_MUA_OUTLOOK
# looks for the same). Outlook 2010 and later write neither "Build" nor X-MimeOLE.
OLD_OUTLOOK = re.compile(
    r"\bMicrosoft Outlook Express\b"
    r"|\bMicrosoft (?:Office )?Outlook(?: IMO| CWS)?,? Build (?:8|9|10|11)\.",
    re.IGNORECASE,
)


# Any Outlook, Express included: none of them sends HTML without a text alternative.
OUTLOOK = re.compile(r"^\s*Microsoft Outlook\b")
# Yahoo Groups relayed its members' Outlook mail as HTML alone (rspamd's exemption).
YAHOO_GROUPS_HOP = re.compile(r"from \[\S+\] by \S+\.(?:groups|scd|dcn)\.yahoo\.com with NNFMP")


@check("FORGED_MUA_OUTLOOK", "FORGED_OUTLOOK_HTML")
def _mua(c: Context) -> Iterator[str]:
    m = c.message
    mailer = m.header("X-Mailer")
    if not mailer:
        return
    if OLD_OUTLOOK.search(mailer) and not m.has("X-MimeOLE"):
        yield "FORGED_MUA_OUTLOOK"
    # rspamd's FORGED_OUTLOOK_HTML: Outlook writes an HTML message as multipart/alternative
    # with a text part; an Outlook X-Mailer on HTML alone is a bulk mailer's borrowed name.
    if (
        m.html_parts
        and not m.text_parts
        and OUTLOOK.search(mailer)
        and not any(YAHOO_GROUPS_HOP.search(v) for v in m.header_all("Received"))
    ):
        yield "FORGED_OUTLOOK_HTML"


@check("MISSING_SUBJECT", "EMPTY_SUBJECT", "SUBJ_ALL_CAPS", "SUBJ_EXCESS_PUNCT", "MULTIPLE_FROM")
def _subject(c: Context) -> Iterator[str]:
    m = c.message
    subject = m.header("Subject")
    if subject is None:
        yield "MISSING_SUBJECT"
    elif not subject.strip():
        yield "EMPTY_SUBJECT"
    else:
        letters = [ch for ch in subject if ch.isalpha()]
        if len(letters) >= 10 and len(subject.split()) >= 2 and all(ch.isupper() for ch in letters):
            yield "SUBJ_ALL_CAPS"
        if re.search(r"[!?]{3,}", subject):
            yield "SUBJ_EXCESS_PUNCT"
    if len(m.header_all("From")) > 1:
        yield "MULTIPLE_FROM"


# Fields RFC 5322 3.6 and RFC 2045 allow once (From has MULTIPLE_FROM): a message carrying
# two is built by hand, the second meant for a filter or a reader that takes the other one
# (rspamd's MULTIPLE_UNIQUE_HEADERS).
UNIQUE_HEADERS = tuple(
    name.lower()
    for name in (
        "Date",
        "Sender",
        "Reply-To",
        "To",
        "Cc",
        "Bcc",
        "Message-ID",
        "In-Reply-To",
        "References",
        "Subject",
        "MIME-Version",
        "Content-Type",
        "Content-Transfer-Encoding",
    )
)


@check("MULTIPLE_UNIQUE_HEADERS")
def _unique_headers(c: Context) -> Iterator[str]:
    if c.message.repeats(UNIQUE_HEADERS):
        yield "MULTIPLE_UNIQUE_HEADERS"


NOT_TAG = re.compile(r"[^A-Z0-9]+")
_header_tags: dict[str, str] = {}  # header name -> its X_HDR_ tag: the same few recur


def _header_tag(name: str) -> str:
    tag = _header_tags.get(name)
    if tag is None:
        tag = "X_HDR_" + NOT_TAG.sub("_", name.upper()).strip("_")
        if len(_header_tags) < 10_000:
            _header_tags[name] = tag
    return tag


# X_HDR_ tags a message gets at most, for its first header names: one tag a name, and a
# sender may write thousands of names, which the verdict, the classify answer and the
# quarantine would all carry.
MAX_HEADER_TAGS = 100


@check("X_HDR_*")
def _header_names(c: Context) -> Iterator[str]:
    seen = set()
    for name, _ in c.message.headers:
        tag = _header_tag(name)
        if tag not in seen and len(tag) <= 64:
            seen.add(tag)
            yield tag
            if len(seen) >= MAX_HEADER_TAGS:
                return


# --- addresses -------------------------------------------------------------------------


# An address in a display name, found from each '@' (a search for `[\w.+-]+@...` tried
# every letter of a long name and ran over the rest of it from each: quadratic).
ADDRESS_IN_NAME = re.compile(r"(?<=[\w.+-])@[\w-]+\.[\w.-]+")


@check("FROM_NO_DN", "FROM_DN_EQ_ADDR", "FROM_DN_HAS_ADDR", "FROM_NEQ_ENV_FROM", "FORGED_SENDER")
def _from(c: Context) -> Iterator[str]:
    sender = c.message.from_address
    if sender is None or not sender.address:
        return
    address = _addr(sender.address)
    name = sender.name.strip().strip('"').strip()
    if not name:
        yield "FROM_NO_DN"
    elif _addr(name) == address:
        yield "FROM_DN_EQ_ADDR"
    elif ADDRESS_IN_NAME.search(name):
        yield "FROM_DN_HAS_ADDR"
    env = _addr(c.env_from)
    if env and env != address:
        yield "FROM_NEQ_ENV_FROM"
        if not aligned(_domain(env), _domain(address), "r"):
            yield "FORGED_SENDER"


@check(
    "FORGED_RECIPIENTS",
    "TO_DN_NONE",
    "TO_DN_ALL",
    "TO_DOM_EQ_FROM_DOM",
    "TO_EQ_FROM",
    "RCPT_COUNT_ONE",
    "RCPT_COUNT_FIVE",
    "RCPT_COUNT_TWELVE",
    "REPLYTO_DOM_NEQ_FROM_DOM",
)
def _recipients(c: Context) -> Iterator[str]:
    m = c.message
    to = [a for a in m.addresses("To") if a.address]
    # Only real addresses: a To of "Undisclosed-Recipient:;" (or a bare local part) lists
    # nobody, so it cannot show that the envelope's recipients were forged.
    listed = {
        _addr(a.address) for a in to + m.addresses("Cc") + m.addresses("Bcc") if "@" in a.address
    }
    rcpts = [_addr(r) for r in c.env_rcpt_to if r.strip()]
    if rcpts and listed and not c.authenticated_as and any(r not in listed for r in rcpts):
        yield "FORGED_RECIPIENTS"
    if to:
        named = [a for a in to if a.name.strip().strip('"')]
        if not named:
            yield "TO_DN_NONE"
        elif len(named) == len(to):
            yield "TO_DN_ALL"
    sender = m.from_address
    from_domain = sender.domain if sender else ""
    if from_domain and to:
        if all(a.domain == from_domain for a in to):
            yield "TO_DOM_EQ_FROM_DOM"
        if len(to) == 1 and sender and _addr(to[0].address) == _addr(sender.address):
            yield "TO_EQ_FROM"
    if len(rcpts) == 1:
        yield "RCPT_COUNT_ONE"
    elif 5 <= len(rcpts) < 12:
        yield "RCPT_COUNT_FIVE"
    elif len(rcpts) >= 12:
        yield "RCPT_COUNT_TWELVE"
    reply_to = m.addresses("Reply-To")
    reply_domain = reply_to[0].domain if reply_to else ""
    if reply_domain and from_domain and not aligned(reply_domain, from_domain, "r"):
        yield "REPLYTO_DOM_NEQ_FROM_DOM"


def _freemail_markers(domain: str) -> tuple[str, ...]:
    found = FREEMAIL_MARKERS.get(domain)
    if found is None and organizational_domain(domain).startswith("yahoo."):
        found = ("yahoo.com", "yahoo.net", "yahoodns.net", "yahoo.co")
    return found or ()


@check("FORGED_FREEMAIL_RCVD")
def _freemail(c: Context) -> Iterator[str]:
    sender = c.message.from_address
    if c.authenticated_as or sender is None or not sender.domain:
        return
    markers = _freemail_markers(sender.domain)
    if not markers:
        return
    if c.auth is not None and any(
        r.verified and aligned(r.domain, sender.domain, "r") for r in c.auth.dkim
    ):
        return
    seen = [*c.message.header_all("Received"), c.message.header("Message-ID") or ""]
    seen += [c.ehlo_domain, *c.iprev_names]
    text = " ".join(seen).lower()
    if not any(marker in text for marker in markers):
        yield "FORGED_FREEMAIL_RCVD"


# --- the connection --------------------------------------------------------------------


def _ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]").removeprefix("IPv6:"))
    except ValueError:
        return False
    return True


def _resolves(lookups: ScanLookups, name: str) -> bool | None:
    """A or MX (or AAAA) found: True; none: False; DNS failed: None. Asked in that order
    and no further than the first found (AAAA, not prefetched, is mostly not needed)."""
    failed = False
    for rtype in ("A", "MX", "AAAA"):
        status = lookups.get(name, rtype).status
        if status == FOUND:
            return True
        failed = failed or status == ERROR
    return None if failed else False


@check(
    "HELO_NORES_A_OR_MX",
    "HELO_IPREV_MISMATCH",
    "HELO_BAREIP",
    "FROMHOST_NORES_A_OR_MX",
    "RDNS_NONE",
    "RDNS_DNSFAIL",
    "RCVD_COUNT_ZERO",
    "RCVD_TLS_LAST",
    "RCVD_NO_TLS_LAST",
)
def _connection(c: Context) -> Iterator[str]:
    if not c.message.header_all("Received"):
        yield "RCVD_COUNT_ZERO"
    yield "RCVD_TLS_LAST" if c.is_tls else "RCVD_NO_TLS_LAST"
    if c.authenticated_as or c.auth is None:
        return
    helo = c.ehlo_domain.strip().rstrip(".").lower()
    if helo:
        if _ip_literal(helo):
            yield "HELO_BAREIP"
        else:
            if _resolves(c.lookups, helo) is False:
                yield "HELO_NORES_A_OR_MX"
            if c.remote_ip and c.auth.iprev.result != "temperror" and helo not in c.iprev_names:
                yield "HELO_IPREV_MISMATCH"
    if c.remote_ip:
        if c.auth.iprev.result == "temperror":
            yield "RDNS_DNSFAIL"
        elif not c.iprev_names:
            yield "RDNS_NONE"
    sender = c.message.from_address
    if sender and sender.domain and _resolves(c.lookups, sender.domain) is False:
        yield "FROMHOST_NORES_A_OR_MX"


# Postfix's record of a client without a PTR name: `from helo (unknown [IP])`.
RECEIVED_FROM_UNKNOWN = re.compile(
    r"^\s*from\s+\S+\s+\(unknown\s+\[(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})\]", re.IGNORECASE
)
# RFC 3848 `with ESMTPA`/`ESMTPSA`: a user's authenticated submission, from wherever they are.
RECEIVED_AUTHENTICATED = re.compile(
    r"\bwith\s+(?:E?SMTPS?A|LMTPS?A)\b|\bauthenticated sender\b", re.IGNORECASE
)
RECEIVED_HOPS = 10
OWN_HOP = "(mailadmin)"  # the `by` part of the Received line our own MX writes


def _public_ipv4(text: str) -> bool:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    return not (address.is_private or address.is_loopback or address.is_reserved)


@check("RCVD_RDNS_UNKNOWN")
def _received_chain(c: Context) -> Iterator[str]:
    """A relay on the way recorded that its client, at a public address, had no reverse DNS
    name, as Postfix writes it: `from helo (unknown [IP])`. Mail servers have PTR names;
    bots on home lines mostly do not (SpamAssassin's and rspamd's RDNS_NONE ask the same
    of the last relay). Not qmail's `from unknown (HELO x) (IP)`: qmail writes that when it
    does not look names up at all. Authenticated submissions (a user on any network) and
    our own hop (RDNS_NONE asks DNS about that one) are skipped."""
    for value in c.message.header_all("Received")[:RECEIVED_HOPS]:
        match = RECEIVED_FROM_UNKNOWN.match(value)
        if match is None or OWN_HOP in value or RECEIVED_AUTHENTICATED.search(value):
            continue
        if _public_ipv4(match[1]):
            yield "RCVD_RDNS_UNKNOWN"
            return


# Fields the author's program writes when it composes the message (RFC 5322 3.6).
ORIGIN_HEADERS = frozenset(["from", "date", "message-id", "to", "subject"])


@check("RCVD_BELOW_ORIGIN")
def _received_below_origin(c: Context) -> Iterator[str]:
    """A Received field below the fields the author's program wrote (From, Date,
    Message-ID, To, Subject). Each relay prepends its Received line (RFC 5321 4.4), so the
    trace sits above the message's own fields; one among or under them was written by the
    sending program itself: a made-up hop, as ratware adds to look relayed. Not on list
    mail (its software rebuilds the header and may keep the original's order)."""
    seen_origin = False
    for name, _ in c.message.headers:
        lowered = name.lower()
        if lowered in ORIGIN_HEADERS:
            seen_origin = True
        elif seen_origin and lowered == "received":
            if not is_list_message(c.message):
                yield "RCVD_BELOW_ORIGIN"
            return


# An encoded word (=?charset?B|Q?...?=) right against an address's `@`: in its local part.
ENCODED_WORD_AT = re.compile(rb"=\?[^?\s]+\?[bq]\?[^?\s]*\?=@", re.IGNORECASE)
ADDRESS_FIELD = re.compile(rb"^(?:from|to|cc|reply-to|sender):", re.IGNORECASE | re.MULTILINE)
MAX_HEAD = 65_536  # bytes of the raw message searched for its header
HEAD_END = re.compile(rb"\r?\n\r?\n")


def _raw_fields(c: Context, name: re.Pattern[bytes]) -> Iterator[tuple[bytes, int, int]]:
    """(header, start, end) of each field of the raw header whose name `name` matches, its
    folded continuation lines included: for rules on bytes the parsed header has decoded."""
    head = c.message.raw[:MAX_HEAD]
    end = HEAD_END.search(head)  # the first blank line, whatever the line ends
    head = head if end is None else head[: end.start()]
    for match in name.finditer(head):
        field_end = match.end()
        while True:
            line_end = head.find(b"\n", field_end)
            if line_end < 0 or head[line_end + 1 : line_end + 2] not in (b" ", b"\t"):
                field_end = len(head) if line_end < 0 else line_end
                break
            field_end = line_end + 1
        yield head, match.end(), field_end


@check("ENCODED_WORD_IN_ADDRESS")
def _encoded_word_in_address(c: Context) -> Iterator[str]:
    """An RFC 2047 encoded word inside an address (`=?iso-2022-jp?B?...?=@host`): RFC 2047
    section 5 forbids one in an addr-spec, so no mail program writes it; a bulk tool
    that encodes every header field whole does."""
    if b"?=@" not in c.message.raw[:MAX_HEAD]:
        return
    for head, start, end in _raw_fields(c, ADDRESS_FIELD):
        if ENCODED_WORD_AT.search(head, start, end):
            yield "ENCODED_WORD_IN_ADDRESS"
            return


SUBJECT_FIELD = re.compile(rb"^subject:", re.IGNORECASE | re.MULTILINE)
EIGHT_BIT = re.compile(rb"[\x80-\xff]")


@check("SUBJ_NEEDS_ENCODING")
def _subject_needs_encoding(c: Context) -> Iterator[str]:
    """Raw 8-bit bytes in the Subject field: RFC 2047 asks for an encoded word, which mail
    programs write; bulk tools paste the text in as it is (rspamd's SUBJ_NEEDS_ENCODING).
    Not UTF-8 in an SMTPUTF8 transaction, where RFC 6532 allows it as it is."""
    for head, start, end in _raw_fields(c, SUBJECT_FIELD):
        if EIGHT_BIT.search(head, start, end):
            if c.smtputf8 and _is_utf8(head[start:end]):
                continue
            yield "SUBJ_NEEDS_ENCODING"
            return


def _is_utf8(value: bytes) -> bool:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# --- sender authentication ---------------------------------------------------------------

SPF_TAGS = {
    "pass": "SPF_ALLOW",
    "fail": "SPF_FAIL",
    "softfail": "SPF_SOFTFAIL",
    "neutral": "SPF_NEUTRAL",
    "none": "SPF_NA",
    "permerror": "SPF_PERMFAIL",
    "temperror": "SPF_DNSFAIL",
}
DKIM_TAGS = {
    "pass": "DKIM_ALLOW",
    "fail": "DKIM_REJECT",
    "neutral": "DKIM_REJECT",
    "permerror": "DKIM_PERMFAIL",
    "temperror": "DKIM_TEMPFAIL",
}
ARC_TAGS = {"pass": "ARC_ALLOW", "fail": "ARC_REJECT", "temperror": "ARC_DNSFAIL", "none": "ARC_NA"}


@check(
    "AUTH_NA",
    *SPF_TAGS.values(),
    *DKIM_TAGS.values(),
    "DKIM_NA",
    *ARC_TAGS.values(),
    "DMARC_POLICY_ALLOW",
    "DMARC_POLICY_REJECT",
    "DMARC_POLICY_QUARANTINE",
    "DMARC_POLICY_SOFTFAIL",
    "DMARC_NA",
    "DMARC_BAD_POLICY",
    "DMARC_DNSFAIL",
)
def _authentication(c: Context) -> Iterator[str]:
    auth = c.auth
    if auth is None:
        return
    yield SPF_TAGS.get(auth.spf.result, "SPF_NA")
    # RFC 6376 3.6.1: a signature whose key is in testing mode is scored as no signature
    counted = [r for r in auth.dkim if r.counts]
    if counted:
        yield from dict.fromkeys(DKIM_TAGS.get(r.result, "DKIM_REJECT") for r in counted)
    else:
        yield "DKIM_NA"
    yield ARC_TAGS.get(auth.arc.result, "ARC_REJECT")
    dmarc = auth.dmarc
    if dmarc.result == "pass":
        yield "DMARC_POLICY_ALLOW"
    elif dmarc.result == "fail":
        yield {
            "reject": "DMARC_POLICY_REJECT",
            "quarantine": "DMARC_POLICY_QUARANTINE",
        }.get(dmarc.policy, "DMARC_POLICY_SOFTFAIL")
    elif dmarc.result == "temperror":
        yield "DMARC_DNSFAIL"
    elif dmarc.result == "permerror":
        yield "DMARC_BAD_POLICY"
    else:
        yield "DMARC_NA"
    if (
        auth.spf.result in ("none", "neutral")
        and not any(r.verified for r in auth.dkim)
        and dmarc.result == "none"
        and auth.arc.result == "none"
    ):
        yield "AUTH_NA"


# --- content ---------------------------------------------------------------------------


# A MIME boundary line and a part's header at the start of a line: the body is multipart.
PART_HEADER = re.compile(
    r"^--\S{6,}[ \t]*\r?\n(?:[ \t]*\r?\n)?Content-(?:Type|Transfer-Encoding)[ \t]*:",
    re.IGNORECASE | re.MULTILINE,
)


@check(
    "SINGLE_SHORT_PART",
    "MIME_HTML_ONLY",
    "HTML_SHORT_TEXT_IMAGES",
    "ZERO_FONT",
    "HTML_FONT_LARGE",
    "BODY_EXCESS_EXCLAIM",
    "BROKEN_MIME",
    "MIME_BOUNDARY_UNDECLARED",
    "HTML_MIME_NO_HTML_TAG",
)
def _structure(c: Context) -> Iterator[str]:
    m = c.message
    texts = m.text_parts + m.html_text
    if m.part_count == 1 and len(texts) == 1 and len(WORD.findall(texts[0])) < 10:
        yield "SINGLE_SHORT_PART"
    if m.html_parts and not m.text_parts:
        yield "MIME_HTML_ONLY"
    if m.html_parts:
        images = sum(len(IMG.findall(h)) for h in m.html_parts)
        words = sum(len(WORD.findall(t)) for t in m.html_text)
        if images >= 1 and words < 40 * images and words < 200:
            yield "HTML_SHORT_TEXT_IMAGES"
        if any(ZERO_FONT.search(h) for h in m.html_parts):
            yield "ZERO_FONT"
        if any(FONT_LARGE.search(t[0]) for h in m.html_parts for t in FONT_TAG.finditer(h)):
            yield "HTML_FONT_LARGE"
        # HTML-only mail (SpamAssassin's rule): Gmail's alternative beside a text part is a
        # bare <div>, so a text-and-HTML message without the tag is ordinary mail.
        if not m.text_parts and any(not HTML_ROOT.search(h) for h in m.html_parts):
            yield "HTML_MIME_NO_HTML_TAG"
    if sum(len(EXCLAIM.findall(t[:100_000])) for t in texts) >= 3:
        yield "BODY_EXCESS_EXCLAIM"
    if m.defects:
        yield "BROKEN_MIME"
    # Multipart bodies under a header that declares no multipart type: readers show the
    # boundaries and part headers as text, filters that trust the header miss the parts.
    single = m.part_count == 1 and not m.structure[0].startswith("multipart/")
    if single and any(PART_HEADER.search(t, 0, 20_000) for t in texts):
        yield "MIME_BOUNDARY_UNDECLARED"


# http://www.bank.example@evil.example/: what stands before the @ reads as the host to a
# person and is only a user name to the browser (RFC 3986 userinfo).
URL_USERINFO = re.compile(r"https?://[^/?#\s@]*@", re.IGNORECASE)


@check("URL_ANCHOR_MISMATCH", "URL_NUMERIC_IP", "URL_MANY", "URL_USERINFO")
def _links(c: Context) -> Iterator[str]:
    m = c.message
    for anchor in m.anchors:
        text = anchor.text.strip()
        if not HOST_LIKE.match(text):
            continue
        shown, target = url_host(text), url_host(anchor.href)
        if shown and target and organizational_domain(shown) != organizational_domain(target):
            yield "URL_ANCHOR_MISMATCH"
            break
    for url in m.urls:
        host = re.match(r"https?://(?:[^/@]*@)?\[?([^/:\]?#]+)", url, re.I)
        if host and _ip_literal(host[1]):
            yield "URL_NUMERIC_IP"
            break
    if len(m.urls) > 30:
        yield "URL_MANY"
    if any(URL_USERINFO.match(url) for url in m.urls):
        yield "URL_USERINFO"


@check("MIME_BAD_EXTENSION", "MIME_DOUBLE_BAD_EXTENSION")
def _attachments(c: Context) -> Iterator[str]:
    bad = double = False
    for attachment in c.message.attachments:
        parts = attachment.filename.lower().strip().rstrip(".").split(".")
        if len(parts) < 2:
            continue
        if parts[-1] in BAD_EXTENSIONS:
            bad = True
            if len(parts) >= 3 and parts[-2] in DISGUISE_EXTENSIONS:
                double = True
    if bad:
        yield "MIME_BAD_EXTENSION"
    if double:
        yield "MIME_DOUBLE_BAD_EXTENSION"


def _mixed_script(text: str) -> bool:
    if not LOOKALIKE.search(text):  # most text has no Greek or Cyrillic letter at all
        return False
    for word in WORD.findall(text):
        if len(word) >= 3 and LATIN.search(word) and LOOKALIKE.search(word):
            return True
    return False


@check(
    "MIXED_CHARSET",
    "SUBJ_MIXED_CHARSET",
    "CTYPE_MIXED_CHARSETS",
    "MISSING_CHARSET",
    "R_BAD_CTE_7BIT",
)
def _charsets(c: Context) -> Iterator[str]:
    m = c.message
    if _mixed_script(m.subject):
        yield "SUBJ_MIXED_CHARSET"
    if any(_mixed_script(t[:20_000]) for t in m.text_parts + m.html_text):
        yield "MIXED_CHARSET"
    if len(m.charsets - {"us-ascii"}) >= 3:
        yield "CTYPE_MIXED_CHARSETS"
    if m.undeclared_8bit:
        yield "MISSING_CHARSET"
    if m.bad_7bit:
        yield "R_BAD_CTE_7BIT"
