"""From the bytes someone sent to the report documents inside them.

Reporters wrap reports in gzip (sometimes twice, sometimes with trailing garbage), zip
(sometimes with an empty member name) and mail (attachments of every content type, or the
whole body). `documents()` peels those layers lazily: a gzip layer is a stream that counts
what it produces and stops at the decompressed-size cap, so a bomb is refused after reading
a few megabytes, never expanded in memory.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import io
import re
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from typing import BinaryIO

from apps.reports.parsing.errors import Limits, ReportError, TooLarge
from mailadmin.mime import MimeTooDeep, message_from_bytes

CHUNK = 64 * 1024
HEAD = 4096
GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")
# A header line ("Name: value") or an mbox separator: the start of a mail message.
MIME_START = re.compile(rb"\A(?:From \S|[!-9;-~]{1,76}:)")
REPORT_TYPES = {
    "application/gzip",
    "application/x-gzip",
    "application/gzip-compressed",
    "application/x-gzip-compressed",
    "application/zip",
    "application/x-zip",
    "application/x-zip-compressed",
    "application/xml",
    "text/xml",
    "application/octet-stream",
    "application/tlsrpt+gzip",
    "application/tlsrpt+json",
    "application/tlsrpt",
    "application/json",
}
REPORT_SUFFIXES = (".xml", ".gz", ".zip", ".json", ".gzip", ".tlsrpt")


@dataclass
class Document:
    """One report inside a file: an XML or JSON stream, or a feedback (ARF) message."""

    kind: str  # "xml" | "json" | "feedback"
    name: str
    stream: BinaryIO | None = None
    message: Message | None = None
    raw: bytes = b""  # the message's bytes, for a feedback report's id when it has none


class Prefixed(io.RawIOBase):
    """A stream whose first bytes are read ahead (`head`) so layers can be recognised."""

    def __init__(self, source: BinaryIO, size: int = HEAD) -> None:
        self._source = source
        chunks, have = [], 0
        while have < size:
            chunk = source.read(size - have)
            if not chunk:
                break
            chunks.append(chunk)
            have += len(chunk)
        self.head = b"".join(chunks)
        self._pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._pos < len(self.head):
            n = min(len(buffer), len(self.head) - self._pos)
            buffer[:n] = self.head[self._pos : self._pos + n]
            self._pos += n
            return n
        data = self._source.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class ZipMember(io.RawIOBase):
    """A zip member's bytes, stopped at the decompressed cap or a bomb's expansion ratio.

    zipfile reads at most `compress_size` bytes of input, so that bounds what was consumed.
    """

    def __init__(self, source: BinaryIO, *, compressed: int, limits: Limits) -> None:
        self._source = source
        self._compressed = compressed
        self._limits = limits
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._source.read(len(buffer))
        self.count += len(data)
        if self.count > self._limits.max_decompressed:
            raise self._limits.decompressed_error()
        if self._limits.ratio_exceeded(self.count, self._compressed):
            raise self._limits.ratio_error()
        buffer[: len(data)] = data
        return len(data)


class Gunzip(io.RawIOBase):
    """Streaming gzip: several members in a row, trailing garbage ignored, output capped.

    `gzip.decompress` refuses a file with trailing bytes (Mimecast sends two); zlib's
    decompressobj stops at the end of the member and hands the rest back as unused_data.
    Output per call is bounded (`max_length`), so memory stays at one chunk whatever the
    compression ratio.
    """

    def __init__(self, source: BinaryIO, *, limits: Limits) -> None:
        self._source = source
        self._limits = limits
        self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._produced = 0
        self._consumed = 0
        self._done = False

    def readable(self) -> bool:
        return True

    def _next_input(self) -> bytes | None:
        """The bytes to inflate next, or None at the end of the gzip data."""
        inflate = self._inflate
        if inflate.eof:
            rest = inflate.unused_data or self._read()
            if not rest.startswith(GZIP_MAGIC):
                return None  # end of the last member; anything after it is garbage
            self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
            return rest
        if inflate.unconsumed_tail:
            return inflate.unconsumed_tail
        data = self._read()
        if not data:
            raise ReportError("The gzip data ends early: the file is truncated.")
        return data

    def _read(self) -> bytes:
        data = self._source.read(CHUNK)
        self._consumed += len(data)
        return data

    def readinto(self, buffer) -> int:
        while not self._done:
            data = self._next_input()
            if data is None:
                self._done = True
                break
            try:
                out = self._inflate.decompress(data, min(len(buffer), CHUNK))
            except zlib.error as exc:
                raise ReportError(f"The gzip data is corrupt ({exc}).") from None
            if out:
                self._produced += len(out)
                if self._produced > self._limits.max_decompressed:
                    raise self._limits.decompressed_error()
                if self._limits.ratio_exceeded(self._produced, self._consumed):
                    raise self._limits.ratio_error()
                buffer[: len(out)] = out
                return len(out)
        return 0


def read_capped(stream: BinaryIO, limit: int, error: TooLarge) -> bytes:
    """The rest of a stream in memory, refusing more than `limit` bytes.

    (A raw stream's read(n) may return less than n before the end, hence the loop.)
    """
    chunks, size = [], 0
    while chunk := stream.read(CHUNK):
        size += len(chunk)
        if size > limit:
            raise error
        chunks.append(chunk)
    return b"".join(chunks)


def _base_name(name: str, *suffixes: str) -> str:
    for suffix in suffixes:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def documents(data: bytes, *, name: str, limits: Limits) -> Iterator[Document]:
    """The reports inside `data` (a file as uploaded, or a message as received).

    Consume each document's stream before asking for the next: later layers read on from
    the same sources.
    """
    if len(data) > limits.max_compressed:
        raise limits.compressed_error()
    if not data.strip():
        raise ReportError("The file is empty.")
    yield from _from_stream(Prefixed(io.BytesIO(data)), name=name, limits=limits, depth=0)


def _from_stream(stream: Prefixed, *, name: str, limits: Limits, depth: int) -> Iterator[Document]:
    if depth > limits.max_depth:
        raise ReportError(f"{name}: containers nested more than {limits.max_depth} deep.")
    head = stream.head
    if not head.strip():
        raise ReportError("The file is empty." if depth == 0 else f"{name} is empty.")
    if head.startswith(GZIP_MAGIC):
        inner = Prefixed(Gunzip(stream, limits=limits))
        yield from _from_stream(
            inner, name=_base_name(name, ".gz", ".gzip"), limits=limits, depth=depth + 1
        )
        return
    if head.startswith(ZIP_MAGICS):
        yield from _from_zip(stream, name=name, limits=limits, depth=depth)
        return
    text = head
    for bom in BOMS:
        if text.startswith(bom):
            text = text[len(bom) :]
            break
    text = text.lstrip()
    if text.startswith(b"<"):
        yield Document(kind="xml", name=name, stream=stream)
    elif text[:1] in (b"{", b"["):
        yield Document(kind="json", name=name, stream=stream)
    elif MIME_START.match(head):
        raw = read_capped(stream, limits.max_compressed, limits.compressed_error())
        try:
            message = message_from_bytes(raw)
        except MimeTooDeep as exc:
            raise ReportError(exc.message) from None
        yield from _from_message(message, raw=raw, name=name, limits=limits, depth=depth)
    else:
        raise ReportError(
            f"{name} is not a report: neither XML, JSON, gzip, zip nor an email message."
            if depth
            else "Not a report: the file is neither XML, JSON, gzip, zip nor an email message."
        )


def _from_zip(stream: Prefixed, *, name: str, limits: Limits, depth: int) -> Iterator[Document]:
    # zipfile needs to seek: hold the archive in a spooled file (memory up to 8 MB, then disk).
    with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as spool:
        copied = 0
        while chunk := stream.read(CHUNK):
            copied += len(chunk)
            if copied > limits.max_decompressed:
                raise limits.decompressed_error()
            spool.write(chunk)
        spool.seek(0)
        try:
            archive = zipfile.ZipFile(spool)
            members = [i for i in archive.infolist() if not i.filename.endswith("/")]
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
            raise ReportError(f"The zip archive is corrupt ({exc}).") from None
        if not members:
            raise ReportError("The zip archive holds no file.")
        if len(members) > limits.max_members:
            raise ReportError(
                f"The zip archive holds {len(members)} files; at most {limits.max_members} "
                "are read."
            )
        for info in members:
            # Declared sizes can lie both ways: these refuse the honest bomb at once, and
            # ZipMember below stops a lying one.
            if info.file_size > limits.max_decompressed:
                raise limits.decompressed_error()
            if limits.ratio_exceeded(info.file_size, info.compress_size):
                raise limits.ratio_error()
            member_name = info.filename or _base_name(name, ".zip") or "report"
            try:
                member = archive.open(info)
            except (RuntimeError, NotImplementedError, zipfile.BadZipFile) as exc:
                raise ReportError(
                    f"{member_name} in the zip archive cannot be read ({exc})."
                ) from None
            with member:
                counted = ZipMember(member, compressed=info.compress_size, limits=limits)
                try:
                    yield from _from_stream(
                        Prefixed(_ZipErrors(counted)),
                        name=member_name,
                        limits=limits,
                        depth=depth + 1,
                    )
                except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
                    raise ReportError(f"The zip archive is corrupt ({exc}).") from None


class _ZipErrors(io.RawIOBase):
    """zipfile signals a bad CRC or deflate stream with its own exceptions; ours say why."""

    def __init__(self, source: BinaryIO) -> None:
        self._source = source

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            data = self._source.read(len(buffer))
        except TooLarge:
            raise
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise ReportError(f"The zip archive is corrupt ({exc}).") from None
        buffer[: len(data)] = data
        return len(data)


# --- mail -------------------------------------------------------------------------------


def leaf_parts(message: Message) -> Iterator[Message]:
    """Every non-multipart part, not descending into attached messages (message/rfc822)."""
    if message.is_multipart():
        if message.get_content_maintype() == "message":
            return  # an attached message: its attachments are not the reporter's
        for part in message.get_payload():
            if isinstance(part, Message):
                yield from leaf_parts(part)
    else:
        yield message


def all_parts(message: Message) -> Iterator[Message]:
    """Every part including containers, not descending into attached messages."""
    yield message
    if message.is_multipart() and message.get_content_maintype() != "message":
        for part in message.get_payload():
            if isinstance(part, Message):
                yield from all_parts(part)


def feedback_part(message: Message) -> Message | None:
    """The message/feedback-report part of an ARF report (RFC 5965), wherever it sits."""
    for part in all_parts(message):
        if part.get_content_type() == "message/feedback-report":
            return part
    return None


def _attachments(message: Message) -> Iterator[tuple[str, bytes]]:
    for part in leaf_parts(message):
        ctype = part.get_content_type()
        filename = part.get_filename() or part.get_param("name") or ""
        if isinstance(filename, tuple):  # RFC 2231 (charset, language, value)
            filename = email.utils.collapse_rfc2231_value(filename)
        filename = str(filename).strip()
        if ctype in REPORT_TYPES or filename.lower().endswith(REPORT_SUFFIXES):
            payload = part.get_payload(decode=True)
            if payload:
                yield filename or ctype.replace("/", "-"), payload


def _from_message(
    message: Message, *, raw: bytes, name: str, limits: Limits, depth: int
) -> Iterator[Document]:
    from apps.reports.parsing.feedback import is_feedback  # noqa: PLC0415 - cycle

    if feedback_part(message) is not None or is_feedback(message):
        yield Document(kind="feedback", name=name, message=message, raw=raw)
        return
    attachments = list(_attachments(message))
    if not attachments:
        raise ReportError(
            "The message holds no report: no DMARC (XML), TLS-RPT (JSON) or ARF part."
        )
    if len(attachments) > limits.max_members:
        raise ReportError(
            f"The message has {len(attachments)} attachments; at most {limits.max_members} "
            "are read."
        )
    for filename, payload in attachments:
        if len(payload) > limits.max_compressed:
            raise limits.compressed_error()
        yield from _from_stream(
            Prefixed(io.BytesIO(payload)), name=filename, limits=limits, depth=depth + 1
        )
