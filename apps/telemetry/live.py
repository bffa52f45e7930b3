"""Live streams (Server-Sent Events) and the short-lived tokens that open them.

A browser's EventSource cannot send an Authorization header, so a live stream is opened
with `?token=`: a token signed with SECRET_KEY (django.core.signing) naming the principal
and the one stream it opens ("metrics" or "tracing"), valid for
MAILADMIN_TELEMETRY_TOKEN_SECONDS and for one stream (mailadmin.api.streams). A stream
lasts at most MAILADMIN_TELEMETRY_LIVE_SECONDS; the client reconnects with a fresh token.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.utils import timezone

from apps.accounts.models import Principal
from apps.telemetry.metrics import metrics_current
from apps.telemetry.models import TraceEvent
from apps.telemetry.selectors import require_telemetry_reader
from apps.telemetry.traces import event_as_dict
from mailadmin.errors import ServiceError

SALT = "telemetry.live"
STREAMS = ("metrics", "tracing")
MIN_INTERVAL, MAX_INTERVAL, DEFAULT_INTERVAL = 1.0, 60.0, 5.0
POLL_SECONDS = 1.0  # how often the trace stream looks for new events


class InvalidToken(ServiceError):
    status = 401
    title = "Unauthorized"


def token_issue(*, actor: Principal, stream: str) -> str:
    require_telemetry_reader(actor)
    # The nonce tells apart two tokens issued within a second: each is spent on its own.
    payload = {"p": actor.pk, "s": stream, "n": secrets.token_urlsafe(6)}
    return signing.dumps(payload, salt=SALT, compress=True)


def token_seconds() -> int:
    return settings.MAILADMIN_TELEMETRY_TOKEN_SECONDS


def token_principal(token: str, *, stream: str) -> Principal:
    """The principal a token was issued to, if it is valid for `stream`, unexpired, and
    its principal may still see telemetry."""
    if not token:
        raise InvalidToken("Missing token: obtain one from /api/telemetry/live/*-token.")
    try:
        value = signing.loads(
            token[:1024], salt=SALT, max_age=settings.MAILADMIN_TELEMETRY_TOKEN_SECONDS
        )
    except signing.SignatureExpired:
        raise InvalidToken("The token has expired: obtain a new one.") from None
    except signing.BadSignature:
        raise InvalidToken("Invalid token.") from None
    if not isinstance(value, dict) or value.get("s") != stream:
        raise InvalidToken(f"This token does not open the {stream} stream.")
    actor = Principal.objects.filter(pk=value.get("p")).first()
    if actor is None or not actor.is_active or not actor.reaches_all_tenants:
        raise InvalidToken("The token's principal may no longer see telemetry.")
    return actor


def parse_interval(raw: str | None) -> float:
    if raw in (None, ""):
        return DEFAULT_INTERVAL
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not MIN_INTERVAL <= value <= MAX_INTERVAL:
        raise ServiceError(
            f"Invalid value for field interval: seconds between {MIN_INTERVAL:g} and "
            f"{MAX_INTERVAL:g}.",
            field="interval",
        )
    return value


def sse(event: str, data) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _deadline() -> float:
    return time.monotonic() + settings.MAILADMIN_TELEMETRY_LIVE_SECONDS


def metrics_stream(*, names: list[str], interval: float) -> Iterator[bytes]:
    """The last minute's totals every `interval` seconds, until the stream's time is up."""
    end = _deadline()
    while True:
        yield sse("metrics", metrics_current(names=names, window=timedelta(minutes=1)))
        if time.monotonic() + interval > end:
            break
        time.sleep(interval)
    yield sse("end", {"reason": "Stream time is up; reconnect with a new token."})


def traces_stream(*, filter: str) -> Iterator[bytes]:  # noqa: A002 - the spec's name
    """New trace events (of types starting with `filter`, when given) as they are stored."""
    end = _deadline()
    last = TraceEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    since = timezone.now()
    yield sse("start", {"filter": filter, "since": since.isoformat()})
    while True:
        top = TraceEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
        found = TraceEvent.objects.filter(id__gt=last, id__lte=top).order_by("id")
        if filter:
            found = found.filter(type__startswith=filter)
        for event in found[:500]:  # a flood is cut short rather than held in memory
            yield sse("trace", {"traceId": event.trace_id, **event_as_dict(event)})
        last = top
        if time.monotonic() + POLL_SECONDS > end:
            break
        time.sleep(POLL_SECONDS)
    yield sse("end", {"reason": "Stream time is up; reconnect with a new token."})
