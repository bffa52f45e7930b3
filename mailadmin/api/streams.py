"""Server-Sent Events responses: bounded per process, opened by a token used once.

An open stream holds one web worker thread for as long as it lasts (minutes, for the live
telemetry streams): without a bound a handful of clients, or one stuck in a reconnect
loop, would take every thread and the console with them. So each process serves at most
MAILADMIN_LIVE_STREAMS_MAX streams at once; one more is a 429 before it starts.

EventSource cannot send headers, so a stream's credential is a `?token=` in its URL, where
proxies and access logs may keep it: each token opens one stream only (a table remembers
a spent token for as long as it would be valid).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import StreamingHttpResponse
from django.utils import timezone

from mailadmin.core.models import SpentToken
from mailadmin.errors import ServiceError


class TooManyStreams(ServiceError):
    status = 429
    title = "Too Many Requests"


_lock = threading.Lock()
_open = 0


def open_streams() -> int:
    return _open


class _Held:
    """The events, holding a slot until they end or the server closes the response
    (a client that goes away): a plain generator that never started would not run its
    `finally` on close."""

    def __init__(self, events: Iterator[bytes]):
        global _open
        with _lock:
            if _open >= settings.MAILADMIN_LIVE_STREAMS_MAX:
                raise TooManyStreams(
                    f"Too many live streams are open ({settings.MAILADMIN_LIVE_STREAMS_MAX}); "
                    "close one or try again later."
                )
            _open += 1
        self._events = iter(events)
        self._held = True

    def __iter__(self):
        return self

    def __next__(self) -> bytes:
        try:
            return next(self._events)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        global _open
        with _lock:
            if not self._held:
                return
            self._held = False
            _open -= 1
        close = getattr(self._events, "close", None)
        if close is not None:
            close()


class TokenSpent(ServiceError):
    status = 401
    title = "Unauthorized"


def spend(token: str, *, seconds: int) -> None:
    """Mark a checked token used, or TokenSpent if it was already."""
    now = timezone.now()
    digest = hashlib.sha256(token.encode()).hexdigest()
    try:
        with transaction.atomic():
            SpentToken.objects.create(
                digest=digest, expires_at=now + timedelta(seconds=seconds + 60)
            )  # a little past the token's own expiry
    except IntegrityError:
        raise TokenSpent("This token was already used: obtain a new one.") from None
    SpentToken.objects.filter(expires_at__lt=now).delete()  # an index range, mostly empty


def event_stream(events: Iterator[bytes], *, token: str, seconds: int) -> StreamingHttpResponse:
    """A text/event-stream response of `events`, opened by `token` (checked by the caller,
    valid `seconds`), which this spends; TokenSpent (401) or TooManyStreams (429)."""
    held = _Held(events)
    try:
        spend(token, seconds=seconds)
    except BaseException:  # spent, or the database failed: the slot goes back either way
        held.close()
        raise
    response = StreamingHttpResponse(held, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # a proxy must pass each event on at once
    return response
