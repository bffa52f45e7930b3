"""Ingesting, deleting and purging incoming reports: the one place that writes them.

(The inbound path's `record_inbound_auth` and the delivery worker's `record_tls_outcome`,
which feed our own outgoing reports, live in apps.reports.outgoing and are imported here.)

Every entry point calls `report_ingest`: the console and API uploads (with the acting
principal), and mail arriving at a domain's report address (`report_ingest_message`, with
the recipient domain and no actor). It never raises for bad input: each report in the file
ends up ingested, duplicate or failed, and a failed file is kept raw with its reason.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from itertools import islice

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from apps.accounts.emails import InvalidAddress, normalize_domain
from apps.accounts.models import Principal, PrincipalType
from apps.accounts.permissions import Perm
from apps.reports.models import (
    DmarcRecord,
    IngestFailure,
    PendingUpload,
    Report,
    Source,
    TlsPolicyResult,
)
from apps.reports.outgoing import (  # noqa: F401 - the entry points the mail flow calls
    DmarcVerdict,
    record_inbound_auth,
    record_tls_outcome,
)
from apps.reports.parsing import (
    AggregateReader,
    AggregateRecord,
    Feedback,
    Limits,
    ReportError,
    TlsReport,
    documents,
    read,
)
from apps.reports.sources import source_names_after_ingest
from apps.telemetry.events import emit
from mailadmin.audit import audit, audit_event
from mailadmin.core.models import AuditEvent, TaskRun
from mailadmin.core.progress import Outcome, Progress, task_run_start
from mailadmin.errors import NotFound, PermissionDenied
from mailadmin.tenancy import reaches, scope

log = logging.getLogger(__name__)

BATCH = 2000  # records per INSERT
# Whole reports (up to BATCH records) are written together, in one transaction of a few
# statements, once this many records or reports wait (and at the end of every ingest).
GROUP_RECORDS = 20_000
GROUP_REPORTS = 200
INGEST_TASK = "reports.ingest"


@dataclass(frozen=True)
class IngestResult:
    """One report found in a file (or the file itself when none could be read)."""

    file: str
    status: str  # "ingested" | "duplicate" | "failed"
    type: str | None = None  # "dmarc" | "dmarc-failure" | "arf" | "tls"
    id: int | None = None  # the report's id; for "failed", the IngestFailure's
    reason: str | None = None

    def as_dict(self) -> dict:
        return {
            "file": self.file,
            "status": self.status,
            "type": self.type,
            "id": self.id,
            "reason": self.reason,
        }


def report_limits() -> Limits:
    return Limits(
        max_compressed=settings.MAILADMIN_REPORTS_MAX_UPLOAD,
        max_decompressed=settings.MAILADMIN_REPORTS_MAX_DECOMPRESSED,
        max_records=settings.MAILADMIN_REPORTS_MAX_RECORDS,
    )


def _require(actor: Principal, permission: str) -> None:
    if not actor.has_permission(permission):
        raise PermissionDenied(permission)


# --- where a report belongs -------------------------------------------------------------


@dataclass(frozen=True)
class _Destination:
    """Who may receive reports through this ingest, and how they are filed."""

    actor: Principal | None
    domain: Principal | None  # the upload's chosen domain, or the mail's recipient domain
    by_mail: bool
    # Per ingest (one upload or one message): where each named domain was filed, so a
    # batch of reports about the same few domains looks each up once; and the DMARC
    # reports stored, whose sources are handed to the PTR lookup once at the end.
    filed: dict = field(default_factory=dict, compare=False, repr=False)
    dmarc_ids: list = field(default_factory=list, compare=False, repr=False)
    writer: _Writer = field(default_factory=lambda: _Writer(), compare=False, repr=False)

    def tenant_id(self) -> int | None:
        if self.domain is not None:
            return self.domain.tenant_id
        return None if self.actor is None else self.actor.tenant_id


def _candidates(name: str) -> list[str]:
    """example.com for mail.example.com too: a report may name a subdomain of ours."""
    try:
        name = normalize_domain(name)
    except InvalidAddress:
        return []
    labels = name.split(".")
    return [".".join(labels[i:]) for i in range(len(labels) - 1)]


def _find_domain(name: str, queryset: QuerySet[Principal]) -> Principal | None:
    candidates = _candidates(name)
    if not candidates:
        return None
    found = {d.name: d for d in queryset.filter(type=PrincipalType.DOMAIN, name__in=candidates)}
    return next((found[c] for c in candidates if c in found), None)


def _attribute(dest: _Destination, name: str) -> tuple[int | None, Principal | None]:
    """(tenant id, domain) a report about `name` is filed under, or ReportError why not;
    remembered for the rest of the ingest (same actor, same destination)."""
    if name not in dest.filed:
        try:
            dest.filed[name] = _attribute_uncached(dest, name)
        except ReportError as exc:
            dest.filed[name] = exc
    found = dest.filed[name]
    if isinstance(found, ReportError):
        raise ReportError(found.reason)
    return found


def _attribute_uncached(dest: _Destination, name: str) -> tuple[int | None, Principal | None]:
    if dest.domain is not None:
        tenant_queryset = Principal.objects.filter(tenant_id=dest.domain.tenant_id)
        if dest.by_mail:
            # Mail to a tenant's report address: that tenant's, filed under the named
            # domain when the tenant has it (a rua may serve domains hosted elsewhere).
            return dest.domain.tenant_id, _find_domain(name, tenant_queryset)
        if not name or dest.domain.name in _candidates(name):
            return dest.domain.tenant_id, dest.domain
        raise ReportError(f"The report is about {name}, not {dest.domain.name}.")
    actor = dest.actor
    assert actor is not None
    domain = _find_domain(name, scope(Principal.objects.all(), actor)) if name else None
    if domain is not None:
        return domain.tenant_id, domain
    if actor.reaches_all_tenants:
        return None, None  # a domain this server does not host: kept for superadmins
    if not name:
        raise ReportError("The report does not name its domain: upload it for one of yours.")
    raise ReportError(f"The report is about {name}, which is not one of your domains.")


def _dedupe_key(kind: str, tenant_id: int | None, reporter: str, report_id: str) -> str:
    text = "\x00".join((kind, str(tenant_id or ""), reporter.strip().lower(), report_id.strip()))
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()


def _existing(key: str) -> int | None:
    """The id of the report stored with this key (one indexed look-up, without the ORM's
    query building: it runs once per report)."""
    with connection.cursor() as cursor:
        cursor.execute(_EXISTING_SQL.get(connection.vendor) or _existing_sql(), [key])
        row = cursor.fetchone()
    return row[0] if row else None


_EXISTING_SQL: dict[str, str] = {}


def _existing_sql() -> str:
    quote = connection.ops.quote_name
    sql = (
        f"SELECT {quote('id')} FROM {quote(Report._meta.db_table)} "  # noqa: S608 - names only
        f"WHERE {quote('dedupe_key')} = %s"
    )
    _EXISTING_SQL[connection.vendor] = sql
    return sql


def _clip(value: str | None, size: int) -> str:
    return (value or "")[:size]


# --- entry points -----------------------------------------------------------------------


def report_upload(
    *,
    actor: Principal,
    files: Iterable[tuple[str, bytes]],
    source: str = Source.UPLOAD,
    domain: Principal | None = None,
) -> list[IngestResult]:
    """Ingest uploaded files (console or API); `domain` files reports that name none."""
    _require(actor, Perm.INCOMING_REPORT_CREATE)
    dest = _Destination(actor=actor, domain=domain, by_mail=False)
    found: list[IngestResult | _Pending] = []
    for name, data in files:
        found.extend(_ingest_file(dest, data=data, name=name, source=source))
    results = dest.writer.finish(found)
    source_names_after_ingest(dest.dmarc_ids)
    return results


def report_upload_start(
    *,
    actor: Principal,
    files: Iterable[tuple[str, bytes]],
    source: str = Source.UPLOAD,
    domain: Principal | None = None,
) -> TaskRun:
    """A large upload: the files wait in the database, a worker ingests them (progress on
    the run; the per-file results in its `result`)."""
    _require(actor, Perm.INCOMING_REPORT_CREATE)
    with transaction.atomic():
        ids = [
            PendingUpload.objects.create(
                tenant_id=actor.tenant_id,
                actor=actor,
                domain=domain,
                source=source,
                filename=_clip(name or "upload", 255),
                data=data,
            ).pk
            for name, data in files
        ]
        count = len(ids)
        return task_run_start(
            actor=actor,
            kind=f"reports.ingest:{uuid.uuid4()}",  # every upload is its own run
            title=f"Ingest {count} report file{'s' if count != 1 else ''}",
            task_name=INGEST_TASK,
            tenant_id=actor.tenant_id,
            arguments={"upload_ids": ids},
        )


def report_upload_run(*, upload_ids: list[int], progress: Progress) -> Outcome:
    """The worker's side of report_upload_start. Safe to repeat: reports already stored
    come back as duplicates, and the files are deleted only once all are done."""
    pending = list(PendingUpload.objects.filter(pk__in=upload_ids).order_by("id").only("pk"))
    progress.begin(len(pending))
    found: list[IngestResult | _Pending] = []
    dests: list[_Destination] = []
    writer = _Writer()  # shared: the reports of all the files are written in groups
    for done, row in enumerate(pending, 1):
        upload = PendingUpload.objects.select_related("actor", "domain").get(pk=row.pk)
        dest = _Destination(actor=upload.actor, domain=upload.domain, by_mail=False, writer=writer)
        if upload.actor is None:
            raise PermissionDenied(Perm.INCOMING_REPORT_CREATE)
        dests.append(dest)
        these = _ingest_file(dest, data=bytes(upload.data), name=upload.filename,
                             source=upload.source)  # fmt: skip
        found.extend(these)
        progress.step(done, f"{upload.filename}: " + ", ".join(_status(r) for r in these))
    results = writer.finish(found)
    PendingUpload.objects.filter(pk__in=upload_ids).delete()
    source_names_after_ingest([i for dest in dests for i in dest.dmarc_ids])
    counts = Counter(r.status for r in results)
    message = (
        f"{counts['ingested']} ingested, {counts['duplicate']} duplicate, "
        f"{counts['failed']} failed."
    )
    rows = [  # what the progress component lists, one line per report or failed file
        {
            "ok": r.status != "failed",
            "name": r.file,
            "detail": r.reason if r.status == "failed" else f"{r.status} ({r.type})",
        }
        for r in results
    ]
    return Outcome(True, message, {"results": [r.as_dict() for r in results], "rows": rows})


def report_ingest_message(*, recipient_domain: Principal, message: bytes) -> list[IngestResult]:
    """A message that arrived at `recipient_domain`'s report address (rua/ruf/TLS-RPT).

    The mail flow calls this once local delivery recognises a report address; there is no
    actor (the audit log says "system") and the tenant is the recipient domain's.
    """
    dest = _Destination(actor=None, domain=recipient_domain, by_mail=True)
    found = _ingest_file(dest, data=message, name="message.eml", source=Source.SMTP)
    results = dest.writer.finish(found)
    source_names_after_ingest(dest.dmarc_ids)
    trace = f"report-{uuid.uuid4().hex[:16]}"  # telemetry: one trace per report mail
    for r in results:
        kind = "report.failed" if r.status == "failed" else "report.ingested"
        emit(kind, trace, domain=recipient_domain.name, reportType=r.type, reason=r.reason)
    return results


def _ingest_file(
    dest: _Destination, *, data: bytes, name: str, source: str
) -> list[IngestResult | _Pending]:
    """One result per report in the file; a DMARC report waiting to be written in a group
    is a _Pending (`_Writer.finish` turns it into its result)."""
    limits = report_limits()
    name = _clip(name or "upload", 255)
    results: list[IngestResult | _Pending] = []
    try:
        for document in documents(data, name=name, limits=limits):
            result = _ingest_document(
                dest, document, limits=limits, source=source, name=name, data=data
            )
            results.append(result)
    except ReportError as exc:
        results.append(_fail(dest, data=data, name=name, source=source, reason=exc.reason))
    except Exception as exc:  # a bug must not lose the file: keep it, say so, log it
        log.exception("ingesting %s failed", name)
        reason = f"The file could not be read: unexpected {type(exc).__name__}."
        results.append(_fail(dest, data=data, name=name, source=source, reason=reason))
    return results


def _ingest_document(
    dest: _Destination, document, *, limits: Limits, source: str, name: str, data: bytes
):
    report = read(document, limits=limits)
    if isinstance(report, AggregateReader):
        return _store_dmarc(dest, report, source=source, name=name, data=data)
    if isinstance(report, TlsReport):
        return _store_tls(dest, report, source=source, name=name)
    return _store_feedback(dest, report, source=source, name=name)


def _fail(dest: _Destination, *, data: bytes, name: str, source: str, reason: str) -> IngestResult:
    tenant_id = dest.tenant_id()
    failure = IngestFailure.objects.create(
        tenant_id=tenant_id,
        actor=dest.actor,
        source=source,
        filename=name,
        reason=_clip(reason, 1024),
        size=len(data),
        raw=data[: settings.MAILADMIN_REPORTS_MAX_UPLOAD],
    )
    audit(
        actor=dest.actor,
        action="report.ingest_failed",
        obj=failure,
        object_repr=name,
        tenant_id=tenant_id,
        changes={"file": name, "reason": failure.reason, "size": len(data)},
    )
    return IngestResult(file=name, status="failed", id=failure.pk, reason=failure.reason)


def _audit_ingest(dest: _Destination, report: Report) -> None:
    _ingest_event(dest, report).save(force_insert=True)


def _ingest_event(dest: _Destination, report: Report) -> AuditEvent:
    return audit_event(
        actor=dest.actor,
        action="report.ingest",
        obj=report,
        object_repr=f"{report.kind} {report.reporter} {report.report_id}"[:255],
        tenant_id=report.tenant_id,
        changes={
            "kind": report.kind,
            "domain": report.domain_name,
            "reporter": report.reporter,
            "reportId": report.report_id,
            "records": report.record_count,
        },
    )


# --- DMARC aggregate ---------------------------------------------------------------------


_RECORD_COLUMNS = (
    ("report_id", ""),
    ("source_ip", "inet"),
    ("count", ""),
    ("disposition", ""),
    ("dkim", ""),
    ("spf", ""),
    ("dmarc_pass", ""),
    ("header_from", ""),
    ("envelope_from", ""),
    ("envelope_to", ""),
    ("reasons", "jsonb"),
    ("dkim_results", "jsonb"),
    ("spf_results", "jsonb"),
)


def _insert_sql() -> str:
    """One INSERT for executemany: the ORM's bulk_create spends most of its time preparing
    each value of each row, which a report of 100,000 records feels."""
    quote = connection.ops.quote_name
    postgres = connection.vendor == "postgresql"
    columns = ", ".join(quote(name) for name, _ in _RECORD_COLUMNS)
    values = ", ".join(f"%s::{cast}" if cast and postgres else "%s" for _, cast in _RECORD_COLUMNS)
    table = quote(DmarcRecord._meta.db_table)
    # Only constant names go into the text; every value is a parameter.
    return f"INSERT INTO {table} ({columns}) VALUES ({values})"  # noqa: S608


def _copy_sql() -> str:
    """PostgreSQL's COPY of the same columns (text format: the JSON goes in as its text)."""
    quote = connection.ops.quote_name
    columns = ", ".join(quote(name) for name, _ in _RECORD_COLUMNS)
    return f"COPY {quote(DmarcRecord._meta.db_table)} ({columns}) FROM STDIN"


def _record_rows(records: list[AggregateRecord]) -> list[tuple]:
    """The records as column values, the report's id left out (prepended when known).

    The auth results of a report's records repeat (the same few domains, selectors and
    results): each distinct list is encoded to JSON once per call."""
    dumps = json.JSONEncoder().encode  # json.dumps without its keyword handling per call
    encoded: dict[tuple, str] = {}

    def as_json(items: list[dict[str, str]]) -> str:
        if not items:
            return "[]"
        key = tuple(tuple(item.items()) for item in items)
        text = encoded.get(key)
        if text is None:
            text = encoded[key] = dumps(items)
        return text

    return [
        (
            r.source_ip,
            r.count,
            r.disposition[:32],
            r.dkim[:32],
            r.spf[:32],
            r.dmarc_pass,
            r.header_from[:255],
            r.envelope_from[:255],
            r.envelope_to[:255],
            as_json(r.reasons),
            as_json(r.dkim_results),
            as_json(r.spf_results),
        )
        for r in records
    ]


def _write_rows(rows: Iterable[tuple]) -> None:
    """Rows of every column (the report's id first): one COPY on PostgreSQL (executemany
    is a message and a server-side INSERT per row), executemany on SQLite (in process)."""
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            cursor.executemany(_insert_sql(), rows)
            return
        with cursor.cursor.copy(_copy_sql()) as copy:
            for row in rows:
                copy.write_row(row)


def _insert_records(report_id: int, records: list[AggregateRecord]) -> None:
    _write_rows((report_id, *row) for row in _record_rows(records))


def _complete_dmarc(
    report: Report,
    reader: AggregateReader,
    records: list[AggregateRecord],
    *,
    tallies: list[int] | None = None,
) -> None:
    """Fill in what is known once the reader is done: the totals of `records` (or the
    `tallies` [records, messages, passed] of a report stored in batches) and the metadata
    that may follow the records (the date range)."""
    if tallies is None:
        tallies = [
            len(records),
            sum(r.count for r in records),
            sum(r.count for r in records if r.dmarc_pass),
        ]
    count, messages, passed = tallies
    meta = reader.meta
    report.date_begin = meta.begin
    report.date_end = meta.end
    report.record_count = count
    report.message_count = messages
    report.pass_count = passed
    report.fail_count = messages - passed
    report.policy = meta.policy
    report.details = {
        "extraContactInfo": meta.extra_contact_info,
        "errors": meta.errors,
        "version": meta.version,
        "generator": meta.generator,
        "namespace": meta.namespace,
    }


def _store_dmarc(
    dest: _Destination, reader: AggregateReader, *, source: str, name: str, data: bytes
) -> IngestResult | _Pending:
    """Stream the records into the database.

    The header (reporter, id, domain) normally precedes the records: records are held back
    until it has been read, then up to one batch more. A report that ends within it (as
    most do) waits, complete, for the group write (`_Writer`, whose INSERT finds a report
    already stored). A longer one is written now, in batches inside one transaction of
    its own, after a duplicate check (a duplicate is not read further).
    """
    records = reader.records()
    held: list[AggregateRecord] = []
    for record in records:
        held.append(record)
        if reader.has_metadata and reader.meta.domain:
            break
    meta = reader.meta
    if not meta.report_id:
        raise ReportError("The report has no report_id.")
    tenant_id, domain = _attribute(dest, meta.domain)
    kind = Report.Kind.DMARC
    key = _dedupe_key(kind, tenant_id, meta.reporter, meta.report_id)
    waiting = dest.writer.keys.get(key)
    if waiting is not None:  # the same report earlier in this ingest, not yet written
        records.close()
        return _Pending(dest, waiting.report, [], b"", source, same_as=waiting, name=name)
    # Read up to one batch ahead (and one record more): when the report ends within it,
    # as most do, the report row goes in complete with its totals, no UPDATE after.
    pending = held + list(islice(records, max(0, BATCH + 1 - len(held))))
    whole = len(pending) <= BATCH  # the reader is done: its metadata is complete
    report = Report(
        kind=kind,
        tenant_id=tenant_id,
        domain=domain,
        domain_name=_clip(meta.domain, 255),
        reporter=_clip(meta.reporter, 255),
        reporter_email=_clip(meta.email, 320),
        report_id=_clip(meta.report_id, 255),
        source=source,
        filename=name,
        dedupe_key=key,
    )
    if whole:
        _complete_dmarc(report, reader, pending)
        return dest.writer.add(_Pending(dest, report, _record_rows(pending), data, source))
    dest.writer.flush()  # in order: what waits goes first
    existing = _existing(key)
    if existing is not None:  # the rest is not read
        records.close()
        return IngestResult(file=name, status="duplicate", type=kind, id=existing)
    try:
        with transaction.atomic():
            report.save(force_insert=True)
            tallies = [0, 0, 0]
            while pending:
                _insert_records(report.pk, pending)
                tallies[0] += len(pending)
                tallies[1] += sum(r.count for r in pending)
                tallies[2] += sum(r.count for r in pending if r.dmarc_pass)
                pending = list(islice(records, BATCH))
            _complete_dmarc(report, reader, [], tallies=tallies)
            report.save()
            _audit_ingest(dest, report)
    except IntegrityError:
        existing = _existing(key)  # the same report, ingested concurrently
        if existing is None:
            raise
        return IngestResult(file=name, status="duplicate", type=kind, id=existing)
    dest.dmarc_ids.append(report.pk)
    return IngestResult(file=name, status="ingested", type=kind, id=report.pk)


# --- writing DMARC reports in groups -------------------------------------------------------


@dataclass(eq=False)
class _Pending:
    """A complete DMARC aggregate report waiting for its group's write; `result` once
    written. `same_as`: a later copy of a waiting report (a duplicate of it)."""

    dest: _Destination
    report: Report
    rows: list[tuple]
    data: bytes  # the file, kept as a failed ingest should the write fail
    source: str
    same_as: _Pending | None = None
    name: str = ""
    result: IngestResult | None = None

    def __post_init__(self) -> None:
        self.name = self.name or self.report.filename


def _status(item: IngestResult | _Pending) -> str:
    return item.status if isinstance(item, IngestResult) else "read"


@dataclass(eq=False)
class _Writer:
    """Writes waiting reports together: one transaction, one multi-row INSERT of the
    report rows (ON CONFLICT DO NOTHING: a report stored meanwhile is a duplicate), one
    COPY of all their records, one INSERT of their audit events. The transaction lasts
    the writes only (the reports were parsed before), so it holds nothing for long."""

    waiting: list[_Pending] = field(default_factory=list)
    keys: dict[str, _Pending] = field(default_factory=dict)
    records: int = 0

    def add(self, item: _Pending) -> _Pending:
        self.waiting.append(item)
        self.keys[item.report.dedupe_key] = item
        self.records += len(item.rows)
        if self.records >= GROUP_RECORDS or len(self.waiting) >= GROUP_REPORTS:
            self.flush()
        return item

    def flush(self) -> None:
        items, self.waiting, self.keys, self.records = self.waiting, [], {}, 0
        if not items:
            return
        try:
            with transaction.atomic():
                _write_group(items)
        except DatabaseError:
            log.warning("writing %d reports at once failed; one by one", len(items),
                        exc_info=True)  # fmt: skip
            for item in items:
                try:
                    with transaction.atomic():
                        _write_group([item])
                except DatabaseError as exc:
                    log.exception("storing report %s failed", item.name)
                    item.result = _fail(item.dest, data=item.data, name=item.name,
                                        source=item.source,
                                        reason=f"The report could not be stored: "
                                               f"{type(exc).__name__}.")  # fmt: skip

    def finish(self, found: list[IngestResult | _Pending]) -> list[IngestResult]:
        """Write what waits, then every item's result, in the order found."""
        self.flush()
        results = []
        for item in found:
            if isinstance(item, _Pending):
                if item.same_as is not None:
                    first = item.same_as.result
                    assert first is not None
                    item.result = (
                        first
                        if first.status == "failed"
                        else IngestResult(
                            file=item.name, status="duplicate", type=first.type, id=first.id
                        )  # fmt: skip
                    )
                assert item.result is not None
                item = item.result
            results.append(item)
        return results


_REPORT_FIELDS: list | None = None


def _report_fields() -> list:
    global _REPORT_FIELDS
    if _REPORT_FIELDS is None:
        _REPORT_FIELDS = [f for f in Report._meta.concrete_fields if not f.primary_key]
    return _REPORT_FIELDS


def _write_group(items: list[_Pending]) -> None:
    fields = _report_fields()
    quote = connection.ops.quote_name
    table = quote(Report._meta.db_table)
    columns = ", ".join(quote(f.column) for f in fields)
    placeholders = "(" + ", ".join(["%s"] * len(fields)) + ")"
    params: list = []
    for item in items:
        params.extend(f.get_db_prep_save(getattr(item.report, f.attname), connection)
                      for f in fields)  # fmt: skip
    # Only constant names go into the text; every value is a parameter.
    sql = (
        f"INSERT INTO {table} ({columns}) VALUES {', '.join([placeholders] * len(items))} "  # noqa: S608
        f"ON CONFLICT ({quote('dedupe_key')}) DO NOTHING RETURNING {quote('id')}, "
        f"{quote('dedupe_key')}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        inserted = dict((key, pk) for pk, key in cursor.fetchall())
    stored = [item for item in items if item.report.dedupe_key in inserted]
    for item in stored:
        item.report.pk = inserted[item.report.dedupe_key]
    _write_rows((item.report.pk, *row) for item in stored for row in item.rows)
    AuditEvent.objects.bulk_create(_ingest_event(item.dest, item.report) for item in stored)
    others = {item.report.dedupe_key for item in items} - inserted.keys()
    existing = dict(
        Report.objects.filter(dedupe_key__in=others).values_list("dedupe_key", "pk")
        if others
        else ()
    )
    for item in items:
        kind, pk = item.report.kind, inserted.get(item.report.dedupe_key)
        if pk is not None:
            item.result = IngestResult(file=item.name, status="ingested", type=kind, id=pk)
            item.dest.dmarc_ids.append(pk)
        else:  # stored meanwhile by another ingest
            item.result = IngestResult(file=item.name, status="duplicate", type=kind,
                                       id=existing.get(item.report.dedupe_key))  # fmt: skip


# --- TLS-RPT -----------------------------------------------------------------------------


def _store_tls(dest: _Destination, tls: TlsReport, *, source: str, name: str) -> IngestResult:
    tenant_id, domain = _attribute(dest, tls.domain)
    successful = sum(p.successful for p in tls.policies)
    failed = sum(p.failed for p in tls.policies)

    def policies(report: Report) -> None:
        TlsPolicyResult.objects.bulk_create(
            TlsPolicyResult(
                report=report,
                policy_type=_clip(p.policy_type, 32),
                policy_domain=_clip(p.policy_domain, 255),
                policy_string=p.policy_string,
                mx_host=p.mx_host,
                successful=p.successful,
                failed=p.failed,
                failure_details=p.failure_details,
            )
            for p in tls.policies
        )

    return _store_once(
        dest,
        Report(
            kind=Report.Kind.TLS,
            tenant_id=tenant_id,
            domain=domain,
            domain_name=_clip(tls.domain, 255),
            reporter=_clip(tls.org_name, 255),
            reporter_email=_clip(tls.contact_info, 320),
            report_id=_clip(tls.report_id, 255),
            date_begin=tls.begin,
            date_end=tls.end,
            source=source,
            filename=name,
            record_count=len(tls.policies),
            message_count=successful + failed,
            pass_count=successful,
            fail_count=failed,
            details={"contactInfo": tls.contact_info},
        ),
        key=(tls.org_name, tls.report_id),
        then=policies,
    )


# --- ARF and DMARC failure reports -------------------------------------------------------


def _store_feedback(dest: _Destination, feedback: Feedback, *, source: str, name: str):
    tenant_id, domain = _attribute(dest, feedback.domain)
    return _store_once(
        dest,
        Report(
            kind=feedback.kind,
            tenant_id=tenant_id,
            domain=domain,
            domain_name=_clip(feedback.domain, 255),
            reporter=_clip(feedback.reporter, 255),
            reporter_email=_clip(feedback.reporter_email, 320),
            report_id=feedback.report_id,
            date_begin=feedback.date,
            date_end=feedback.date,
            source=source,
            filename=name,
            record_count=1,
            message_count=1,
            fail_count=1,
            details={
                "feedbackType": feedback.feedback_type,
                "sourceIp": feedback.source_ip,
                "subject": feedback.subject,
                "fields": feedback.fields,
                "original": feedback.original,
                "originalHeaders": feedback.original_headers,
                "variant": feedback.variant,
            },
        ),
        key=(feedback.reporter, feedback.report_id),
    )


def _store_once(
    dest: _Destination,
    report: Report,
    *,
    key: tuple[str, str],
    then: Callable[[Report], None] | None = None,
) -> IngestResult:
    """Store a TLS or feedback report (unsaved `report`, `then` adds its parts) unless the
    same one (kind, tenant, reporter, report id as `key` gives them) is already stored."""
    kind, name = report.kind, report.filename
    report.dedupe_key = _dedupe_key(kind, report.tenant_id, *key)
    existing = _existing(report.dedupe_key)
    if existing is not None:
        return IngestResult(file=name, status="duplicate", type=kind, id=existing)
    try:
        with transaction.atomic():
            report.save(force_insert=True)
            if then is not None:
                then(report)
            _audit_ingest(dest, report)
    except IntegrityError:
        existing = _existing(report.dedupe_key)  # the same report, ingested concurrently
        if existing is None:
            raise
        return IngestResult(file=name, status="duplicate", type=kind, id=existing)
    return IngestResult(file=name, status="ingested", type=kind, id=report.pk)


# --- deleting and purging ------------------------------------------------------------------


@transaction.atomic
def report_delete(*, actor: Principal, report: Report) -> None:
    _require(actor, Perm.INCOMING_REPORT_DELETE)
    if not reaches(actor, report.tenant_id):
        raise NotFound()
    changes = {"kind": report.kind, "reporter": report.reporter, "reportId": report.report_id}
    object_id = str(report.pk)
    report.delete()
    audit(
        actor=actor,
        action="report.delete",
        object_type="report",
        object_id=object_id,
        object_repr=f"{changes['kind']} {changes['reporter']} {changes['reportId']}"[:255],
        tenant_id=report.tenant_id,
        changes=changes,
    )


@transaction.atomic
def ingest_failure_delete(*, actor: Principal, failure: IngestFailure) -> None:
    _require(actor, Perm.INCOMING_REPORT_DELETE)
    if not reaches(actor, failure.tenant_id):
        raise NotFound()
    object_id, name = str(failure.pk), failure.filename
    failure.delete()
    audit(
        actor=actor,
        action="report.failure_delete",
        object_type="ingestfailure",
        object_id=object_id,
        object_repr=name,
        tenant_id=failure.tenant_id,
        changes={"file": name},
    )


@dataclass(frozen=True)
class PurgeOutcome:
    reports: int
    failures: int
    finished: bool  # False when the time budget ran out: the task runs again


def reports_purge(
    *, days: int | None = None, batch: int = 1000, budget_seconds: float = 60.0
) -> PurgeOutcome:
    """Delete reports and failed ingests received more than `days` ago (0 keeps them).

    In batches by id with a time budget, so a huge backlog never holds one long
    transaction; what is left is picked up by the next run.
    """
    days = settings.MAILADMIN_REPORTS_RETENTION_DAYS if days is None else days
    if days <= 0:
        return PurgeOutcome(0, 0, True)
    cutoff = timezone.now() - timedelta(days=days)
    started = timezone.now()
    counts = {Report: 0, IngestFailure: 0}
    finished = True
    for model in (Report, IngestFailure):
        while True:
            ids = list(
                model.objects.filter(received_at__lt=cutoff)
                .order_by("id")
                .values_list("id", flat=True)[:batch]
            )
            if not ids:
                break
            with transaction.atomic():
                model.objects.filter(id__in=ids).delete()
            counts[model] += len(ids)
            if (timezone.now() - started).total_seconds() > budget_seconds:
                finished = False
                break
        if not finished:
            break
    if counts[Report] or counts[IngestFailure]:
        audit(
            actor=None,
            action="report.purge",
            object_type="report",
            object_repr=f"older than {days} days",
            changes={
                "reports": counts[Report],
                "failures": counts[IngestFailure],
                "cutoff": cutoff.isoformat(),
            },
        )
        log.info("purged %s reports, %s failed ingests", counts[Report], counts[IngestFailure])
    return PurgeOutcome(counts[Report], counts[IngestFailure], finished)
