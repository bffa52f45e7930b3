"""Reads of incoming reports, scoped to what the acting principal may see.

Tenant isolation lives in `_visible` (mailadmin.tenancy.scope on the report's tenant):
a tenant admin sees its tenant's reports, a superadmin all of them, anyone else nothing.
Another tenant's report is simply not found (404).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import TruncDate

from apps.accounts.models import Principal
from apps.reports.models import DmarcRecord, IngestFailure, Report, SourceName, TlsPolicyResult
from mailadmin.errors import NotFound
from mailadmin.tenancy import scope

# The API's report types and the kinds each lists: failure reports are ARF messages.
GROUPS: dict[str, tuple[str, ...]] = {
    "dmarc": (Report.Kind.DMARC,),
    "tls": (Report.Kind.TLS,),
    "arf": (Report.Kind.ARF, Report.Kind.DMARC_FAILURE),
}
GROUP_OF_KIND = {kind: group for group, kinds in GROUPS.items() for kind in kinds}


@dataclass(frozen=True)
class ReportFilters:
    domain: Principal | None = None
    reporter: str = ""
    since: datetime | None = None  # reports whose period ends at or after this
    until: datetime | None = None  # reports whose period begins at or before this
    result: str = ""  # "pass": nothing failed; "fail": something failed
    feedback_type: str = ""  # ARF only: abuse, auth-failure, opt-out, ...


def _visible(actor: Principal) -> QuerySet[Report]:
    return scope(Report.objects.all(), actor)


def report_list(*, actor: Principal, group: str, filters: ReportFilters) -> QuerySet[Report]:
    """Reports of one type, newest period first (one query per page, domain joined)."""
    reports = _visible(actor).filter(kind__in=GROUPS[group]).select_related("domain", "tenant")
    if filters.domain is not None:
        reports = reports.filter(domain=filters.domain)
    if filters.reporter:
        reports = reports.filter(reporter__icontains=filters.reporter)
    if filters.since is not None:
        reports = reports.filter(date_end__gte=filters.since)
    if filters.until is not None:
        reports = reports.filter(date_begin__lte=filters.until)
    if filters.result == "pass":
        reports = reports.filter(fail_count=0)
    elif filters.result == "fail":
        reports = reports.filter(fail_count__gt=0)
    if filters.feedback_type:
        reports = reports.filter(details__feedbackType=filters.feedback_type)
    return reports.order_by(F("date_begin").desc(nulls_last=True), "-id")


def report_get(*, actor: Principal, group: str, report_id: int) -> Report:
    report = (
        _visible(actor)
        .filter(kind__in=GROUPS[group], pk=report_id)
        .select_related("domain")
        .first()
    )
    if report is None:
        raise NotFound()
    return report


def dmarc_record_list(*, report: Report) -> QuerySet[DmarcRecord]:
    """A report's records, failing sources first (the report was fetched scoped)."""
    return report.dmarc_records.order_by("dmarc_pass", "-count", "id")


def ingest_failure_list(*, actor: Principal) -> QuerySet[IngestFailure]:
    """Failed ingests, newest first, without the raw bytes (loaded only for download)."""
    return (
        scope(IngestFailure.objects.all(), actor)
        .defer("raw")
        .select_related("actor", "tenant")
        .order_by("-received_at", "-id")
    )


def ingest_failure_get(
    *, actor: Principal, failure_id: int, with_raw: bool = False
) -> IngestFailure:
    failures = scope(IngestFailure.objects.select_related("actor"), actor)
    if not with_raw:
        failures = failures.defer("raw")
    failure = failures.filter(pk=failure_id).first()
    if failure is None:
        raise NotFound()
    return failure


# --- dashboard figures: one aggregate query each --------------------------------------------


def _dmarc_records(
    actor: Principal, domain: Principal | None, since: datetime | None
) -> QuerySet[DmarcRecord]:
    records = DmarcRecord.objects.filter(report__in=_visible(actor).filter(kind="dmarc"))
    if domain is not None:
        records = records.filter(report__domain=domain)
    if since is not None:
        records = records.filter(report__date_begin__gte=since)
    return records


def dmarc_daily(
    *, actor: Principal, domain: Principal | None = None, since: datetime | None = None
) -> list[dict]:
    """Messages per day of the reported period, passing and failing DMARC."""
    rows = (
        _dmarc_records(actor, domain, since)
        .annotate(day=TruncDate("report__date_begin"))
        .values("day")
        .annotate(
            passed=Sum("count", filter=Q(dmarc_pass=True), default=0),
            failed=Sum("count", filter=Q(dmarc_pass=False), default=0),
        )
        .order_by("day")
    )
    return [
        {"day": _iso(row["day"]), "pass": row["passed"], "fail": row["failed"]}
        for row in rows
        if row["day"] is not None
    ]


def dmarc_alignment(
    *, actor: Principal, domain: Principal | None = None, since: datetime | None = None
) -> dict[str, int]:
    """Messages by which aligned identifier passed: SPF and DKIM, one of them, neither."""
    spf, dkim = Q(spf="pass"), Q(dkim="pass")
    totals = _dmarc_records(actor, domain, since).aggregate(
        both=Sum("count", filter=spf & dkim, default=0),
        spf_only=Sum("count", filter=spf & ~dkim, default=0),
        dkim_only=Sum("count", filter=dkim & ~spf, default=0),
        neither=Sum("count", filter=~spf & ~dkim, default=0),
    )  # (aliases must not shadow the spf/dkim fields the filters name)
    return {
        "both": totals["both"],
        "spfOnly": totals["spf_only"],
        "dkimOnly": totals["dkim_only"],
        "none": totals["neither"],
    }


def dmarc_sources(
    *,
    actor: Principal,
    domain: Principal | None = None,
    since: datetime | None = None,
    limit: int = 20,
) -> list[dict]:
    """Sending sources by failing messages, then by volume: what to look at first.

    Two queries whatever the limit: the figures per IP (with the PTR name a worker stored,
    see apps.reports.sources), then the reporting organisations of those IPs."""
    records = _dmarc_records(actor, domain, since)
    name = SourceName.objects.filter(ip=OuterRef("source_ip")).values("name")[:1]
    rows = list(
        records.values("source_ip")
        .annotate(
            messages=Sum("count", default=0),
            passed=Sum("count", filter=Q(dmarc_pass=True), default=0),
            reporters=Count("report__reporter", distinct=True),
        )
        .annotate(failed=F("messages") - F("passed"), name=Subquery(name))
        .order_by("-failed", "-messages", "source_ip")[:limit]
    )
    orgs: dict[str | None, list[str]] = {}
    ips = [row["source_ip"] for row in rows if row["source_ip"] is not None]
    pairs = (
        records.filter(source_ip__in=ips)
        .values_list("source_ip", "report__reporter")
        .distinct()
        .order_by("source_ip", "report__reporter")
    )
    for ip, reporter in pairs[: limit * 20]:
        orgs.setdefault(ip, []).append(reporter)
    return [
        {
            "sourceIp": row["source_ip"],
            "name": row["name"] or "",
            "messages": row["messages"],
            "pass": row["passed"],
            "fail": row["failed"],
            "passRate": _rate(row["passed"], row["messages"]),
            "reporters": row["reporters"],
            "reportingOrgs": orgs.get(row["source_ip"], [])[:10],
        }
        for row in rows
    ]


def dmarc_source(
    *,
    actor: Principal,
    ip: str,
    domain: Principal | None = None,
    since: datetime | None = None,
) -> tuple[dict, QuerySet[DmarcRecord]]:
    """One sending source: its figures and its records (failing first, newest report
    first), from the reports the actor sees only; NotFound when they name it nowhere."""
    records = _dmarc_records(actor, domain, since).filter(source_ip=ip)
    totals = records.aggregate(
        records=Count("id"),
        messages=Sum("count", default=0),
        passed=Sum("count", filter=Q(dmarc_pass=True), default=0),
        reports=Count("report", distinct=True),
    )
    if not totals["records"]:
        raise NotFound()
    known = SourceName.objects.filter(ip=ip).first()
    summary = {
        "sourceIp": ip,
        "name": known.name if known else "",
        "nameStatus": known.status if known else "",
        "nameResolvedAt": known.resolved_at if known else None,
        "messages": totals["messages"],
        "pass": totals["passed"],
        "fail": totals["messages"] - totals["passed"],
        "passRate": _rate(totals["passed"], totals["messages"]),
        "reports": totals["reports"],
    }
    ordered = records.select_related("report").order_by(
        "dmarc_pass", F("report__date_begin").desc(nulls_last=True), "-count", "id"
    )
    return summary, ordered


def dmarc_summary(
    *, actor: Principal, domain: Principal | None = None, since: datetime | None = None
) -> dict:
    """The dashboard's three figures in three aggregate queries."""
    return {
        "daily": dmarc_daily(actor=actor, domain=domain, since=since),
        "alignment": dmarc_alignment(actor=actor, domain=domain, since=since),
        "sources": dmarc_sources(actor=actor, domain=domain, since=since),
    }


def tls_breakdown(
    *, actor: Principal, domain: Principal | None = None, details_from: int = 1000
) -> dict:
    """Sessions per policy (type and domain), and failures by result type (from the
    failure details of the latest `details_from` policies)."""
    policies = TlsPolicyResult.objects.filter(report__in=_visible(actor).filter(kind="tls"))
    if domain is not None:
        policies = policies.filter(report__domain=domain)
    rows = (
        policies.values("policy_type", "policy_domain")
        .annotate(successful=Sum("successful", default=0), failed=Sum("failed", default=0))
        .order_by("-failed", "policy_domain", "policy_type")[:50]
    )
    failures: dict[str, int] = {}
    latest = policies.exclude(failure_details=[]).order_by("-id")[:details_from]
    for details in latest.values_list("failure_details", flat=True):
        for detail in details or []:
            kind = str(detail.get("result-type") or "unknown")
            failures[kind] = failures.get(kind, 0) + int(detail.get("failed-session-count") or 0)
    return {
        "policies": [
            {
                "policyType": row["policy_type"],
                "policyDomain": row["policy_domain"],
                "successful": row["successful"],
                "failed": row["failed"],
            }
            for row in rows
        ],
        "failures": sorted(failures.items(), key=lambda item: (-item[1], item[0])),
    }


def _rate(part: int, whole: int) -> float | None:
    return round(part * 100 / whole, 1) if whole else None


def _iso(value: date | datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
