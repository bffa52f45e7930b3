"""DNS verification: ask DNS for each record a domain needs and say what was found.

`check_record` is pure DNS (one resolver, one expected record); the functions below it run
a whole domain's check as a TaskRun (started from a page) or on the hourly schedule.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import dns.exception
import dns.resolver
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.accounts.models import Principal, PrincipalType
from apps.accounts.permissions import Perm
from apps.domains.models import DnsCheckResult, DomainProfile
from apps.domains.records import verification_name
from apps.domains.selectors import domain_get
from apps.domains.services import domain_profile_ensure, expected_records
from mailadmin.core.models import TaskRun
from mailadmin.core.progress import (
    task_run_claim,
    task_run_finish,
    task_run_progress,
    task_run_start,
)
from mailadmin.dns import make_resolver
from mailadmin.errors import PermissionDenied

logger = logging.getLogger(__name__)

OK = DnsCheckResult.Status.OK
MISSING = DnsCheckResult.Status.MISSING
MISMATCH = DnsCheckResult.Status.MISMATCH
ERROR = DnsCheckResult.Status.ERROR

# A scheduled check skips a domain checked this recently (a duplicate beat tick, a retry).
RECHECK_AFTER = timedelta(minutes=50)

Result = tuple[str, list[str], str]


# --- one record --------------------------------------------------------------------------


def _host(value: str) -> str:
    return value.strip().rstrip(".").lower()


def _text(value: str) -> str:
    return " ".join(value.split())


def _lookup(resolver: dns.resolver.Resolver, name: str, rtype: str) -> list[Any] | Result:
    """The answer's rdata, or a finished (status, found, detail) when there is none."""
    try:
        return list(resolver.resolve(name, rtype))
    except dns.resolver.NXDOMAIN:
        return MISSING, [], f"{name} does not exist (NXDOMAIN)"
    except dns.resolver.NoAnswer:
        return MISSING, [], f"no {rtype} record at {name}"
    except dns.resolver.LifetimeTimeout:
        return ERROR, [], f"timeout: no answer for {name} {rtype} within {resolver.lifetime:g}s"
    except dns.resolver.NoNameservers as exc:
        answers = []
        for error in exc.kwargs.get("errors") or []:
            server, _tcp, port, problem, *_ = error
            server = str(server)  # dnspython 2.6+: "Do53:127.0.0.1@5353"
            if server.startswith("Do53:"):
                server = server[5:].rsplit("@", 1)[0]
            problem = str(problem) or type(problem).__name__
            answers.append(f"{server}:{port} {problem}")
        detail = "; ".join(answers) or "no nameservers configured"
        return ERROR, [], f"lookup of {name} {rtype} failed: {detail}"[:512]
    except dns.exception.DNSException as exc:
        return ERROR, [], f"lookup of {name} {rtype} failed: {exc or type(exc).__name__}"[:512]


def _present(rtype: str, rdata: Any) -> str:
    if rtype == "TXT":
        return b"".join(rdata.strings).decode("utf-8", "replace")
    return rdata.to_text()


def _tags(text: str) -> dict[str, str]:
    tags = {}
    for part in text.split(";"):
        key, sep, value = part.partition("=")
        if sep:
            tags[key.strip().lower()] = "".join(value.split())
    return tags


def _check_txt(name: str, expected: str, found: list[str]) -> Result:
    expected_text = _text(expected)
    lowered = expected_text.lower()
    if lowered.startswith("v=spf1"):
        spf = [t for t in found if _text(t).lower().startswith("v=spf1")]
        if not spf:
            return MISSING, found, "no SPF record (v=spf1)"
        if len(spf) > 1:
            return MISMATCH, found, f"{len(spf)} SPF records; RFC 7208 allows one"
        if _text(spf[0]) == expected_text:
            return OK, found, ""
        return MISMATCH, found, "the SPF record differs"
    if name.lower().startswith("_dmarc."):
        dmarc = [t for t in found if _text(t).startswith("v=DMARC1")]
        if not dmarc:
            return MISSING, found, "no DMARC record (v=DMARC1)"
        if len(dmarc) > 1:
            return MISMATCH, found, f"{len(dmarc)} DMARC records; RFC 7489 allows one"
        return OK, found, ""  # the policy is the owner's choice
    if "._domainkey." in name.lower():
        want = _tags(expected_text).get("p")
        keys = [_tags(t).get("p") for t in found if "p" in _tags(t)]
        if not keys:
            return MISSING, found, "no DKIM key record (p=)"
        if want in keys:
            return OK, found, ""
        return MISMATCH, found, "the published DKIM key (p=) differs"
    if expected_text in (_text(t) for t in found):
        return OK, found, ""
    return MISMATCH, found, f"none of the {len(found)} TXT records matches"


def check_record(resolver: dns.resolver.Resolver, record: dict) -> Result:
    """Look one expected record up: (status, found values, detail) with status ok, missing,
    mismatch or error. `record` is {type, name, content, ...} as records.py makes it."""
    rtype = record["type"].upper()
    name = record["name"]
    expected = record["content"]
    answer = _lookup(resolver, name, rtype)
    if isinstance(answer, tuple):
        return answer
    found = [_present(rtype, rdata) for rdata in answer]
    if rtype == "TXT":
        return _check_txt(name, expected, found)
    if rtype == "MX":
        want = _host(expected.split()[-1])
        if want in (_host(r.exchange.to_text()) for r in answer):
            return OK, found, ""
        return MISMATCH, found, f"no MX points to {want}."
    if rtype == "CNAME":
        want = _host(expected)
        if want in (_host(r.target.to_text()) for r in answer):
            return OK, found, ""
        return MISMATCH, found, f"the CNAME does not point to {want}."
    if rtype == "SRV":
        *_, port, target = expected.split()
        want = (int(port), _host(target))
        if want in ((r.port, _host(r.target.to_text())) for r in answer):
            return OK, found, ""
        return MISMATCH, found, f"no SRV record for {want[1]}. port {want[0]}"
    if _text(expected) in (_text(f) for f in found):
        return OK, found, ""
    return MISMATCH, found, f"none of the {rtype} records matches"


# --- a whole domain ------------------------------------------------------------------------


def run_kind(domain_id: int) -> str:
    """The TaskRun kind of one domain's checks, so its page finds its latest run."""
    return f"dns-check:{domain_id}"


def domain_dns_check_start(*, actor: Principal, domain: Principal | int) -> TaskRun:
    """Start a DNS check of one of the actor's domains; a worker runs it."""
    from apps.domains.tasks import domain_dns_check_task  # noqa: PLC0415 - tasks import us

    if not actor.has_permission(Perm.DNS_CHECK):
        raise PermissionDenied(Perm.DNS_CHECK)
    domain_id = domain if isinstance(domain, int) else domain.pk
    domain = domain_get(actor=actor, name_or_id=domain_id)
    return task_run_start(
        actor=actor,
        kind=run_kind(domain.pk),
        title=f"DNS check of {domain.name}",
        task=domain_dns_check_task,
        domain_id=domain.pk,
    )


def _claim_scheduled(profile: DomainProfile) -> bool:
    """A scheduled check proceeds only if no other check ran in the last RECHECK_AFTER."""
    now = timezone.now()
    stale = Q(dns_checked_at__isnull=True) | Q(dns_checked_at__lt=now - RECHECK_AFTER)
    return DomainProfile.objects.filter(stale, pk=profile.pk).update(dns_checked_at=now) == 1


def domain_dns_check_run(*, domain_id: int, run_id: str | None = None) -> str | None:
    """Check every expected record of a domain and store the outcome.

    With a run_id, progress goes to that TaskRun (claimed first, so a redelivered message
    does nothing). Without one it is a scheduled check, claimed by its dns_checked_at.
    Returns the domain's new dns_status, or None when there was nothing to do.
    """
    domain = Principal.objects.filter(pk=domain_id, type=PrincipalType.DOMAIN).first()
    if domain is None:
        if run_id and task_run_claim(run_id, total=0):
            task_run_finish(run_id, ok=False, message="The domain no longer exists.")
        return None
    profile = domain_profile_ensure(domain=domain)
    records = expected_records(domain=domain)
    if run_id is not None:
        if not task_run_claim(run_id, total=len(records)):
            return None
    elif not _claim_scheduled(profile):
        return None

    resolver = make_resolver()
    results: list[DnsCheckResult] = []
    rows = []
    now = timezone.now()
    for done, record in enumerate(records, start=1):
        try:
            status, found, detail = check_record(resolver, record)
        except Exception as exc:  # one odd record must not lose the others' results
            logger.exception("DNS check of %s %s failed", record["type"], record["name"])
            status, found, detail = ERROR, [], f"check failed: {exc}"[:512]
        results.append(
            DnsCheckResult(
                domain=domain,
                tenant_id=domain.tenant_id,
                record_type=record["type"],
                name=record["name"],
                expected=record["content"],
                found="\n".join(found),
                status=status,
                required=record.get("required", True),
                detail=detail[:512],
                checked_at=now,
            )
        )
        label = f"{record['type']} {record['name']}"
        shown = detail or ("found" if status == OK else status)
        rows.append({"name": label, "ok": status == OK, "detail": shown})
        if run_id is not None:
            task_run_progress(run_id, done=done, message=f"{label}: {shown}")

    if all(r.status == OK for r in results):
        dns_status = DomainProfile.Status.OK
    elif any(r.required and r.status != OK for r in results):
        dns_status = DomainProfile.Status.FAILING
    else:
        dns_status = DomainProfile.Status.PARTIAL
    proof = verification_name(domain.name)
    verified = any(r.status == OK and r.name == proof for r in results)
    with transaction.atomic():
        DnsCheckResult.objects.filter(domain=domain).delete()
        DnsCheckResult.objects.bulk_create(results)
        changes = {"dns_status": dns_status, "dns_checked_at": now}
        if verified and profile.verified_at is None:
            changes["verified_at"] = now
        DomainProfile.objects.filter(pk=profile.pk).update(**changes)

    if run_id is not None:
        found_count = sum(r.status == OK for r in results)
        task_run_finish(
            run_id,
            ok=dns_status != DomainProfile.Status.FAILING,
            message=f"{found_count} of {len(results)} records found",
            result={"rows": rows, "status": dns_status},
        )
    return dns_status


def domains_due(*, minute: int) -> list[int]:
    """Domain ids checked in this minute of the hour: id % 60 spreads them over the hour."""
    return list(
        Principal.objects.filter(type=PrincipalType.DOMAIN)
        .alias(slot=F("id") % 60)
        .filter(slot=minute % 60)
        .order_by("id")
        .values_list("id", flat=True)
    )
