"""SMTP TLS reports (RFC 8460): JSON, read whole (they are small; the size is capped).

Lenient about what reporters leave out (contact-info, policy-domain of a no-policy-found
policy, IPs and MX names in failure details) and about types (`mx-host` as a string,
counts as strings); strict about the structure that carries the numbers.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, BinaryIO

from apps.reports.parsing.containers import read_capped
from apps.reports.parsing.errors import Limits, ReportError, TooLarge, size_text

FAILURE_DETAIL_FIELDS = (
    "result-type",
    "sending-mta-ip",
    "receiving-mx-hostname",
    "receiving-mx-helo",
    "receiving-ip",
    "failed-session-count",
    "additional-information",
    "failure-reason-code",
)


@dataclass
class TlsPolicy:
    policy_type: str
    policy_domain: str
    policy_string: list[str]
    mx_host: list[str]
    successful: int
    failed: int
    failure_details: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class TlsReport:
    org_name: str
    report_id: str
    contact_info: str
    begin: datetime | None
    end: datetime | None
    policies: list[TlsPolicy]

    @property
    def domain(self) -> str:
        """The domain the report is about: the first policy that names one."""
        return next((p.policy_domain for p in self.policies if p.policy_domain), "")


def _datetime(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().replace("z", "Z")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# As for a DMARC record's count: at most 15 digits, so the sum of a report's policies
# stays far inside the 64-bit columns that store it.
MAX_COUNT = 10**15 - 1


def _count(value: Any, where: str) -> int:
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise ReportError(f"{where} is not a number: {value!r}.")
    number: int | None = None
    if isinstance(value, int) and value >= 0:
        number = value
    elif isinstance(value, float) and value.is_integer() and value >= 0:
        number = int(value)
    elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        text = value.strip()
        number = int(text) if len(text) <= 15 else MAX_COUNT + 1
    if number is None:
        raise ReportError(f"{where} is not a number: {str(value)[:64]!r}.")
    if number > MAX_COUNT:
        raise ReportError(f"{where} is larger than {MAX_COUNT}: {str(value)[:64]!r}.")
    return number


def _strings(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value.strip()] if value.strip() else []
    if isinstance(value, list):
        return [str(v).strip() for v in value if v is not None and str(v).strip()]
    return [str(value)]


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ("" if value is None else str(value))


def parse_tls(stream: BinaryIO, *, limits: Limits | None = None) -> TlsReport:
    limits = limits or Limits()
    error = TooLarge(f"The TLS report is larger than the {size_text(limits.max_json)} limit.")
    return parse_tls_bytes(read_capped(stream, limits.max_json, error))


def parse_tls_bytes(data: bytes) -> TlsReport:
    text = data.decode("utf-8", errors="replace").lstrip("\ufeff")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportError(
            f"The JSON is not valid: {exc.msg} (line {exc.lineno}, column {exc.colno})."
        ) from None
    except RecursionError:
        raise ReportError("The JSON is nested too deeply.") from None
    except ValueError:  # an integer of more than 4300 digits (sys.get_int_max_str_digits)
        raise ReportError("The JSON is not valid: it holds a number too long to read.") from None
    if not isinstance(document, dict):
        raise ReportError("The JSON is not a TLS report: it is not an object.")
    document = {str(k).lower(): v for k, v in document.items()}
    policies = document.get("policies")
    if "organization-name" not in document and policies is None:
        raise ReportError(
            "The JSON is not a TLS report: it has neither organization-name nor policies."
        )
    if not isinstance(policies, list):
        raise ReportError("The TLS report has no list of policies.")
    date_range = document.get("date-range") if isinstance(document.get("date-range"), dict) else {}
    report_id = _text(document.get("report-id"))
    if not report_id:  # RFC 8460 requires one; the content itself identifies the report
        report_id = "sha256:" + hashlib.sha256(data).hexdigest()
    return TlsReport(
        org_name=_text(document.get("organization-name")),
        report_id=report_id,
        contact_info=_text(document.get("contact-info")),
        begin=_datetime(date_range.get("start-datetime")),
        end=_datetime(date_range.get("end-datetime")),
        policies=[_policy(item, number) for number, item in enumerate(policies, 1)],
    )


def _policy(item: Any, number: int) -> TlsPolicy:
    if not isinstance(item, dict):
        raise ReportError(f"Policy {number} of the TLS report is not an object.")
    policy = item.get("policy") if isinstance(item.get("policy"), dict) else {}
    summary = item.get("summary") if isinstance(item.get("summary"), dict) else {}
    details = []
    raw_details = item.get("failure-details") or []
    if not isinstance(raw_details, list):
        raise ReportError(f"Policy {number}: failure-details is not a list.")
    for index, detail in enumerate(raw_details, 1):
        if not isinstance(detail, dict):
            raise ReportError(f"Policy {number}: failure detail {index} is not an object.")
        clean = {
            key: _text(detail.get(key))
            for key in FAILURE_DETAIL_FIELDS
            if key in detail and key != "failed-session-count"
        }
        clean["failed-session-count"] = _count(
            detail.get("failed-session-count"),
            f"Policy {number}, failure detail {index}: failed-session-count",
        )
        if "result-type" in clean:
            clean["result-type"] = clean["result-type"].lower()
        details.append(clean)
    return TlsPolicy(
        policy_type=_text(policy.get("policy-type")).lower(),
        policy_domain=_text(policy.get("policy-domain")).lower().rstrip("."),
        policy_string=_strings(policy.get("policy-string")),
        mx_host=_strings(policy.get("mx-host")),
        successful=_count(
            summary.get("total-successful-session-count"),
            f"Policy {number}: total-successful-session-count",
        ),
        failed=_count(
            summary.get("total-failure-session-count"),
            f"Policy {number}: total-failure-session-count",
        ),
        failure_details=details,
    )
