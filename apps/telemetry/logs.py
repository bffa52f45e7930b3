"""mailadmin's own log records, kept for superadmins: a logging handler that writes one
JSON line per record to a size-rotated file under MAILADMIN_VAR_DIR, and the reader behind
GET /api/logs and the Telemetry -> Logs page.

A file, not a database table: a database error being logged must never log again while
being stored (a ring buffer in the database would loop), and a file costs the request
nothing. Records look like the management API's example: `timestamp`, `level`, `event`
(the message), `event_id` (`<logger without apps./mailadmin.>.<message key>`) and
`details` (`key = value, ...`, strings quoted, from the record's `extra` fields).

Secrets never reach the file: extra fields named like a secret are replaced by
`"[redacted]"`, and passwords, tokens and Authorization values are masked in the text.
"""

from __future__ import annotations

import fcntl
import json
import logging
import logging.handlers
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "WARN": 30, "ERROR": 40, "CRITICAL": 50}
MAX_LINE = 8192  # a record longer than this is cut (its details first)
MAX_TOTAL = 10_000  # matches counted at most (the list's total is capped there)
REDACTED = "[redacted]"

# Attributes every LogRecord has: anything else came from `extra=`.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
_SECRET_NAME = re.compile(
    r"pass(word|wd)?|secret|token|authorization|api[_-]?key|cookie|credential|private[_-]?key",
    re.IGNORECASE,
)
# In free text: "Authorization: Bearer x", "password=x", "token: x", "Basic x"...
_SECRET_TEXT = [
    re.compile(r"(?i)\b(authorization\s*[:=]\s*)(?:(bearer|basic)\s+)?\S+"),
    # a credential, not a word: it holds a digit, "=", "+" or "/" ("Basic authentication" stays)
    re.compile(r"(?i)\b(bearer|basic)(\s+)(?=[A-Za-z._~-]*[0-9=+/])[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(
        r"(?i)\b((?:pass(?:word|wd)?|secret|token|api[_-]?key|apikey|cookie)\w*"
        r"[\"']?\s*[:=]\s*)(\"[^\"]*\"|'[^']*'|\S+)"
    ),
]
_KEY_WORDS = re.compile(r"[a-z0-9]+")


def redact_text(text: str) -> str:
    text = _SECRET_TEXT[0].sub(lambda m: f"{m[1]}{m[2] + ' ' if m[2] else ''}{REDACTED}", text)
    text = _SECRET_TEXT[1].sub(lambda m: f"{m[1]}{m[2]}{REDACTED}", text)
    return _SECRET_TEXT[2].sub(lambda m: f"{m[1]}{REDACTED}", text)


def event_id(logger_name: str, template: str, key: str | None = None) -> str:
    """`apps.queue.remote` + "STARTTLS with %s failed (%s)" -> `queue.remote.starttls-with-failed`.

    An explicit key (`extra={"event_id": "request-body"}` or `{"event": ...}`) wins."""
    name = re.sub(r"^(apps|mailadmin)\.", "", logger_name or "root")
    if key is None:
        plain = re.sub(r"%(\([^)]*\))?[-#0 +]*\d*(\.\d+)?[sdifrxXeEgGca%]", " ", template)
        plain = re.sub(r"\{[^}]*\}", " ", plain)
        key = "-".join(_KEY_WORDS.findall(plain.lower())[:4]) or "message"
    return f"{name}.{key}"


def _value(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(str(value), ensure_ascii=False)


def details_of(fields: dict[str, Any]) -> str:
    return ", ".join(
        f"{name} = {_value(REDACTED if _SECRET_NAME.search(name) else value)}"
        for name, value in fields.items()
    )


def entry_of(record: logging.LogRecord) -> dict[str, str]:
    extra = {k: v for k, v in vars(record).items() if k not in _STANDARD and k[:1] != "_"}
    key = extra.pop("event_id", None) or extra.pop("event", None)
    try:
        event = record.getMessage()
    except Exception:  # bad %-args: show the template rather than lose the record
        event = str(record.msg)
    if record.exc_info and record.exc_info[1] is not None:
        extra["error"] = f"{type(record.exc_info[1]).__name__}: {record.exc_info[1]}"
    details = redact_text(details_of(extra))
    if len(details) > MAX_LINE // 2:
        details = details[: MAX_LINE // 2] + "..."
    return {
        "timestamp": datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "level": record.levelname,
        "event": redact_text(event)[: MAX_LINE // 2],
        "event_id": event_id(record.name, str(record.msg), key and str(key)),
        "details": details,
    }


class JsonLinesHandler(logging.handlers.RotatingFileHandler):
    """One JSON object per line; rotated by size, `backups` older files kept.

    Every web, worker and SMTP process writes the same file, so each write and each
    rotation happens under a lock on a file beside it (flock), and a process that finds
    the file rotated by another reopens it before writing: no record lands in a rotated
    copy, no copy is rotated twice, no file grows past its size by more than a record.

    Writing a file logs nothing, so a failure here (disk full) cannot loop: it goes to
    stderr through logging's own handleError."""

    def __init__(self, filename: str | Path, max_bytes: int, backups: int) -> None:
        path = Path(filename)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_path = path.parent / f".{path.name}.lock"
        self._lock_file: Any = None
        self._lock_pid = 0
        super().__init__(filename, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(entry_of(record), ensure_ascii=False)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            lock = self._process_lock()
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                self._follow_rotation()
                super().emit(record)  # rolls over first when the record would not fit
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        except Exception:
            self.handleError(record)

    def _process_lock(self) -> Any:
        # Opened per process: a descriptor inherited over fork() shares its flock with
        # the parent, which would then exclude nobody.
        if self._lock_file is None or self._lock_pid != os.getpid():
            self._lock_file = open(self._lock_path, "a")  # noqa: SIM115 - held for life
            self._lock_pid = os.getpid()
        return self._lock_file

    def _follow_rotation(self) -> None:
        """Reopen the file when another process rotated it away from our descriptor."""
        if self.stream is None:
            return
        try:
            current = os.stat(self.baseFilename).st_ino
        except FileNotFoundError:
            current = None
        if current != os.fstat(self.stream.fileno()).st_ino:
            self.stream.close()
            self.stream = self._open()

    def close(self) -> None:
        super().close()
        if self._lock_file is not None and self._lock_pid == os.getpid():
            self._lock_file.close()
        self._lock_file = None


# --- reading back ----------------------------------------------------------------------


@dataclass(frozen=True)
class LogFilter:
    level: int = 0  # minimum
    text: str = ""  # case-insensitive, in event, event_id or details
    since: datetime | None = None

    def matches(self, entry: dict[str, str]) -> bool:
        if LEVELS.get(entry.get("level", ""), 0) < self.level:
            return False
        if self.text:
            needle = self.text.lower()
            haystack = " ".join(entry.get(k, "") for k in ("event", "event_id", "details"))
            if needle not in haystack.lower():
                return False
        return True


def _files(path: Path) -> list[Path]:
    """The live file, then its rotated copies (.1 newest)."""
    found = [path] if path.exists() else []
    n = 1
    while (older := path.with_name(f"{path.name}.{n}")).exists():
        found.append(older)
        n += 1
    return found


def newest_first(path: Path, since: datetime | None = None) -> Iterator[dict[str, str]]:
    since_text = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if since else ""
    for file in _files(path):
        try:
            lines = file.read_bytes().splitlines()
        except FileNotFoundError:  # rotated away meanwhile
            continue
        for line in reversed(lines):
            try:
                entry = json.loads(line)
            except ValueError:  # a line cut by a crash mid-write
                continue
            if not isinstance(entry, dict):
                continue
            if since_text and entry.get("timestamp", "") < since_text:
                return  # older than `since`, and so is everything after
            yield entry


def log_page(
    path: Path, *, filters: LogFilter, offset: int, limit: int, max_total: int = MAX_TOTAL
) -> tuple[list[dict[str, str]], int]:
    """Entries [offset, offset+limit) of the matching ones, newest first, and how many
    match (counted up to max_total, or further when the page itself lies beyond)."""
    items: list[dict[str, str]] = []
    matched = 0
    stop = max(max_total, offset + limit)
    for entry in newest_first(path, filters.since):
        if not filters.matches(entry):
            continue
        if offset <= matched < offset + limit:
            items.append(
                {k: str(entry.get(k, "")) for k in ("timestamp", "level", "event", "event_id")}
                | {"details": str(entry.get("details", ""))}
            )
        matched += 1
        if matched >= stop:
            break
    return items, matched
