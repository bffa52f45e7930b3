"""The one entry point of telemetry: `emit(type, trace_id=..., **data)`.

Every stage of the mail flow calls `emit` (a handful of calls each). A call only appends a
tuple to an in-memory buffer under a lock (about a microsecond, measured in the README);
a background thread per process writes the buffer in batches every
MAILADMIN_TELEMETRY_FLUSH_SECONDS (or sooner once MAILADMIN_TELEMETRY_BATCH events wait):
one upsert of the minute's metric buckets and one bulk insert of trace events.

The buffer is bounded (MAILADMIN_TELEMETRY_BUFFER events): past it new events are dropped
and counted (`telemetry.dropped`), so a stuck database never grows a process's memory.
What a crash loses is at most the unflushed buffer: telemetry only, never mail (the queue
and the store are written before any event about them is emitted).

With MAILADMIN_TELEMETRY_FLUSH_SECONDS = 0 (tests) no thread runs; `flush()` writes.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections import defaultdict
from datetime import UTC, datetime

from django.conf import settings

log = logging.getLogger(__name__)

# type -> (text, details): what the trace API shows for each event type.
EVENTS: dict[str, tuple[str, str]] = {
    "smtp.connection-start": ("SMTP connection started", "A new SMTP connection was started"),
    "smtp.connection-end": ("SMTP connection ended", "The SMTP connection was closed"),
    "smtp.mail-from": ("SMTP MAIL FROM command", "The remote client sent a MAIL FROM command"),
    "smtp.mail-from-refused": ("SMTP MAIL FROM refused", "The MAIL FROM command was refused"),
    "smtp.rcpt-to": ("SMTP RCPT TO command", "The remote client sent an RCPT TO command"),
    "smtp.rcpt-to-refused": ("SMTP RCPT TO refused", "The RCPT TO command was refused"),
    "smtp.message-accepted": ("Message accepted", "The message was accepted for delivery"),
    "smtp.message-rejected": ("Message rejected", "The message was refused after DATA"),
    "smtp.auth-success": ("SMTP AUTH succeeded", "The client authenticated"),
    "smtp.auth-failure": ("SMTP AUTH failed", "The client failed to authenticate"),
    "spam.verdict": ("Spam filter verdict", "The spam filter scored the message"),
    "submission.message-queued": ("Message queued", "A submitted message was queued"),
    "delivery.attempt": ("Delivery attempt", "A delivery attempt started"),
    "delivery.delivered": ("Message delivered", "The recipient's server accepted the message"),
    "delivery.deferred": ("Delivery deferred", "Delivery failed temporarily; will retry"),
    "delivery.failed": ("Delivery failed", "Delivery failed permanently"),
    "delivery.dsn-sent": ("DSN sent", "A delivery status notification was queued"),
    "fetch.run-start": ("Fetch run started", "A fetch job started fetching"),
    "fetch.run-end": ("Fetch run ended", "A fetch job finished"),
    "report.ingested": ("Report ingested", "An incoming report was stored"),
    "report.failed": ("Report ingestion failed", "An incoming report could not be read"),
    "telemetry.dropped": ("Telemetry dropped", "Events were dropped: the buffer was full"),
}

# event type -> (histogram name, the data key holding the observed value)
HISTOGRAMS: dict[str, tuple[str, str]] = {
    "smtp.message-accepted": ("message.size", "size"),
    "submission.message-queued": ("message.size", "size"),
    "delivery.delivered": ("delivery.time", "deliveryTime"),
    "spam.verdict": ("spam.score", "score"),
}

TRACE_KINDS = {
    "smtp": "smtp",
    "spam": "smtp",
    "submission": "smtp",
    "delivery": "delivery",
    "fetch": "fetch",
    "report": "report",
}

_lock = threading.Lock()
_wake = threading.Event()
_buffer: list[tuple[str, str | None, datetime, dict]] = []
_dropped = 0
_thread: threading.Thread | None = None
_pid = 0


def emit(type: str, trace_id: str | None = None, **data) -> None:  # noqa: A002 - the spec's name
    """Record one event: counted in its minute's `type` counter and, with a trace id, kept
    in that trace. Cheap and never raises into the caller."""
    global _dropped
    item = (type, trace_id, datetime.now(UTC), data)
    with _lock:
        if len(_buffer) >= settings.MAILADMIN_TELEMETRY_BUFFER:
            _dropped += 1
            return
        _buffer.append(item)
        waiting = len(_buffer)
    if _pid != os.getpid():
        _start_thread()
    if waiting >= settings.MAILADMIN_TELEMETRY_BATCH:
        _wake.set()


def take() -> tuple[list, int]:
    """Empty the buffer (and the drop count) for writing."""
    global _buffer, _dropped
    with _lock:
        items, dropped = _buffer, _dropped
        _buffer, _dropped = [], 0
    return items, dropped


def reset() -> None:
    take()


def pending() -> int:
    return len(_buffer)


def flush() -> int:
    """Write what the buffer holds; how many events were written."""
    from apps.telemetry.store import write

    items, dropped = take()
    if not items and not dropped:
        return 0
    write(items, dropped)
    return len(items)


def _start_thread() -> None:
    """One flusher per process (started again in a forked child, whose copy of the
    parent's thread does not run)."""
    global _thread, _pid
    with _lock:
        if _pid == os.getpid():
            return
        _pid = os.getpid()
        if settings.MAILADMIN_TELEMETRY_FLUSH_SECONDS <= 0:
            return
        _thread = threading.Thread(target=_run, name="telemetry-flush", daemon=True)
        _thread.start()


def _run() -> None:
    from django.db import close_old_connections, connection

    while settings.MAILADMIN_TELEMETRY_FLUSH_SECONDS > 0:  # 0 (tests): the writer ends
        _wake.wait(settings.MAILADMIN_TELEMETRY_FLUSH_SECONDS)
        _wake.clear()
        try:
            close_old_connections()
            flush()
        except Exception:  # telemetry never takes anything down; its events are lost
            log.exception("telemetry flush failed")
            connection.close()


@atexit.register
def _flush_at_exit() -> None:
    if _buffer and _pid == os.getpid() and settings.MAILADMIN_TELEMETRY_FLUSH_SECONDS > 0:
        try:
            flush()
        except Exception:
            log.exception("telemetry flush at exit failed")


def aggregate(items: list, dropped: int) -> dict[tuple[datetime, str], list]:
    """(minute, name) -> [kind, count, sum] for the events of a batch."""
    buckets: dict[tuple[datetime, str], list] = defaultdict(lambda: ["counter", 0, 0.0])
    for type_, _trace, at, data in items:
        minute = at.replace(second=0, microsecond=0)
        buckets[(minute, type_)][1] += 1
        histogram = HISTOGRAMS.get(type_)
        if histogram is not None:
            value = data.get(histogram[1])
            if isinstance(value, int | float):
                bucket = buckets[(minute, histogram[0])]
                bucket[0] = "histogram"
                bucket[1] += 1
                bucket[2] += float(value)
    if dropped:
        minute = datetime.now(UTC).replace(second=0, microsecond=0)
        buckets[(minute, "telemetry.dropped")][1] += dropped
    return buckets


def trace_kind(type_: str) -> str:
    return TRACE_KINDS.get(type_.split(".", 1)[0], "other")
