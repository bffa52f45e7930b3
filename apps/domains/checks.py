"""DNS verification: ask DNS for each record a domain needs and say what a receiving mail
server would conclude.

Pure DNS logic, no database. `check_domain` looks every expected record of one domain up at
once (asyncio, each name/type asked once, under one deadline) and judges each record:
SPF is evaluated for this server's outbound addresses by pyspf, DMARC is parsed and
validated, CNAME chains are followed, MX aliases and null MX are diagnosed. A record is
`ok`, `missing`, `mismatch` or `error` (the lookup itself failed, so nothing is known about
the customer's DNS). apps.domains.services.domain_dns_check_run stores what it finds.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import re
import threading
import time
from collections.abc import Coroutine, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import dns.exception
import dns.name
import dns.resolver
import spf

from apps.domains.models import DnsCheckResult, DomainProfile
from apps.domains.records import SPF_SENDS_NOTHING
from mailadmin.converters import digits
from mailadmin.dns import WireResolver
from mailadmin.spf_rfc import RfcQuery

logger = logging.getLogger(__name__)

OK = DnsCheckResult.Status.OK
MISSING = DnsCheckResult.Status.MISSING
MISMATCH = DnsCheckResult.Status.MISMATCH
ERROR = DnsCheckResult.Status.ERROR

Result = tuple[str, list[str], str]
T = TypeVar("T")

MAX_CNAME_HOPS = 8
DMARC_TAGS = {
    "v",
    "p",
    "sp",
    "np",
    "rua",
    "ruf",
    "adkim",
    "aspf",
    "pct",
    "fo",
    "rf",
    "ri",
    "psd",
    "t",
}
DMARC_POLICIES = {"none", "quarantine", "reject"}
SPF_START = re.compile(r"^v=spf1(\s|$)", re.IGNORECASE)


def _host(value: str) -> str:
    return value.strip().rstrip(".").lower()


def _text(value: str) -> str:
    return " ".join(value.split())


def _present(rdata: Any) -> str:
    if hasattr(rdata, "strings"):
        return b"".join(rdata.strings).decode("utf-8", "replace")
    return rdata.to_text()


# --- lookups -------------------------------------------------------------------------------


@dataclass
class Answer:
    """One name/type lookup: its records (after any CNAME chain), or why there are none."""

    rdata: list[Any] = field(default_factory=list)
    canonical: str = ""  # the name the records were found at, when reached through a CNAME
    status: str = OK  # OK (records found), MISSING or ERROR
    detail: str = ""

    @property
    def found(self) -> list[str]:
        return [_present(r) for r in self.rdata]


def _failure(exc: Exception, name: str, rtype: str, lifetime: float) -> Answer:
    if isinstance(exc, dns.resolver.NXDOMAIN):
        return Answer(status=MISSING, detail=f"{name} does not exist (NXDOMAIN)")
    if isinstance(exc, dns.resolver.NoAnswer):
        return Answer(status=MISSING, detail=f"no {rtype} record at {name}")
    if isinstance(exc, dns.resolver.LifetimeTimeout):
        return Answer(
            status=ERROR, detail=f"timeout: no answer for {name} {rtype} within {lifetime:.2g}s"
        )
    if isinstance(exc, dns.resolver.NoNameservers):
        answers = []
        for error in exc.kwargs.get("errors") or []:
            server, _tcp, port, problem, *_ = error
            server = str(server)  # dnspython 2.6+: "Do53:127.0.0.1@5353"
            if server.startswith("Do53:"):
                server = server[5:].rsplit("@", 1)[0]
            answers.append(f"{server}:{port} {str(problem) or type(problem).__name__}")
        detail = "; ".join(answers) or "no nameservers configured"
        return Answer(status=ERROR, detail=f"lookup of {name} {rtype} failed: {detail}"[:512])
    return Answer(
        status=ERROR, detail=f"lookup of {name} {rtype} failed: {exc or type(exc).__name__}"[:512]
    )


Shared = dict[tuple[str, str], "asyncio.Future[Answer]"]


class Lookups:
    """Asks each name/type once per check, whatever number of records need it, and never
    past the check's deadline (a silent server costs one timeout, not one per record).

    `shared` is the lookups of a whole run of checks ("Check all"): a name several domains
    need (this server's A/AAAA, a common MX host's TLSA, a report address's authorisation
    record) is asked once for all of them. It lives only as long as that run, and a failed
    lookup is not shared once it has failed (the next domain asks again)."""

    def __init__(self, resolver: Any, *, deadline: float, shared: Shared | None = None) -> None:
        self.resolver = resolver
        self.deadline_at = time.monotonic() + deadline
        self.deadline = deadline
        self._tasks: dict[tuple[str, str], asyncio.Future[Answer]] = {}
        self._shared = shared

    def remaining(self) -> float:
        return self.deadline_at - time.monotonic()

    def get(self, name: str, rtype: str) -> asyncio.Future[Answer]:
        key = (name.lower().rstrip(".") + ".", rtype)
        task = self._tasks.get(key)
        if task is not None:
            return task
        if self._shared is not None:
            task = self._shared.get(key)
            if task is not None and task.done() and task.result().status == ERROR:
                task = None
            if task is None:
                task = self._shared[key] = asyncio.ensure_future(self._resolve(*key))
        else:
            task = asyncio.ensure_future(self._resolve(*key))
        self._tasks[key] = task
        return task

    async def _resolve(self, name: str, rtype: str) -> Answer:
        lifetime = min(self.resolver.lifetime, self.remaining())
        if lifetime <= 0:
            return Answer(
                status=ERROR,
                detail=f"not looked up: the check's deadline of {self.deadline:g}s passed",
            )
        try:
            if isinstance(self.resolver, WireResolver):  # its timeout starts with its turn
                answer = await self.resolver.resolve(
                    name, rtype, lifetime=lifetime, not_after=self.deadline_at
                )
            else:
                answer = await self.resolver.resolve(name, rtype, lifetime=lifetime)
        except dns.exception.DNSException as exc:
            return _failure(exc, name, rtype, lifetime)
        canonical = answer.canonical_name.to_text()
        return Answer(
            rdata=list(answer), canonical="" if _host(canonical) == _host(name) else canonical
        )


def _via(answer: Answer) -> str:
    return f" (found at {answer.canonical}, through a CNAME)" if answer.canonical else ""


# --- SPF -----------------------------------------------------------------------------------


def _spf_dns_lookup(name: str, qtype: str, tcpfallback: bool = True, timeout: float = 30):
    """pyspf's DNS hook, through our configured resolver.

    pyspf asks DNS through a module-level function (`spf.DNSLookup`) built on dnspython's
    default resolver, which reads /etc/resolv.conf; it offers no per-query nameserver. We
    install this one, same contract (pairs of ((name, type), value), TempError on failure).
    """
    from mailadmin.dns import make_resolver

    if getattr(_offline, "on", False):
        raise _NeedsNetwork(name, qtype)
    resolver = make_resolver()
    try:
        answers = resolver.resolve(name, qtype, lifetime=max(timeout, 0.1))
    except (dns.resolver.NoAnswer, dns.resolver.NXDOMAIN):
        return []
    except dns.exception.DNSException as exc:
        raise spf.TempError(f"DNS {exc}") from None
    values = []
    for rdata in answers:
        if qtype in ("A", "AAAA"):
            values.append(((name, qtype), rdata.address))
        elif qtype == "MX":
            values.append(((name, qtype), (rdata.preference, rdata.exchange)))
        elif qtype == "PTR":
            values.append(((name, qtype), rdata.target.to_text(True)))
        elif qtype in ("TXT", "SPF"):
            values.append(((name, qtype), rdata.strings))
    return values


spf.DNSLookup = _spf_dns_lookup
_offline = threading.local()


class _NeedsNetwork(Exception):
    """pyspf asked DNS while evaluating from the answers already at hand."""


def spf_evaluate(
    *, domain: str, ip: str, hostname: str, timeout: float, known: dict | None = None
) -> tuple[str, str]:
    """pyspf's verdict for mail from postmaster@domain sent from `ip`: (result, explanation).

    `known` seeds pyspf's answer cache ({(name, type): values}, its own format) with what the
    check already looked up, so the usual record ("mx" or "a") needs no query of its own.
    """
    query = RfcQuery(i=ip, s=f"postmaster@{domain}", h=hostname, timeout=max(timeout, 0.1))
    query.cache.update(known or {})
    result, _code, explanation = query.check()
    # A fail's exp= text is not shown here: pyspf's default stands, without a lookup.
    return result, str(explanation)


def _spf_evaluate_offline(**kwargs: Any) -> tuple[str, str] | None:
    """spf_evaluate from the seeded answers alone, in the event loop: None when pyspf needs
    a lookup (then it runs again in a thread). Most records need none, and a thread per
    domain would make the event loop wait for the GIL behind them."""
    _offline.on = True
    try:
        return spf_evaluate(**kwargs)
    except _NeedsNetwork:
        return None
    finally:
        _offline.on = False


async def _spf_known(
    lookups: Lookups, domain: str, txt: Answer, outbound: Answer | list[str], hostname: str
) -> dict[tuple[str, str], list]:
    """pyspf cache entries for the answers this check holds: the domain's TXT and MX, and
    this server's addresses (the MX host's A/AAAA when the MX points here)."""
    known: dict[tuple[str, str], list] = {}
    if not txt.canonical:
        known[(domain, "TXT")] = [r.strings for r in txt.rdata]
    mx = await lookups.get(domain, "MX")
    if mx.status == OK and not mx.canonical:
        known[(domain, "MX")] = [(r.preference, r.exchange) for r in mx.rdata]
    if isinstance(outbound, Answer) and outbound.status == OK:
        for rtype in ("A", "AAAA"):
            known[(_host(hostname), rtype)] = [
                r.address for r in outbound.rdata if r.rdtype.name == rtype
            ]
    return {key: value for key, value in known.items() if value}


async def _the_spf_record(lookups: Lookups, record: dict) -> tuple[Result | None, Any, str]:
    """(a result that ends the check, or None; the TXT answer; its one SPF record)."""
    answer = await lookups.get(record["name"], "TXT")
    if answer.status != OK:
        return (answer.status, [], answer.detail), answer, ""
    found = answer.found
    spf_records = [t for t in found if SPF_START.match(t.strip())]
    if not spf_records:
        return (MISSING, found, "no SPF record (v=spf1)"), answer, ""
    if len(spf_records) > 1:
        problem = (
            f"{len(spf_records)} SPF records; RFC 7208 allows one, so receivers "
            "treat the domain's SPF as broken (permerror)"
        )
        return (MISMATCH, found, problem), answer, ""
    return None, answer, spf_records[0]


async def _check_spf(
    lookups: Lookups, record: dict, *, outbound: Answer | list[str], hostname: str
) -> Result:
    domain = _host(record["name"])
    ended, answer, spf_record = await _the_spf_record(lookups, record)
    if ended is not None:
        return ended
    found = answer.found
    terms = spf_record.lower().split()
    if "+all" in terms or "all" in terms:
        return (
            MISMATCH,
            found,
            f"the SPF record ends in +all: it lets every server on the internet send as {domain}",
        )
    if isinstance(outbound, Answer):
        if outbound.status != OK:
            return (
                ERROR,
                found,
                f"could not check SPF: this server's address is unknown ({outbound.detail})",
            )
        ips = [r.address for r in outbound.rdata]
    else:
        ips = list(outbound)
    known = await _spf_known(lookups, domain, answer, outbound, hostname)
    for ip in ips:
        arguments = {
            "domain": domain,
            "ip": ip,
            "hostname": hostname,
            "timeout": lookups.remaining(),
            "known": known,
        }
        try:
            verdict = _spf_evaluate_offline(**arguments)
            if verdict is None:
                verdict = await asyncio.to_thread(spf_evaluate, **arguments)
            result, explanation = verdict
        except Exception as exc:  # pyspf raises on some malformed input
            return ERROR, found, f"could not check SPF: {exc}"[:512]
        if result == "pass":
            continue
        if result == "temperror":
            return ERROR, found, f"could not check SPF: {explanation}"[:512]
        if result == "permerror" and "lookup" in explanation.lower():
            return (
                MISMATCH,
                found,
                "the SPF record needs more than 10 DNS lookups (RFC 7208 4.6.4), so "
                f"receivers answer permerror: {explanation}"[:512],
            )
        if result == "permerror":
            return MISMATCH, found, f"the SPF record is invalid (permerror): {explanation}"[:512]
        return (
            MISMATCH,
            found,
            f"the SPF record does not authorise this server ({ip}): an SPF check gives {result}",
        )
    return OK, found, f"SPF passes for this server ({', '.join(ips)}){_via(answer)}"


async def _check_spf_sends_nothing(lookups: Lookups, record: dict) -> Result:
    """The SPF record of a name that sends no mail (a domain alias): right when it lets no
    server pass, whatever its spelling. Terms are evaluated left to right and the first
    `all` ends the evaluation (RFC 7208 4.6.2), so only what comes before it can authorise,
    and a "-" mechanism authorises nobody."""
    name = _host(record["name"])
    ended, answer, spf_record = await _the_spf_record(lookups, record)
    if ended is not None:
        return ended
    found = answer.found
    terms = spf_record.lower().split()[1:]
    mechanisms = [t for t in terms if "=" not in t]
    ends = [i for i, t in enumerate(mechanisms) if t.lstrip("+-~?") == "all"]
    before = mechanisms[: ends[0]] if ends else mechanisms
    allowing = [t for t in before if not t.startswith("-")]
    fix = f"{name} sends no mail: publish {SPF_SENDS_NOTHING}"
    if allowing:
        return MISMATCH, found, f"the SPF record authorises senders ({' '.join(allowing)}); {fix}"
    if not ends:
        redirect = [t for t in terms if t.startswith("redirect=")]
        if redirect:
            return (
                MISMATCH,
                found,
                f"the SPF record hands the decision to {redirect[0][9:]} ({redirect[0]}); {fix}",
            )
        return MISMATCH, found, f"the SPF record has no -all: forged mail gets neutral; {fix}"
    if mechanisms[ends[0]] != "-all":
        return (
            MISMATCH,
            found,
            f"the SPF record ends in {mechanisms[ends[0]]}, not -all: receivers may still "
            f"accept forged mail; {fix}",
        )
    return OK, found, f"no server may send as {name}{_via(answer)}"


# --- DMARC ---------------------------------------------------------------------------------


def _dmarc_tags(text: str) -> list[tuple[str, str]]:
    tags = []
    for part in text.split(";"):
        key, sep, value = part.partition("=")
        if part.strip():
            tags.append((key.strip().lower(), value.strip() if sep else ""))
    return tags


def dmarc_problems(text: str) -> tuple[list[str], list[str]]:
    """What RFC 7489 rejects in a DMARC record, and the rua/ruf domains it reports to."""
    problems: list[str] = []
    tags = _dmarc_tags(text)
    if not tags or tags[0] != ("v", "DMARC1"):
        problems.append("the record must start with v=DMARC1")
    values = dict(tags)
    for key, _ in tags:
        if key not in DMARC_TAGS:
            problems.append(f"unknown tag {key}")
    if "p" not in values:
        problems.append("no policy (p=)")
    for key in ("p", "sp", "np"):
        if key in values and values[key].lower() not in DMARC_POLICIES:
            problems.append(f"{key}={values[key]} is not none, quarantine or reject")
    for key in ("adkim", "aspf"):
        if key in values and values[key].lower() not in {"r", "s"}:
            problems.append(f"{key}={values[key]} is not r or s")
    if "pct" in values and not (
        digits(values["pct"]) and len(values["pct"]) <= 3 and int(values["pct"]) <= 100
    ):
        problems.append(f"pct={values['pct']} is not a number from 0 to 100")
    report_domains = []
    for key in ("rua", "ruf"):
        for uri in filter(None, (u.strip() for u in values.get(key, "").split(","))):
            if not uri.lower().startswith("mailto:") or "@" not in uri:
                problems.append(f"{key} {uri} is not a mailto: address")
                continue
            report_domains.append(_host(uri.split("@", 1)[1].split("!", 1)[0]))
    return problems, report_domains


async def _check_dmarc(lookups: Lookups, record: dict) -> Result:
    answer = await lookups.get(record["name"], "TXT")
    if answer.status != OK:
        return answer.status, [], answer.detail
    found = answer.found
    dmarc = [t for t in found if t.strip().lower().startswith("v=dmarc1")]
    if not dmarc:
        return MISSING, found, "no DMARC record (v=DMARC1)"
    if len(dmarc) > 1:
        return MISMATCH, found, f"{len(dmarc)} DMARC records; RFC 7489 allows one"
    problems, report_domains = dmarc_problems(dmarc[0])
    domain = _host(record["name"]).removeprefix("_dmarc.")
    outside = sorted({d for d in report_domains if d != domain and not d.endswith(f".{domain}")})
    proofs = [lookups.get(f"{domain}._report._dmarc.{d}", "TXT") for d in outside]
    for report_domain, proof in zip(outside, await asyncio.gather(*proofs), strict=True):
        if proof.status == ERROR:
            return ERROR, found, f"could not check DMARC reporting: {proof.detail}"
        if not any(t.strip().lower().startswith("v=dmarc1") for t in proof.found):
            problems.append(
                f"reports go to {report_domain}, which does not accept them for {domain} "
                f"(no v=DMARC1 record at {domain}._report._dmarc.{report_domain}.)"
            )
    if problems:
        return MISMATCH, found, "invalid DMARC record: " + "; ".join(problems)
    ours = _dmarc_addresses(record["content"])
    if ours and not ours & _dmarc_addresses(dmarc[0]):
        note = (
            f"valid, but aggregate reports do not go to {', '.join(sorted(ours))}, so they "
            "will not appear under Reports"
        )
        return OK, found, f"{note}{_via(answer)}"
    return OK, found, _via(answer).strip()


def _dmarc_addresses(text: str) -> set[str]:
    """The rua addresses of a DMARC record, lower case, without mailto: or size limits."""
    rua = dict(_dmarc_tags(text)).get("rua", "")
    return {
        uri.strip()[len("mailto:") :].split("!", 1)[0].lower()
        for uri in rua.split(",")
        if uri.strip().lower().startswith("mailto:")
    }


# --- the other types -----------------------------------------------------------------------


def _tags(text: str) -> dict[str, str]:
    return {k: "".join(v.split()) for k, v in _dmarc_tags(text)}


async def _check_txt(lookups: Lookups, record: dict) -> Result:
    name, expected = record["name"], _text(record["content"])
    answer = await lookups.get(name, "TXT")
    if answer.status != OK:
        return answer.status, [], answer.detail
    found = answer.found
    if "._domainkey." in name.lower():
        want = _tags(expected).get("p")
        keys = [_tags(t).get("p") for t in found if "p" in _tags(t)]
        if not keys:
            return MISSING, found, "no DKIM key record (p=)"
        if want in keys:
            return OK, found, _via(answer).strip()
        return MISMATCH, found, "the published DKIM key (p=) differs"
    if expected.lower().startswith("v=stsv1"):
        return _judge_mta_sts(expected, found, answer)
    if expected in (_text(t) for t in found):
        return OK, found, _via(answer).strip()
    if expected.lower().startswith("v=tlsrptv1") and any(
        _tags(t) == _tags(expected) for t in found
    ):
        return OK, found, _via(answer).strip()
    return MISMATCH, found, f"none of the {len(found)} TXT records matches"


def _judge_mta_sts(expected: str, found: list[str], answer: Answer) -> Result:
    """The _mta-sts TXT record (RFC 8461 3.1): one v=STSv1 record whose id is the id of
    the policy served here (senders refetch a cached policy only when the id changes)."""
    records = [t for t in found if t.strip().lower().startswith("v=stsv1")]
    if not records:
        return MISSING, found, "no MTA-STS record (v=STSv1)"
    if len(records) > 1:
        return (
            MISMATCH,
            found,
            f"{len(records)} MTA-STS records; RFC 8461 allows one, so senders ignore MTA-STS",
        )
    want, have = _tags(expected).get("id"), _tags(records[0]).get("id")
    if want != have:
        return (
            MISMATCH,
            found,
            f"the policy id is {have or 'missing'}, the policy served here has id {want}: "
            "senders keep using the policy they cached",
        )
    return OK, found, _via(answer).strip()


async def _check_tlsa(lookups: Lookups, record: dict) -> Result:
    """TLSA: the same usage, selector, matching type and data (hex in any case/spacing)."""
    usage, selector, mtype, *data = record["content"].split()
    want = (int(usage), int(selector), int(mtype), "".join(data).lower())
    answer = await lookups.get(record["name"], "TLSA")
    if answer.status != OK:
        return answer.status, [], answer.detail
    have = [(r.usage, r.selector, r.mtype, r.cert.hex()) for r in answer.rdata]
    if want in have:
        return OK, answer.found, _via(answer).strip()
    return (
        MISMATCH,
        answer.found,
        "no TLSA record matches this server's certificate key: DANE senders will refuse "
        "to deliver once the old record's key is gone",
    )


async def _cname_chain(lookups: Lookups, name: str) -> tuple[list[str], Answer | None]:
    """The names a CNAME chain starting at `name` goes through (without `name`), and the
    failed lookup that ended it early, if one did."""
    chain: list[str] = []
    current = name
    for _ in range(MAX_CNAME_HOPS):
        answer = await lookups.get(current, "CNAME")
        if answer.status == ERROR:
            return chain, answer
        if answer.status != OK:
            break
        current = answer.rdata[0].target.to_text()
        if current in chain:
            break
        chain.append(current)
    return chain, None


async def _check_cname(lookups: Lookups, record: dict) -> Result:
    name, want = record["name"], _host(record["content"])
    answer = await lookups.get(name, "CNAME")
    if answer.status != OK:
        return answer.status, [], answer.detail
    found = answer.found
    chain, failed = await _cname_chain(lookups, name)
    hosts = [_host(c) for c in chain]
    if hosts and hosts[0] == want:
        return OK, found, ""
    if want in hosts:
        return OK, found, "reached through the CNAME chain " + " -> ".join([name, *chain])
    if failed is not None:
        return ERROR, found, failed.detail
    return MISMATCH, found, f"the CNAME does not point to {want}."


async def _check_mx(lookups: Lookups, record: dict) -> Result:
    name, want = record["name"], _host(record["content"].split()[-1])
    answer = await lookups.get(name, "MX")
    if answer.status != OK:
        return answer.status, [], answer.detail
    found = answer.found
    exchanges = [_host(r.exchange.to_text()) for r in answer.rdata]
    if exchanges == [""]:
        return (
            MISMATCH,
            found,
            "null MX (RFC 7505): the domain says it accepts no mail at all; "
            f"replace it with an MX pointing to {want}.",
        )
    if want in exchanges:
        return OK, found, _via(answer).strip()
    for exchange in exchanges:
        chain, _ = await _cname_chain(lookups, exchange)
        if chain:
            ends = f", which leads to {want}." if want in map(_host, chain) else ""
            return (
                MISMATCH,
                found,
                f"the MX points to {exchange}., an alias (CNAME) to {chain[-1]}{ends}; "
                f"RFC 2181 10.3 forbids MX targets that are aliases: point the MX to {want}.",
            )
    return MISMATCH, found, f"no MX points to {want}."


async def _check_srv(lookups: Lookups, record: dict) -> Result:
    *_, port, target = record["content"].split()
    want = (int(port), _host(target))
    answer = await lookups.get(record["name"], "SRV")
    if answer.status != OK:
        return answer.status, [], answer.detail
    if want in ((r.port, _host(r.target.to_text())) for r in answer.rdata):
        return OK, answer.found, _via(answer).strip()
    return MISMATCH, answer.found, f"no SRV record for {want[1]}. port {want[0]}"


async def _check_other(lookups: Lookups, record: dict) -> Result:
    answer = await lookups.get(record["name"], record["type"].upper())
    if answer.status != OK:
        return answer.status, [], answer.detail
    if _text(record["content"]) in (_text(f) for f in answer.found):
        return OK, answer.found, ""
    return MISMATCH, answer.found, f"none of the {record['type']} records matches"


async def _check_record(
    lookups: Lookups, record: dict, *, outbound: Answer | list[str], hostname: str
) -> Result:
    rtype = record["type"].upper()
    if rtype == "TXT" and _text(record["content"]).lower() == SPF_SENDS_NOTHING:
        return await _check_spf_sends_nothing(lookups, record)
    if rtype == "TXT" and record["content"].lower().startswith("v=spf1"):
        return await _check_spf(lookups, record, outbound=outbound, hostname=hostname)
    if rtype == "TXT" and record["name"].lower().startswith("_dmarc."):
        return await _check_dmarc(lookups, record)
    checker = {
        "TXT": _check_txt,
        "MX": _check_mx,
        "CNAME": _check_cname,
        "SRV": _check_srv,
        "TLSA": _check_tlsa,
    }
    return await checker.get(rtype, _check_other)(lookups, record)


async def _check_record_safely(lookups: Lookups, record: dict, **kwargs: Any) -> Result:
    """A crash becomes an error result: one odd record must not lose the others' results."""
    try:
        return await _check_record(lookups, record, **kwargs)
    except Exception as exc:
        logger.exception("DNS check of %s %s failed", record["type"], record["name"])
        return ERROR, [], f"check failed: {exc}"[:512]


async def _outbound_addresses(lookups: Lookups, hostname: str) -> Answer:
    """This server's A and AAAA addresses, the ones a domain's SPF must authorise."""
    a, aaaa = await asyncio.gather(lookups.get(hostname, "A"), lookups.get(hostname, "AAAA"))
    if a.status == OK or aaaa.status == OK:
        return Answer(rdata=a.rdata + aaaa.rdata)
    if ERROR in (a.status, aaaa.status):
        return a if a.status == ERROR else aaaa
    return Answer(status=MISSING, detail=f"{hostname} has no A or AAAA record")


def _session(resolver: Any) -> contextlib.AbstractAsyncContextManager:
    """The resolver's socket session (mailadmin.dns.WireResolver); dnspython's has none."""
    session = getattr(resolver, "session", None)
    return session() if session is not None else contextlib.nullcontext()


async def check_domain(
    records: Sequence[dict],
    *,
    resolver: Any,
    hostname: str,
    outbound_ips: Sequence[str] = (),
    deadline: float = 15.0,
    shared: Shared | None = None,
) -> list[Result]:
    """(status, found values, diagnostic) for each record, in order, looked up concurrently.

    `records` are {type, name, content, ...} as records.py makes them; `outbound_ips` are
    the addresses SPF must authorise (empty: the A/AAAA addresses of `hostname`);
    `resolver` is mailadmin.dns.make_async_resolver()'s (or dnspython's asyncio resolver);
    `shared` the lookups of the run this check is part of (see Lookups).
    """
    async with _session(resolver):
        return await _check_domain(
            records,
            resolver=resolver,
            hostname=hostname,
            outbound_ips=outbound_ips,
            deadline=deadline,
            shared=shared,
        )


async def _check_domain(
    records: Sequence[dict],
    *,
    resolver: Any,
    hostname: str,
    outbound_ips: Sequence[str],
    deadline: float,
    shared: Shared | None,
) -> list[Result]:
    lookups = Lookups(resolver, deadline=deadline, shared=shared)
    for record in records:  # start every lookup now; the checks then await them
        lookups.get(record["name"], record["type"].upper())
    outbound: Answer | list[str]
    if outbound_ips:
        outbound = [str(ipaddress.ip_address(ip)) for ip in outbound_ips]
    else:
        outbound = await _outbound_addresses(lookups, hostname)
    return list(
        await asyncio.gather(
            *(
                _check_record_safely(lookups, record, outbound=outbound, hostname=hostname)
                for record in records
            )
        )
    )


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a check from synchronous code (tasks, services): in this thread, or in a fresh
    one when this thread already runs an event loop (asyncio.run refuses that)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def overall_status(results: Iterable[tuple[str, bool]]) -> str | None:
    """A domain's DNS status from its (status, required) results: ok when every record is
    found, failing when a required one is not, partial otherwise; None when a lookup failed
    (our resolver's trouble says nothing about the domain: it keeps its status)."""
    results = list(results)
    if any(status == ERROR for status, _ in results):
        return None
    if all(status == OK for status, _ in results):
        return DomainProfile.Status.OK
    if any(required and status != OK for status, required in results):
        return DomainProfile.Status.FAILING
    return DomainProfile.Status.PARTIAL


async def check_domains(
    domains: Sequence[Sequence[dict]],
    *,
    concurrency: int,
    resolver: Any,
    hostname: str,
    outbound_ips: Sequence[str] = (),
    deadline: float = 15.0,
    shared: Shared | None = None,
) -> list[list[Result]]:
    """check_domain for many domains, at most `concurrency` at a time (each under its own
    deadline, which starts when its turn comes): "Check all" and the benchmark. Names that
    several domains need are asked once for all of them (`shared`, for this call when not
    given)."""
    shared = {} if shared is None else shared
    results: list[list[Result]] = [[] for _ in domains]
    queue = iter(range(len(domains)))

    async def worker() -> None:
        # `concurrency` workers taking the next domain (not one task per domain waiting on
        # a semaphore: Python 3.11's scans its waiters on every acquire)
        for index in queue:
            results[index] = await _check_domain(
                domains[index],
                resolver=resolver,
                hostname=hostname,
                outbound_ips=outbound_ips,
                deadline=deadline,
                shared=shared,
            )

    async with _session(resolver):
        await asyncio.gather(*(worker() for _ in range(max(min(concurrency, len(domains)), 1))))
    return results
