"""API shapes of incoming reports, and the parsing of their list filters.

The management API leaves report items open (`items: [any]`); ours are documented here
and in the OpenAPI schema: one summary shape per type for lists, the same plus the
report's content (records, policies, feedback fields) for one report.
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

from django.utils.dateparse import parse_date
from drf_spectacular.utils import inline_serializer
from rest_framework import serializers

from apps.reports.models import DmarcRecord, IngestFailure, Report, TlsPolicyResult
from apps.reports.selectors import GROUP_OF_KIND
from mailadmin.errors import ValidationFailed

RESULTS = ("pass", "fail")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def report_item(report: Report) -> dict[str, Any]:
    """One report in a list: who, about what, when, and how it went."""
    item: dict[str, Any] = {
        "id": report.pk,
        "type": report.kind,
        "domain": report.domain_name,
        "domainId": report.domain_id,
        "reporter": report.reporter,
        "reporterEmail": report.reporter_email,
        "reportId": report.report_id,
        "dateRange": {"begin": _iso(report.date_begin), "end": _iso(report.date_end)},
        "receivedAt": _iso(report.received_at),
        "source": report.source,
        "file": report.filename,
    }
    group = GROUP_OF_KIND[report.kind]
    if group == "dmarc":
        item.update(
            policy=report.policy,
            recordCount=report.record_count,
            messages=report.message_count,
            passed=report.pass_count,
            failed=report.fail_count,
        )
    elif group == "tls":
        item.update(
            policyCount=report.record_count,
            sessions={"successful": report.pass_count, "failed": report.fail_count},
        )
    else:
        details = report.details
        item.update(
            feedbackType=details.get("feedbackType", ""),
            sourceIp=details.get("sourceIp"),
            subject=details.get("subject", ""),
            original=details.get("original", {}),
            variant=details.get("variant", ""),
        )
    return item


def dmarc_record_item(record: DmarcRecord) -> dict[str, Any]:
    return {
        "sourceIp": record.source_ip,
        "count": record.count,
        "disposition": record.disposition,
        "dkim": record.dkim,
        "spf": record.spf,
        "dmarc": "pass" if record.dmarc_pass else "fail",
        "headerFrom": record.header_from,
        "envelopeFrom": record.envelope_from,
        "envelopeTo": record.envelope_to,
        "reasons": record.reasons,
        "authResults": {"dkim": record.dkim_results, "spf": record.spf_results},
    }


def tls_policy_item(policy: TlsPolicyResult) -> dict[str, Any]:
    return {
        "policyType": policy.policy_type,
        "policyDomain": policy.policy_domain,
        "policyString": policy.policy_string,
        "mxHost": policy.mx_host,
        "successful": policy.successful,
        "failed": policy.failed,
        "failureDetails": policy.failure_details,
    }


def feedback_detail(report: Report) -> dict[str, Any]:
    details = report.details
    return {
        "fields": details.get("fields", {}),
        "originalHeaders": details.get("originalHeaders", ""),
    }


def failure_item(failure: IngestFailure) -> dict[str, Any]:
    return {
        "id": failure.pk,
        "file": failure.filename,
        "reason": failure.reason,
        "size": failure.size,
        "source": failure.source,
        "receivedAt": _iso(failure.received_at),
        "uploadedBy": failure.actor.name if failure.actor_id and failure.actor else None,
    }


# --- list filters ---------------------------------------------------------------------------


def parse_day(value: str | None, field: str, *, end_of_day: bool = False) -> datetime | None:
    """`2024-05-01`: from the first or to the last instant of that day (UTC)."""
    if value is None:
        return None
    text = value.strip()
    try:
        day = parse_date(text)
    except ValueError:
        day = None
    if day is None:
        raise ValidationFailed(
            f"Invalid value for field {field}: '{text[:64]}' is not a date (YYYY-MM-DD).",
            field=field,
        )
    return datetime.combine(day, time.max if end_of_day else time.min, tzinfo=UTC)


def parse_result(value: str | None) -> str:
    text = (value or "").strip().lower()
    if text and text not in RESULTS:
        raise ValidationFailed(
            f"Invalid value for field result: '{(value or '')[:64]}' is not one of pass, fail.",
            field="result",
        )
    return text


# --- OpenAPI descriptions ---------------------------------------------------------------------
# (Plain strings where a value set repeats across shapes: drf-spectacular would otherwise
# invent colliding enum names.)

KINDS = ", ".join(Report.Kind.values)
DATE_RANGE = inline_serializer(
    name="ReportDateRange",
    fields={
        "begin": serializers.DateTimeField(allow_null=True),
        "end": serializers.DateTimeField(allow_null=True),
    },
)


def _common() -> dict[str, serializers.Field]:
    return {
        "id": serializers.IntegerField(),
        "type": serializers.CharField(help_text=KINDS),
        "domain": serializers.CharField(help_text="The domain the report is about"),
        "domainId": serializers.IntegerField(allow_null=True, help_text="Our domain principal"),
        "reporter": serializers.CharField(),
        "reporterEmail": serializers.CharField(),
        "reportId": serializers.CharField(),
        "dateRange": DATE_RANGE,
        "receivedAt": serializers.DateTimeField(),
        "source": serializers.CharField(help_text="upload, api or smtp"),
        "file": serializers.CharField(),
    }


def _dmarc_fields() -> dict[str, serializers.Field]:
    return {
        **_common(),
        "policy": serializers.DictField(child=serializers.CharField()),
        "recordCount": serializers.IntegerField(),
        "messages": serializers.IntegerField(),
        "passed": serializers.IntegerField(),
        "failed": serializers.IntegerField(),
    }


TLS_SESSIONS = inline_serializer(
    name="TlsSessions",
    fields={"successful": serializers.IntegerField(), "failed": serializers.IntegerField()},
)


def _tls_fields() -> dict[str, serializers.Field]:
    return {**_common(), "policyCount": serializers.IntegerField(), "sessions": TLS_SESSIONS}


def _arf_fields() -> dict[str, serializers.Field]:
    return {
        **_common(),
        "feedbackType": serializers.CharField(),
        "sourceIp": serializers.CharField(allow_null=True),
        "subject": serializers.CharField(),
        "original": serializers.DictField(child=serializers.CharField()),
        "variant": serializers.CharField(help_text="Empty for RFC 5965; else the shape seen"),
    }


def _strings() -> serializers.DictField:
    return serializers.DictField(child=serializers.CharField())


DMARC_RECORD = inline_serializer(
    name="DmarcRecord",
    fields={
        "sourceIp": serializers.CharField(allow_null=True),
        "count": serializers.IntegerField(),
        "disposition": serializers.CharField(),
        "dkim": serializers.CharField(help_text="Aligned DKIM as DMARC evaluated it"),
        "spf": serializers.CharField(help_text="Aligned SPF as DMARC evaluated it"),
        "dmarc": serializers.CharField(help_text="pass or fail"),
        "headerFrom": serializers.CharField(),
        "envelopeFrom": serializers.CharField(),
        "envelopeTo": serializers.CharField(),
        "reasons": serializers.ListField(child=_strings(), help_text="{type, comment}"),
        "authResults": inline_serializer(
            name="DmarcAuthResults",
            fields={
                "dkim": serializers.ListField(child=_strings()),
                "spf": serializers.ListField(child=_strings()),
            },
        ),
    },
)
TLS_POLICY = inline_serializer(
    name="TlsPolicy",
    fields={
        "policyType": serializers.CharField(),
        "policyDomain": serializers.CharField(),
        "policyString": serializers.ListField(child=serializers.CharField()),
        "mxHost": serializers.ListField(child=serializers.CharField()),
        "successful": serializers.IntegerField(),
        "failed": serializers.IntegerField(),
        "failureDetails": serializers.ListField(child=serializers.DictField()),
    },
)
DMARC_ITEM = inline_serializer(name="DmarcReportItem", fields=_dmarc_fields())
TLS_ITEM = inline_serializer(name="TlsReportItem", fields=_tls_fields())
ARF_ITEM = inline_serializer(name="ArfReportItem", fields=_arf_fields())
DETAILS = {
    "dmarc": inline_serializer(
        name="DmarcReportDetail",
        fields={
            **_dmarc_fields(),
            "records": inline_serializer(
                name="DmarcRecordPage",
                fields={
                    "items": serializers.ListField(child=DMARC_RECORD),
                    "total": serializers.IntegerField(),
                },
            ),
        },
    ),
    "tls": inline_serializer(
        name="TlsReportDetail",
        fields={**_tls_fields(), "policies": serializers.ListField(child=TLS_POLICY)},
    ),
    "arf": inline_serializer(
        name="ArfReportDetail",
        fields={
            **_arf_fields(),
            "fields": serializers.DictField(
                child=serializers.ListField(child=serializers.CharField()),
                help_text="Every feedback field (lower-case name: values)",
            ),
            "originalHeaders": serializers.CharField(),
        },
    ),
}
UPLOAD_RESULT = inline_serializer(
    name="ReportUploadResult",
    fields={
        "file": serializers.CharField(),
        "status": serializers.CharField(help_text="ingested, duplicate or failed"),
        "type": serializers.CharField(allow_null=True, help_text=KINDS),
        "id": serializers.IntegerField(
            allow_null=True, help_text="The report; for failed, the failed ingest"
        ),
        "reason": serializers.CharField(allow_null=True),
    },
)
FAILURE_ITEM = inline_serializer(
    name="ReportIngestFailure",
    fields={
        "id": serializers.IntegerField(),
        "file": serializers.CharField(),
        "reason": serializers.CharField(),
        "size": serializers.IntegerField(),
        "source": serializers.CharField(help_text="upload, api or smtp"),
        "receivedAt": serializers.DateTimeField(),
        "uploadedBy": serializers.CharField(allow_null=True),
    },
)
DMARC_SUMMARY = inline_serializer(
    name="DmarcSummaryData",
    fields={
        "daily": serializers.ListField(
            child=inline_serializer(
                name="DmarcDay",
                fields={
                    "day": serializers.DateField(),
                    "pass": serializers.IntegerField(),
                    "fail": serializers.IntegerField(),
                },
            )
        ),
        "alignment": inline_serializer(
            name="DmarcAlignment",
            fields={
                "both": serializers.IntegerField(help_text="SPF and DKIM aligned and passing"),
                "spfOnly": serializers.IntegerField(),
                "dkimOnly": serializers.IntegerField(),
                "none": serializers.IntegerField(help_text="Neither: DMARC failed"),
            },
        ),
        "sources": serializers.ListField(
            child=inline_serializer(
                name="DmarcSource",
                fields={
                    "sourceIp": serializers.CharField(allow_null=True),
                    "name": serializers.CharField(help_text="PTR name; empty until looked up"),
                    "messages": serializers.IntegerField(),
                    "pass": serializers.IntegerField(),
                    "fail": serializers.IntegerField(),
                    "passRate": serializers.FloatField(allow_null=True),
                    "reporters": serializers.IntegerField(),
                    "reportingOrgs": serializers.ListField(child=serializers.CharField()),
                },
            )
        ),
    },
)
