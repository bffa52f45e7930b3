"""The Sender Rewriting Scheme (SRS, as libsrs2 and postsrsd implement it), pure functions.

A message to a hosted forwarding address that we relay to another domain keeps its
original envelope sender only at the cost of SPF failing at the destination (we are not
an authorised sender of the original domain). So the return path is rewritten into our
domain, in a form only we can reverse:

    alice@example.org  ->  SRS0=HHHH=TT=example.org=alice@forwarder.test

HHHH is a keyed hash (HMAC-SHA1, base64, the first `HASH_LENGTH` characters) of the
timestamp, host and user, lower-cased; TT the day number mod 1024 in base32. A bounce to
that address comes back to our MX, where `reverse` checks the hash and the age and yields
the original sender. An address that is already SRS0 at another forwarder becomes SRS1
(the first forwarder's host kept, so a bounce goes back through it):

    SRS0=opaque@hop1.test  ->  SRS1=HHHH=hop1.test==opaque@forwarder.test

The output is byte for byte postsrsd's (tests/unit/queue/test_srs.py holds its vectors), so
addresses rewritten by either can be reversed by the other with the same secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Sequence

BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
DAY = 86400
TICK_SLOTS = 32 * 32  # two base32 characters of day numbers
HASH_LENGTH = 4
DEFAULT_MAX_AGE_DAYS = 21
_TAG = re.compile(r"^(SRS[01])([-+=])", re.IGNORECASE)


class SrsError(ValueError):
    """An SRS address we cannot (or must not) reverse; the text is the reason, as the
    inbound MX quotes it at RCPT."""


class NotSrs(SrsError):
    pass


def is_srs(address: str) -> bool:
    local = address.rpartition("@")[0]
    return bool(_TAG.match(local))


def _split(address: str) -> tuple[str, str]:
    local, at, host = address.rpartition("@")
    if not at or not local or not host:
        raise SrsError("not an address")
    return local, host


def timestamp(now: float) -> str:
    day = int(now // DAY)
    return BASE32[(day >> 5) & 31] + BASE32[day & 31]


def _timestamp_valid(stamp: str, now: float, max_age_days: int) -> bool:
    if len(stamp) != 2:
        return False
    value = 0
    for char in stamp.upper():
        index = BASE32.find(char)
        if index < 0:
            return False
        value = value * 32 + index
    today = int(now // DAY) % TICK_SLOTS
    while today < value:  # the cycle wrapped since
        today += TICK_SLOTS
    return today - value <= max_age_days


def _hash(secret: str, *parts: str) -> str:
    mac = hmac.new(secret.encode(), digestmod=hashlib.sha1)
    for part in parts:
        mac.update(part.lower().encode())
    return base64.b64encode(mac.digest()).decode()[:HASH_LENGTH]


def _hash_ok(given: str, secrets: Sequence[str], *parts: str) -> bool:
    """Any of `secrets` (the newest first; older ones still reverse what they signed);
    case-insensitively as a fallback, since some MTAs smash the case of local parts."""
    if len(given) < HASH_LENGTH:
        return False
    wanted = [_hash(secret, *parts) for secret in secrets]
    if any(hmac.compare_digest(given, w) for w in wanted):
        return True
    return any(hmac.compare_digest(given.lower(), w.lower()) for w in wanted)


def forward(sender: str, *, domain: str, secret: str, now: float) -> str:
    """`sender` rewritten into `domain` (SRS0, or SRS1 for an address that already is SRS).
    A sender already in `domain` is returned as it is (SPF passes for it anyway)."""
    local, host = _split(sender)
    if host.lower() == domain.lower():
        return sender
    tag = _TAG.match(local)
    if tag and tag.group(1).upper() == "SRS1":
        # SRS1=HHHH=firsthop==opaque@hop: keep the first hop, sign it again for us
        _, _, rest = local[len(tag.group(0)) :].partition("=")
        first_hop, sep, opaque = rest.partition("=")
        if first_hop and sep and opaque:
            return f"SRS1={_hash(secret, first_hop, opaque)}={first_hop}={opaque}@{domain}"
    if tag and tag.group(1).upper() == "SRS0":
        opaque = local[len("SRS0") :]  # the separator stays: "=HHHH=TT=host=user"
        return f"SRS1={_hash(secret, host, opaque)}={host}={opaque}@{domain}"
    stamp = timestamp(now)
    return f"SRS0={_hash(secret, stamp, host, local)}={stamp}={host}={local}@{domain}"


def reverse(
    address: str, *, secrets: Sequence[str], now: float, max_age_days: int = DEFAULT_MAX_AGE_DAYS
) -> str:
    """The address an SRS address stands for (the original sender for SRS0, the first
    forwarder's SRS0 address for SRS1). Raises NotSrs for an ordinary address, SrsError
    with the reason for a forged, damaged or expired one."""
    local, _ = _split(address)
    tag = _TAG.match(local)
    if not tag:
        raise NotSrs("not an SRS address")
    rest = local[len(tag.group(0)) :]
    if tag.group(1).upper() == "SRS1":
        given, sep, rest = rest.partition("=")
        if not given or not sep:
            raise SrsError("no hash in SRS1 address")
        first_hop, sep, opaque = rest.partition("=")
        if not first_hop or not sep:
            raise SrsError("no host in SRS1 address")
        if not opaque:
            raise SrsError("no user in SRS1 address")
        if not _hash_ok(given, secrets, first_hop, opaque):
            raise SrsError("hash invalid")
        return f"SRS0{opaque}@{first_hop}"
    fields = rest.split("=", 3)
    if not fields[0]:
        raise SrsError("no hash in SRS0 address")
    if len(fields) < 2 or not fields[1]:
        raise SrsError("no timestamp in SRS0 address")
    if len(fields) < 3 or not fields[2]:
        raise SrsError("no host in SRS0 address")
    if len(fields) < 4 or not fields[3]:
        raise SrsError("no user in SRS0 address")
    given, stamp, host, user = fields
    if not _hash_ok(given, secrets, stamp, host, user):
        raise SrsError("hash invalid")
    if not _timestamp_valid(stamp, now, max_age_days):
        raise SrsError("timestamp out of date")
    return f"{user}@{host}"


# --- with the server's settings ------------------------------------------------------------


def secrets() -> list[str]:
    """MAILADMIN_SRS_SECRET (comma-separated: the first signs, every one reverses), else
    a key derived from SECRET_KEY (so rotating SECRET_KEY voids outstanding addresses)."""
    from django.conf import settings

    configured = [s.strip() for s in settings.MAILADMIN_SRS_SECRET.split(",") if s.strip()]
    if configured:
        return configured
    derived = hmac.new(settings.SECRET_KEY.encode(), b"mailadmin srs", hashlib.sha256)
    return [derived.hexdigest()]


def rewrite_sender(sender: str, *, forwarding_domain: str, now: float | None = None) -> str:
    """The return path for a copy we relay on behalf of `forwarding_domain` (the hosted
    domain of the forwarding address): SRS-rewritten unless SRS is off, the sender is null
    or already in a domain hosted here (we are an authorised sender of those)."""
    import time

    from django.conf import settings

    if not settings.MAILADMIN_SRS or not sender or "@" not in sender:
        return sender
    from apps.domains.selectors import domain_hosted

    if domain_hosted(sender.rpartition("@")[2].lower()) is not None:
        return sender
    domain = settings.MAILADMIN_SRS_DOMAIN or forwarding_domain
    return forward(sender, domain=domain, secret=secrets()[0], now=now or time.time())


def ours(address: str) -> bool:
    """An SRS address in a domain hosted here (or MAILADMIN_SRS_DOMAIN): one we made."""
    from django.conf import settings

    from apps.domains.selectors import domain_hosted

    if not is_srs(address):
        return False
    domain = address.rpartition("@")[2].strip().rstrip(">").rstrip(".").lower()
    if settings.MAILADMIN_SRS_DOMAIN and domain == settings.MAILADMIN_SRS_DOMAIN:
        return True
    return domain_hosted(domain) is not None


def unwrap(address: str) -> str:
    """Where mail to `address` really goes: our SRS addresses reversed (SRS1 chains that
    come back through us included), anything else as it is. Raises SrsError."""
    for _ in range(4):
        if not ours(address):
            return address
        address = reverse_configured(address)
    return address


def reverse_configured(address: str, *, now: float | None = None) -> str:
    import time

    from django.conf import settings

    return reverse(
        address,
        secrets=secrets(),
        now=now or time.time(),
        max_age_days=settings.MAILADMIN_SRS_MAX_AGE_DAYS,
    )
