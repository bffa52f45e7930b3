"""DNS verification: ask DNS for each record a domain needs and say what was found.

Pure DNS logic, no database: `check_record` looks one expected record up and compares what
it means (not its bytes); `overall_status` sums a domain's results up. The service
apps.domains.services.domain_dns_check_run stores what they find.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import dns.exception
import dns.resolver

from apps.domains.models import DnsCheckResult, DomainProfile

logger = logging.getLogger(__name__)

OK = DnsCheckResult.Status.OK
MISSING = DnsCheckResult.Status.MISSING
MISMATCH = DnsCheckResult.Status.MISMATCH
ERROR = DnsCheckResult.Status.ERROR

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


def check_record_safely(resolver: dns.resolver.Resolver, record: dict) -> Result:
    """check_record, with a crash turned into an error result: one odd record must not lose
    the results of the others."""
    try:
        return check_record(resolver, record)
    except Exception as exc:
        logger.exception("DNS check of %s %s failed", record["type"], record["name"])
        return ERROR, [], f"check failed: {exc}"[:512]


def overall_status(results: Iterable[tuple[str, bool]]) -> str:
    """A domain's DNS status from its (status, required) results: ok when every record is
    found, failing when a required one is not, partial otherwise."""
    results = list(results)
    if all(status == OK for status, _ in results):
        return DomainProfile.Status.OK
    if any(required and status != OK for status, required in results):
        return DomainProfile.Status.FAILING
    return DomainProfile.Status.PARTIAL
