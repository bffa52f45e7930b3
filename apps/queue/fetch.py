"""Fetch jobs: mail fetched from remote mailboxes over IMAP and POP3 (stdlib imaplib and
poplib) and passed through the MX's inbound pipeline.

Each remote message becomes an `InboundMessage` (mail_from from its Return-Path, the
recipient the job's local address, peer_ip the remote server's address, the TLS flag of
the connection, a Received line of ours on top; SPF, iprev and the HELO checks judge the
client named by the topmost Received line with a public IP, the hop the remote provider
accepted it from, never the remote server) and goes through the MX's own functions:
`route_recipient` (an unknown or full mailbox), `scan_inbound` (the spam filter: its
headers, Junk, the quarantine, reject, discard, the mailbox's sender lists) and
`store_inbound` (the store, the quarantine, forwarding). Nothing is fetched twice: IMAP
messages are remembered by folder, UIDVALIDITY and UID, POP3 ones by UIDL (FetchSeen),
in the same transaction that stores the message. With `delete_on_server` a message is
deleted on the server only after that transaction committed (a deletion that did not
happen is done by the next run).

What happens to a message:
- stored, held, or discarded by the filter: a success entry; remembered. A message the
  MX would refuse (a rejecting verdict) is held in the quarantine: no client is there to
  hear a 550, and the remote mailbox is the one nobody reads;
- refused for good (a blocked sender, MIME nested too deep, over MAILADMIN_MAX_MESSAGE_SIZE
  (not downloaded), header too large, the mailbox unknown): a failed entry; remembered,
  left on the server;
- refused for now (the mailbox is full, a database error): a failed entry; not
  remembered, so the next run tries again.

Connections: implicit TLS or STARTTLS, the certificate verified against
MAILADMIN_TLS_CA_FILE (else the system's CAs); plain text only to loopback hosts.
"""

from __future__ import annotations

import base64
import imaplib
import logging
import poplib
import re
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.parser import BytesHeaderParser
from email.policy import default as default_policy

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from apps.queue.models import FetchEntry, FetchJob, FetchSeen
from apps.queue.smtp.headers import TlsInfo, header_end, line_ending, received_header
from apps.queue.smtp.inbound import (
    QUARANTINE,
    InboundMessage,
    route_recipient,
    scan_inbound,
    store_inbound,
)
from apps.queue.smtp.server import HEADER_TOO_LARGE, is_loopback, queue_id
from apps.queue.tls_policy import client_context
from apps.spamfilter.received import client_hop
from apps.store.headers import clean
from apps.telemetry.events import emit
from mailadmin.core.progress import Outcome, Progress

log = logging.getLogger(__name__)

DEFAULT_PORTS = {
    (FetchJob.Protocol.IMAP, FetchJob.Security.SSL): 993,
    (FetchJob.Protocol.IMAP, FetchJob.Security.STARTTLS): 143,
    (FetchJob.Protocol.IMAP, FetchJob.Security.NONE): 143,
    (FetchJob.Protocol.POP3, FetchJob.Security.SSL): 995,
    (FetchJob.Protocol.POP3, FetchJob.Security.STARTTLS): 110,
    (FetchJob.Protocol.POP3, FetchJob.Security.NONE): 110,
}
PLAINTEXT_REFUSED = (
    "Plain-text connections are only allowed to loopback hosts (127.0.0.1, ::1, "
    "localhost): use implicit TLS (useSsl) or STARTTLS."
)
MAX_LINE = 1 << 20  # POP3 lines (poplib's own limit is 2048 bytes)
MAX_IMAP_LINE = 1 << 24  # IMAP lines (imaplib's is 1,000,000 bytes: ~140,000 UIDs)
SIZE_BATCH = 200  # IMAP UIDs per FETCH (RFC822.SIZE)


class FetchError(Exception):
    """The remote server could not be reached, refused us, or broke the protocol: the
    message says which, with the server's own words when it gave some."""


def default_port(protocol: str, security: str) -> int:
    return DEFAULT_PORTS[(protocol, security)]


def plaintext_allowed(host: str) -> bool:
    return is_loopback(host)


def _text(value) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, list | tuple) and value:
        return _text(value[-1])
    return " ".join(str(value).split())[:500]


def _tls(sock) -> TlsInfo | None:
    if not isinstance(sock, ssl.SSLSocket):
        return None
    cipher, _, bits = sock.cipher() or ("unknown", "", 0)
    return TlsInfo(version=sock.version() or "TLS", cipher=cipher, bits=bits or 0)


def _peer(sock) -> str:
    try:
        return str(sock.getpeername()[0])
    except (OSError, AttributeError, IndexError):
        return ""


@contextmanager
def _network_errors(job: FetchJob) -> Iterator[None]:
    """Socket, TLS and protocol errors as FetchError naming the server."""
    where = f"{job.host}:{job.port}"
    try:
        yield
    except FetchError:
        raise
    except ssl.SSLCertVerificationError as exc:
        raise FetchError(f"TLS with {where} failed: {exc.verify_message or exc}") from exc
    except ssl.SSLError as exc:
        raise FetchError(f"TLS with {where} failed: {exc.reason or exc}") from exc
    except TimeoutError as exc:
        raise FetchError(f"{where} did not answer in time") from exc
    except socket.gaierror as exc:
        raise FetchError(f"Could not resolve {job.host}: {exc.strerror or exc}") from exc
    except OSError as exc:
        raise FetchError(f"Connection to {where} failed: {exc.strerror or exc}") from exc
    except (imaplib.IMAP4.error, poplib.error_proto) as exc:
        raise FetchError(f"{where}: {_text(exc.args[0] if exc.args else exc)}") from exc


# --- the two protocols ---------------------------------------------------------------------


@dataclass
class Remote:
    """One remote message: where it is, how big the server says it is."""

    folder: str  # "" for POP3
    uidvalidity: int  # 0 for POP3
    uid: str  # IMAP UID or POP3 UIDL
    size: int
    number: int = 0  # POP3 message number in this session


class _Imap(imaplib.IMAP4):
    def readline(self) -> bytes:  # as imaplib's, with room for a big folder's UID SEARCH
        line = self.file.readline(MAX_IMAP_LINE + 1)
        if len(line) > MAX_IMAP_LINE:
            raise self.error(f"got more than {MAX_IMAP_LINE} bytes")
        return line


class _ImapSsl(imaplib.IMAP4_SSL):
    readline = _Imap.readline


class _Pop3(poplib.POP3):
    def _getline(self):  # as poplib's, with a longer line limit
        line = self.file.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise poplib.error_proto("-ERR line too long")
        if not line:
            raise poplib.error_proto("-ERR EOF")
        octets = len(line)
        if line[-2:] == b"\r\n":
            return line[:-2], octets
        if line[:1] == b"\r":
            return line[1:-1], octets
        return line[:-1], octets


class _Pop3Ssl(poplib.POP3_SSL):
    _getline = _Pop3._getline


class Session:
    """A logged-in connection to the job's remote mailbox."""

    protocol = ""

    def __init__(self, job: FetchJob) -> None:
        self.job = job
        self.timeout = settings.MAILADMIN_FETCH_TIMEOUT
        self.peer_ip = ""
        self.tls: TlsInfo | None = None

    def _security_check(self) -> None:
        if self.job.security == FetchJob.Security.NONE and not plaintext_allowed(self.job.host):
            raise FetchError(PLAINTEXT_REFUSED)

    def folders(self) -> list[str]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class ImapSession(Session):
    protocol = "IMAP"

    def open(self) -> ImapSession:
        job = self.job
        self._security_check()
        context = client_context(verify=True)
        if job.security == FetchJob.Security.SSL:
            conn = _ImapSsl(job.host, job.port, ssl_context=context, timeout=self.timeout)
        else:
            conn = _Imap(job.host, job.port, timeout=self.timeout)
            if job.security == FetchJob.Security.STARTTLS:
                try:
                    conn.starttls(ssl_context=context)
                except imaplib.IMAP4.error as exc:
                    conn.shutdown()
                    raise FetchError(
                        f"STARTTLS with {job.host}:{job.port} failed: "
                        f"{_text(exc.args[0] if exc.args else exc)}"
                    ) from exc
        self.conn = conn
        self.peer_ip = _peer(conn.sock)
        self.tls = _tls(conn.sock)
        try:
            conn.login(job.username, job.password)
        except imaplib.IMAP4.error as exc:
            conn.shutdown()
            raise FetchError(f"Login failed: {_text(exc.args[0] if exc.args else exc)}") from exc
        return self

    def folders(self) -> list[str]:
        typ, data = self.conn.list()
        if typ != "OK":
            raise FetchError(f"LIST failed: {_text(data)}")
        return [name for name in (_list_name(line) for line in data if line) if name]

    def select(self, folder: str, *, readonly: bool) -> int:
        """Select `folder`; its UIDVALIDITY."""
        typ, data = self.conn.select(_quote(folder), readonly=readonly)
        if typ != "OK":
            raise FetchError(f"Folder {folder}: {_text(data)}")
        _, values = self.conn.response("UIDVALIDITY")
        try:
            return int(values[-1])
        except (TypeError, ValueError, IndexError):
            raise FetchError(f"Folder {folder}: the server sent no UIDVALIDITY") from None

    def uids(self, folder: str) -> list[int]:
        typ, data = self.conn.uid("SEARCH", None, "ALL")
        if typ != "OK":
            raise FetchError(f"UID SEARCH in {folder} failed: {_text(data)}")
        return [int(u) for u in b" ".join(d for d in data if d).split() if u.isdigit()]

    def sized(self, folder: str, uidvalidity: int, uids: list[int]) -> list[Remote]:
        """The messages `uids` with their sizes (RFC822.SIZE), in batches."""
        found: list[Remote] = []
        for start in range(0, len(uids), SIZE_BATCH):
            batch = uids[start : start + SIZE_BATCH]
            typ, data = self.conn.uid("FETCH", ",".join(map(str, batch)), "(RFC822.SIZE)")
            if typ != "OK":
                raise FetchError(f"UID FETCH in {folder} failed: {_text(data)}")
            for item in data:
                line = item[0] if isinstance(item, tuple) else item
                uid, size = _uid_size(line or b"")
                if uid is not None:
                    found.append(Remote(folder, uidvalidity, str(uid), size))
        return found

    def retrieve(self, remote: Remote) -> bytes:
        typ, data = self.conn.uid("FETCH", remote.uid, "(BODY.PEEK[])")
        if typ != "OK":
            raise FetchError(f"UID FETCH {remote.uid} failed: {_text(data)}")
        for item in data:
            if isinstance(item, tuple) and len(item) == 2:
                return item[1]
        raise FetchError(f"UID {remote.uid} in {remote.folder} is gone from the server")

    def delete(self, remote: Remote) -> None:
        typ, data = self.conn.uid("STORE", remote.uid, "+FLAGS.SILENT", r"(\Deleted)")
        if typ != "OK":
            raise FetchError(f"UID STORE {remote.uid} failed: {_text(data)}")

    def finish_folder(self, *, deleted: bool) -> None:
        if deleted:
            self.conn.expunge()
        self.conn.close()

    def close(self) -> None:
        try:
            self.conn.logout()
        except (imaplib.IMAP4.error, OSError):
            self.conn.shutdown()


_LIST_LINE = re.compile(rb'^\((?P<flags>[^)]*)\) (?:"(?:[^"\\]|\\.)*"|NIL) (?P<name>.+)$')
_UID = re.compile(rb"UID (\d+)")
_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")


def _list_name(line) -> str | None:
    if isinstance(line, tuple):  # a literal name: (prefix, name)
        return mutf7_decode(line[1].decode("utf-8", "replace"))
    found = _LIST_LINE.match(line)
    if not found or rb"\Noselect" in found["flags"]:
        return None
    name = found["name"]
    if name.startswith(b'"') and name.endswith(b'"'):
        name = re.sub(rb"\\(.)", rb"\1", name[1:-1])
    return mutf7_decode(name.decode("utf-8", "replace"))


def _uid_size(line: bytes) -> tuple[int | None, int]:
    uid, size = _UID.search(line), _SIZE.search(line)
    return (int(uid[1]) if uid else None), (int(size[1]) if size else 0)


def _quote(folder: str) -> str:
    name = mutf7_encode(folder)
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def mutf7_encode(name: str) -> str:
    """A folder name as IMAP sends it (RFC 3501 5.1.3, modified UTF-7): printable ASCII as
    is ("&" as "&-"), every other run as "&" + base64 of UTF-16BE ("," for "/") + "-"."""
    out, run = [], []

    def flush() -> None:
        if run:
            raw = "".join(run).encode("utf-16-be")
            out.append(
                "&" + base64.b64encode(raw).decode("ascii").rstrip("=").replace("/", ",") + "-"
            )
            run.clear()

    for char in name:
        if 0x20 <= ord(char) <= 0x7E:
            flush()
            out.append("&-" if char == "&" else char)
        else:
            run.append(char)
    flush()
    return "".join(out)


def mutf7_decode(name: str) -> str:
    def one(found: re.Match) -> str:
        body = found[1]
        if not body:
            return "&"
        body = body.replace(",", "/")
        try:
            return base64.b64decode(body + "=" * (-len(body) % 4)).decode("utf-16-be")
        except (ValueError, UnicodeDecodeError):
            return found[0]

    return re.sub(r"&([A-Za-z0-9+,]*)-", one, name)


class Pop3Session(Session):
    protocol = "POP3"

    def open(self) -> Pop3Session:
        job = self.job
        self._security_check()
        context = client_context(verify=True)
        if job.security == FetchJob.Security.SSL:
            conn = _Pop3Ssl(job.host, job.port, timeout=self.timeout, context=context)
        else:
            conn = _Pop3(job.host, job.port, timeout=self.timeout)
            if job.security == FetchJob.Security.STARTTLS:
                try:
                    conn.stls(context=context)
                except poplib.error_proto as exc:
                    conn.close()
                    raise FetchError(
                        f"STARTTLS (STLS) with {job.host}:{job.port} failed: "
                        f"{_text(exc.args[0] if exc.args else exc)}"
                    ) from exc
        self.conn = conn
        self.peer_ip = _peer(conn.sock)
        self.tls = _tls(conn.sock)
        try:
            conn.user(job.username)
            conn.pass_(job.password)
        except poplib.error_proto as exc:
            conn.close()
            raise FetchError(f"Login failed: {_text(exc.args[0] if exc.args else exc)}") from exc
        return self

    def folders(self) -> list[str]:
        return ["INBOX"]

    def listing(self) -> list[Remote]:
        _, uidls, _ = self.conn.uidl()
        _, sizes, _ = self.conn.list()
        by_number = {}
        for line in sizes:
            number, _, size = line.partition(b" ")
            if number.isdigit() and size.strip().isdigit():
                by_number[int(number)] = int(size)
        found = []
        for line in uidls:
            number, _, uidl = line.partition(b" ")
            if number.isdigit() and uidl.strip():
                n = int(number)
                found.append(
                    Remote(
                        "",
                        0,
                        uidl.strip().decode("ascii", "replace"),
                        by_number.get(n, 0),
                        number=n,
                    )
                )
        return found

    def retrieve(self, remote: Remote) -> bytes:
        _, lines, _ = self.conn.retr(remote.number)
        return b"\r\n".join(lines) + b"\r\n"

    def delete(self, remote: Remote) -> None:
        self.conn.dele(remote.number)

    def close(self) -> None:
        try:
            self.conn.quit()  # deletions happen here (the UPDATE state)
        except (poplib.error_proto, OSError):
            self.conn.close()


def open_session(job: FetchJob) -> Session:
    session = ImapSession(job) if job.protocol == FetchJob.Protocol.IMAP else Pop3Session(job)
    with _network_errors(job):
        return session.open()


# --- validation ----------------------------------------------------------------------------


@dataclass
class Validation:
    ok: bool
    message: str
    folders: list[str] = field(default_factory=list)  # what the server has
    missing: list[str] = field(default_factory=list)  # the job's folders it has not
    destination: str = ""  # the local mailbox's state

    def as_dict(self) -> dict:
        return {
            "ok": self.ok,
            "message": self.message,
            "folders": self.folders,
            "missingFolders": self.missing,
            "destination": self.destination,
        }


def destination_problem(job: FetchJob) -> str | None:
    """Why the local mailbox cannot receive the job's mail, or None."""
    from apps.accounts.models import PrincipalEmail

    if not job.mailbox.is_active:
        return f"The mailbox {job.mailbox_address} is disabled."
    owns = PrincipalEmail.objects.filter(address=job.mailbox_address, principal=job.mailbox)
    if not owns.exists():
        return f"{job.mailbox_address} is no longer an address of {job.mailbox.name}."
    return None


def validate(job: FetchJob) -> Validation:
    """Log in and list the folders (IMAP) or count the messages (POP3); check the local
    mailbox. Answers what was found, or the exact error."""
    problem = destination_problem(job)
    destination = problem or f"{job.mailbox_address} receives the fetched mail."
    try:
        session = open_session(job)
        with _network_errors(job):
            try:
                folders = session.folders()
                count = len(session.listing()) if isinstance(session, Pop3Session) else None
            finally:
                session.close()
    except FetchError as exc:
        return Validation(False, str(exc), destination=destination)
    if isinstance(session, ImapSession):
        wanted = job.folders or ["INBOX"]
        upper = {f.upper() for f in folders}
        has_inbox = "INBOX" in upper
        missing = [f for f in wanted if f not in folders and not (f == "INBOX" and has_inbox)]
        found = f"Logged in to {job.host}:{job.port} over IMAP; {len(folders)} folder(s)."
        if missing:
            found += " Not on the server: " + ", ".join(missing) + "."
    else:
        missing = []
        found = f"Logged in to {job.host}:{job.port} over POP3; {count} message(s) waiting."
    ok = not missing and problem is None
    return Validation(ok, found, folders=folders, missing=missing, destination=destination)


# --- one run -------------------------------------------------------------------------------


@dataclass
class RunResult:
    fetched: int = 0
    failed: int = 0
    deferred: int = 0  # failed for now: tried again next run
    more: bool = False  # stopped at MAILADMIN_FETCH_MAX_MESSAGES; the rest is due now
    errors: list[str] = field(default_factory=list)  # per folder
    trace_id: str = ""  # telemetry: this run's trace


def _summary(data: bytes) -> tuple[str, str, str]:
    """(Message-ID, Subject, Return-Path address) of a message's header section, as
    storable text (PostgreSQL refuses a NUL: the entry, and so the message, would fail
    on every run); a Return-Path with a control character or space is no address."""
    head = data[: min(header_end(data), 256 * 1024)]
    try:
        headers = BytesHeaderParser(policy=default_policy).parsebytes(head)
        message_id = clean(str(headers.get("Message-ID", "") or ""), 998)
        subject = clean(str(headers.get("Subject", "") or ""), 998)
        return_path = str(headers.get("Return-Path", "") or "")
    except Exception:  # an undecodable header still gets fetched
        return "", "", ""
    address = return_path.strip().strip("<>").strip()
    if "@" not in address or any(ord(c) < 0x21 or ord(c) == 0x7F for c in address):
        return message_id, subject, ""
    return message_id, subject, address[:320]


def claim(job_id: int, *, lease: timedelta) -> FetchJob | None:
    """The job for one run, or None when another run holds it (conditional UPDATE)."""
    now = timezone.now()
    claim_id = uuid.uuid4()
    free = Q(claim_id=None) | Q(lease_expires_at__lt=now)
    claimed = FetchJob.objects.filter(free, pk=job_id).update(
        claim_id=claim_id, lease_expires_at=now + lease
    )
    if not claimed:
        return None
    return FetchJob.objects.select_related("mailbox").get(pk=job_id)


RENEW_SECONDS = 60  # how often the heartbeat pushes a run's lease on
LEASE_LOST = (
    "This run lost its claim on the job (its lease lapsed and another run took the job "
    "over); it stopped."
)


class LeaseLost(Exception):
    """The run's claim on its job is gone. Not a FetchError: no folder loop may carry on
    past it (another run fetches the job now); run_job makes it the run's error."""


class _Claim:
    """The run's claim on its job, and its progress. The lease is short, so a worker that
    died frees its job within one lease; while the run works, a heartbeat thread renews
    it every RENEW_SECONDS, however long one step takes (a login, a big folder's SEARCH,
    one large message over a slow link). Once another run holds the job, this one stops
    at its next step or before storing its next message (check), rather than fetch,
    prune or delete beside it.

    Inside a transaction (a test calling run_job inline) another connection would not see
    the claim, so there each check renews it instead of a thread."""

    def __init__(self, progress: Progress, job: FetchJob, lease: timedelta) -> None:
        self._progress, self._job, self._lease = progress, job, lease
        self._every = min(RENEW_SECONDS, lease.total_seconds() / 4)
        self._renewed = time.monotonic()  # by the thread: a float, written whole
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> _Claim:
        if not connection.in_atomic_block:
            self._thread = threading.Thread(
                target=self._beat, name=f"fetch-lease-{self._job.pk}", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _beat(self) -> None:
        try:
            while not self._stop.wait(self._every):
                try:
                    if not self._renew():
                        log.warning("fetch job %s: claim lost; the run stops", self._job.uuid)
                        return
                except DatabaseError:  # the lease may lapse; check() then stops the run
                    log.warning(
                        "fetch job %s: renewing the lease failed", self._job.uuid, exc_info=True
                    )
        finally:
            connection.close()  # this thread's own connection

    def _renew(self) -> bool:
        kept = FetchJob.objects.filter(pk=self._job.pk, claim_id=self._job.claim_id).update(
            lease_expires_at=timezone.now() + self._lease
        )
        if not kept:
            self._lost.set()
            return False
        self._renewed = time.monotonic()
        return True

    @property
    def lost(self) -> bool:
        return self._lost.is_set()

    def check(self) -> None:
        """Raise LeaseLost once the claim is gone, or may be (not renewed for a lease)."""
        if self._thread is None and not self.lost:
            self._renew()
        if self.lost:
            raise LeaseLost(LEASE_LOST)
        unrenewed = time.monotonic() - self._renewed
        if unrenewed >= self._lease.total_seconds():
            raise LeaseLost(
                f"This run could not renew its claim on the job for {unrenewed:.0f} s "
                "(another run may hold the job now); it stopped."
            )

    def begin(self, total: int) -> None:
        self.check()
        self._progress.begin(total)

    def step(self, done: int, message: str) -> None:
        self.check()
        self._progress.step(done, message)


def run_job(job_id: int, *, progress: Progress, lease: timedelta) -> Outcome:
    """One run of a job: claim it, fetch, record the outcome on the job (in `finally`),
    and release it with its next run due after its interval. The claim lasts `lease`,
    renewed while the run works (_Claim); a run that lost it ends in error and leaves the
    job to the run that holds it."""
    job = claim(job_id, lease=lease)
    if job is None:
        if not FetchJob.objects.filter(pk=job_id).exists():
            return Outcome(False, "The fetch job was deleted.")
        return Outcome(True, "Another run of this fetch job is under way.")
    result = RunResult(trace_id=f"fetch-{job.uuid.hex[:12]}-{int(timezone.now().timestamp())}")
    error = ""
    emit("fetch.run-start", result.trace_id, job=str(job.uuid), host=job.host)
    claimed = _Claim(progress, job, lease).start()
    try:
        _fetch(job, result, claimed)
    except (FetchError, LeaseLost) as exc:
        error = str(exc)
    except Exception as exc:
        log.exception("fetch job %s failed", job.uuid)
        error = f"Failed: {exc}"[:1000]
        raise
    finally:
        claimed.stop()
        _record(job, result, error)
        emit("fetch.run-end", result.trace_id, fetched=result.fetched, error=error)
    message = _describe(result, error)
    data = {"fetched": result.fetched, "failed": result.failed, "deferred": result.deferred}
    return Outcome(not error, message, data)


def _describe(result: RunResult, error: str) -> str:
    text = f"{result.fetched} message(s) fetched, {result.failed} failed."
    if result.deferred:
        text += f" {result.deferred} will be tried again."
    if result.more:
        text += " More are waiting: the next run is due now."
    if result.errors:
        text += " " + " ".join(result.errors)
    if error:
        text = f"{error} ({text})"
    return text


def _record(job: FetchJob, result: RunResult, error: str) -> None:
    now = timezone.now()
    errors = [error] if error else result.errors
    if errors:
        status = FetchJob.LastStatus.ERROR if error or not result.fetched else "partial"
    elif result.failed:
        status = FetchJob.LastStatus.PARTIAL
    else:
        status = FetchJob.LastStatus.SUCCESS
    next_run = now if result.more else now + timedelta(minutes=job.interval_minutes)
    FetchJob.objects.filter(pk=job.pk, claim_id=job.claim_id).update(
        claim_id=None,
        lease_expires_at=None,
        last_run_at=now,
        last_status=status,
        last_error="\n".join(errors)[:4000],
        last_fetched=result.fetched,
        last_failed=result.failed,
        next_run_at=next_run,
        updated_at=now,
    )


def _fetch(job: FetchJob, result: RunResult, claim: _Claim) -> None:
    problem = destination_problem(job)
    if problem:
        raise FetchError(problem)
    session = open_session(job)
    budget = settings.MAILADMIN_FETCH_MAX_MESSAGES
    try:
        with _network_errors(job):
            if isinstance(session, ImapSession):
                for folder in job.folders or ["INBOX"]:
                    if result.fetched + result.failed >= budget:
                        result.more = True
                        break
                    claim.check()
                    try:
                        _fetch_imap_folder(job, session, folder, result, claim, budget)
                    except FetchError as exc:  # a folder that is gone: the others still run
                        result.errors.append(str(exc))
            else:
                remotes = session.listing()
                claim.check()
                _prune(job, "", 0, {r.uid for r in remotes})
                _process_all(job, session, remotes, result, claim, budget)
    finally:
        with _network_errors(job):
            session.close()


def _fetch_imap_folder(
    job: FetchJob,
    session: ImapSession,
    folder: str,
    result: RunResult,
    claim: _Claim,
    budget: int,
) -> None:
    uidvalidity = session.select(folder, readonly=not job.delete_on_server)
    uids = session.uids(folder)
    claim.check()
    _prune(job, folder, uidvalidity, {str(u) for u in uids})
    # Sizes are asked for new messages only: a big folder costs one SEARCH a run.
    seen = FetchSeen.objects.filter(job=job, folder=folder, uidvalidity=uidvalidity)
    known = set(seen.values_list("uid", flat=True))
    remotes = [Remote(folder, uidvalidity, str(u), 0) for u in uids if str(u) in known]
    new = [u for u in uids if str(u) not in known]
    room = max(budget - result.fetched - result.failed, 0)
    if len(new) > room:  # the rest waits for the next run (due at once)
        result.more = True
        new = new[:room]
    remotes += session.sized(folder, uidvalidity, new)
    deleted = _process_all(job, session, remotes, result, claim, budget)
    session.finish_folder(deleted=deleted)


def _prune(job: FetchJob, folder: str, uidvalidity: int, present: set[str]) -> None:
    """Forget messages that are gone from the server (and a folder's old UIDVALIDITY)."""
    rows = FetchSeen.objects.filter(job=job, folder=folder)
    rows.exclude(uidvalidity=uidvalidity).delete()
    gone = [
        pk
        for pk, uid in rows.filter(uidvalidity=uidvalidity).values_list("pk", "uid")
        if uid not in present
    ]
    for start in range(0, len(gone), 500):
        FetchSeen.objects.filter(pk__in=gone[start : start + 500]).delete()


def _process_all(
    job: FetchJob,
    session: Session,
    remotes: list[Remote],
    result: RunResult,
    claim: _Claim,
    budget: int,
) -> bool:
    """Fetch each new message; delete stored ones on the server when the job says so.
    Whether anything was deleted."""
    folder, uidvalidity = (remotes[0].folder, remotes[0].uidvalidity) if remotes else ("", 0)
    rows = FetchSeen.objects.filter(job=job, folder=folder, uidvalidity=uidvalidity)
    seen = set(rows.values_list("uid", "stored"))
    stored_before = {uid for uid, stored in seen if stored}
    known = {uid for uid, _ in seen}
    deleted = False
    new = [r for r in remotes if r.uid not in known]
    claim.check()
    if job.delete_on_server:  # stored by an earlier run whose deletion did not happen
        for remote in remotes:
            if remote.uid in stored_before:
                session.delete(remote)
                deleted = True
    claim.begin(len(new))
    for done, remote in enumerate(new, 1):
        if result.fetched + result.failed >= budget:
            result.more = True
            break
        stored = _process(job, session, remote, result, claim)
        if stored and job.delete_on_server:
            session.delete(remote)
            deleted = True
        claim.step(done, f"{result.fetched} fetched, {result.failed} failed")
    return deleted


def _process(
    job: FetchJob, session: Session, remote: Remote, result: RunResult, claim: _Claim
) -> bool:
    """Fetch, scan and store one message; whether it was stored (so may be deleted)."""
    limit = settings.MAILADMIN_MAX_MESSAGE_SIZE
    if remote.size > limit:
        _fail(
            job,
            remote,
            result,
            f"Message size {remote.size} bytes exceeds the maximum of "
            f"{limit} bytes (MAILADMIN_MAX_MESSAGE_SIZE); not fetched.",
            for_good=True,
        )
        return False
    data = session.retrieve(remote)
    message_id, subject, return_path = _summary(data)
    info = {"message_id": message_id, "subject": subject, "sender": return_path}
    if len(data) > limit:
        _fail(
            job,
            remote,
            result,
            f"Message size {len(data)} bytes exceeds the maximum of "
            f"{limit} bytes (MAILADMIN_MAX_MESSAGE_SIZE).",
            for_good=True,
            **info,
        )
        return False
    if header_end(data) > settings.MAILADMIN_SMTP_MAX_HEADER_SIZE:
        _fail(job, remote, result, HEADER_TOO_LARGE, for_good=True, **info)
        return False
    refusal, route = route_recipient(job.mailbox_address, len(data))
    if refusal:
        _fail(job, remote, result, refusal, for_good=not refusal.startswith("4"), **info)
        return False
    qid = queue_id()
    received = received_header(
        helo=job.host,
        ip=session.peer_ip,
        hostname=settings.MAILADMIN_HOSTNAME,
        protocol=session.protocol,
        queue_id=qid,
        tls=session.tls,
        recipients=[job.mailbox_address],
        now=datetime.now(UTC),
        eol=line_ending(data),
    )
    message = InboundMessage(
        queue_id=qid,
        mail_from=return_path,
        recipients=[job.mailbox_address],
        peer_ip=session.peer_ip,
        helo=job.host,
        tls=session.tls is not None,
        data=received + data,
        trace_id=result.trace_id,
        judged_hop=client_hop(data),  # the message as fetched: our Received line is no hop
    )
    try:
        verdict = scan_inbound(message, [job.mailbox_id], report_authentication=False, refuse=False)
        claim.check()  # retrieving and scanning a big message takes a while
        with transaction.atomic():
            refusal = store_inbound(message, [route], verdict)
            if refusal:
                _fail(job, remote, result, refusal, for_good=True, **info)
                return False
            copy = verdict.copy_for(job.mailbox_id)
            if copy is None:
                where = "Discarded by the spam filter."
            elif copy[1] == QUARANTINE:
                where = f"Held in the quarantine (score {verdict.score:.1f})."
            else:
                where = f"Stored in {copy[1]}."
            # A run whose claim lapsed may still be at work: the unique row decides who
            # stored the message, and the other's copy is rolled back.
            FetchSeen.objects.create(
                job=job,
                folder=remote.folder,
                uidvalidity=remote.uidvalidity,
                uid=remote.uid[:255],
                stored=True,
            )
            _entry(job, remote, FetchEntry.Status.SUCCESS, where, len(data), **info)
    except IntegrityError:
        log.warning("fetch job %s: %s was stored by another run", job.uuid, remote.uid)
        return False
    except LeaseLost:
        raise
    except Exception as exc:  # as the MX answers 451: this message is tried again
        log.exception("fetch job %s: storing %s failed", job.uuid, remote.uid)
        _fail(job, remote, result, f"Temporary error: {exc}"[:1000], for_good=False, **info)
        return False
    result.fetched += 1
    return True


def _remember(job: FetchJob, remote: Remote, *, stored: bool) -> None:
    FetchSeen.objects.get_or_create(
        job=job,
        folder=remote.folder,
        uidvalidity=remote.uidvalidity,
        uid=remote.uid[:255],
        defaults={"stored": stored},
    )


def _entry(job: FetchJob, remote: Remote, status: str, reason: str, size: int, **info) -> None:
    FetchEntry.objects.create(
        job=job,
        tenant_id=job.tenant_id,
        status=status,
        reason=reason,
        remote_folder=remote.folder or "INBOX",
        remote_id=remote.uid[:255],
        size=size,
        message_id=info.get("message_id", ""),
        subject=info.get("subject", ""),
        sender=info.get("sender", ""),
    )


def _fail(
    job: FetchJob, remote: Remote, result: RunResult, reason: str, *, for_good: bool, **info
) -> None:
    """A failed entry; remembered (never fetched again) when it failed for good."""
    with transaction.atomic():
        if for_good:
            _remember(job, remote, stored=False)
        else:
            reason += " (tried again next run)"
            result.deferred += 1
        _entry(job, remote, FetchEntry.Status.FAILED, reason, remote.size, **info)
    result.failed += 1
