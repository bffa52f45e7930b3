"""Sender authentication of one received message: SPF (pyspf), DKIM and ARC (dkimpy),
DMARC (RFC 7489, organisational domains from the Public Suffix List bundled with the
`publicsuffixlist` package, never fetched) and iprev, all asking DNS through the scan's
ScanLookups (one deadline: a timeout is `temperror`, never a hang), and the RFC 8601
Authentication-Results header that reports them.
"""

from __future__ import annotations

import ipaddress
import logging
import random
import re
from dataclasses import dataclass, field

import dkim
import spf
from publicsuffixlist import PublicSuffixList

from apps.accounts.emails import InvalidAddress, normalize_domain
from apps.spamfilter.lookups import ERROR, FOUND, NONE, ScanLookups
from mailadmin.spf_rfc import RfcQuery, explained

logger = logging.getLogger(__name__)
_psl = PublicSuffixList()  # the snapshot shipped in the package: no network
MAX_PTR_NAMES = 10  # RFC 8601 iprev / RFC 7208 5.5: at most 10 PTR names are checked
MAX_SIGNATURES = 10  # DKIM signatures verified per message (the rest are not looked at)
MAX_ARC_SETS = 50  # RFC 8617 4.2.1: instances 1 to 50
# Tried only where a word of the address can start (a search from every character of a
# long word ran over the rest of it from each: quadratic, on a From address of the mail).
ADDRESS = re.compile(r"(?<![^<>\s])<?([^<>\s]*@([^<>\s@]+))>?\s*$")


def organizational_domain(domain: str) -> str:
    """RFC 7489 3.2: the registered domain under a public suffix (the domain itself for a
    suffix or an unknown one)."""
    domain = domain.strip().rstrip(".").lower()
    return _psl.privatesuffix(domain) or domain


def aligned(a: str, b: str, mode: str) -> bool:
    a, b = a.rstrip(".").lower(), b.rstrip(".").lower()
    if not a or not b:
        return False
    if mode == "s":
        return a == b
    return organizational_domain(a) == organizational_domain(b)


def domain_of(address: str) -> str:
    match = ADDRESS.search(address or "")
    return match[2].rstrip(".").lower() if match else ""


def a_label(domain: str) -> str:
    """A domain as DNS and alignment know it: an internationalised one (SMTPUTF8 mail,
    `From: joe@пример.рф`) in A-labels (RFC 8616: `xn--e1afmkfd.xn--p1ai`), so that its
    DMARC record is found and it aligns with SPF and DKIM domains; "" when it is no valid
    internationalised name. An ASCII name is as given."""
    if domain.isascii():
        return domain
    try:
        return normalize_domain(domain)
    except InvalidAddress:
        return ""


# --- SPF -----------------------------------------------------------------------------------


class _SpfQuery(RfcQuery):
    """pyspf asking DNS through the scan's lookups instead of its module-wide hook."""

    scan_lookups: ScanLookups  # not `lookups`: pyspf counts its lookups in that name

    def dns(self, name, qtype, cnames=None, ignore_void=False):
        key = (str(name).rstrip(".").lower(), qtype)
        if not self.cache.get(key):
            answer = self.scan_lookups.get(key[0], qtype)
            if answer.status == ERROR:
                raise spf.TempError(f"DNS {answer.detail}")
            if answer.status == NONE:
                if not ignore_void:
                    self.void_lookups += 1
                    if self.void_lookups > spf.MAX_VOID_LOOKUPS:
                        raise spf.PermError(f"Void lookup limit of {spf.MAX_VOID_LOOKUPS} exceeded")
                return []
            if qtype in ("TXT", "SPF"):
                self.cache[key] = [[v.encode()] for v in answer.values]
            else:
                self.cache[key] = list(answer.values)
        return super().dns(name, qtype, cnames=cnames, ignore_void=ignore_void)


@dataclass
class SpfResult:
    result: str  # pass fail softfail neutral none permerror temperror
    domain: str  # the identity checked (MAIL FROM domain, or HELO)
    explanation: str = ""


def spf_check(lookups: ScanLookups, *, ip: str, sender: str, helo: str, receiver: str) -> SpfResult:
    """RFC 7208 check_host for the MAIL FROM identity (postmaster@HELO when it is empty)."""
    if not sender or "@" not in sender:
        sender = f"postmaster@{helo}" if helo else ""
    domain = domain_of(sender)
    if not domain or not ip:
        return SpfResult("none", domain, "no identity to check")
    if "." not in domain:  # RFC 7208 4.3: not a multi-label domain name (localhost, a TLD)
        return SpfResult("none", domain, f"{domain} is not a multi-label domain name")
    try:
        query = _SpfQuery(
            i=ip, s=sender, h=helo or domain, receiver=receiver, timeout=lookups.remaining()
        )
    except (spf.PermError, ValueError) as exc:
        return SpfResult("permerror", domain, str(exc))
    query.scan_lookups = lookups
    try:
        result, _code, explanation = query.check()
    except Exception as exc:  # noqa: BLE001 - pyspf raises odd things on odd input
        logger.info("SPF evaluation of %s failed: %s", domain, exc)
        return SpfResult("temperror", domain, str(exc)[:200])
    if result == "ambiguous":
        result = "permerror"
    return SpfResult(result, domain, explained(result, explanation) or "")


# --- DKIM / ARC ----------------------------------------------------------------------------


@dataclass
class DkimResult:
    result: str  # pass fail neutral temperror permerror (policy: none when unsigned)
    domain: str = ""
    selector: str = ""
    algorithm: str = ""
    detail: str = ""
    # RFC 6376 3.6.1: the key record says t=y, a Signer in testing mode. Its result is
    # reported but the message is judged as if unsigned, pass or fail: see `counts`.
    testing: bool = False

    @property
    def counts(self) -> bool:
        """Whether the result may be scored and relied on (alignment, sender lists)."""
        return not self.testing

    @property
    def verified(self) -> bool:
        """A pass that authenticates d= (not one of a key in testing mode)."""
        return self.result == "pass" and self.counts


class _KeyLookup:
    """dkimpy's dnsfunc over the scan's lookups, remembering whether DNS failed."""

    def __init__(self, lookups: ScanLookups) -> None:
        self.lookups = lookups
        self.temporary = False
        self.missing = False
        self.record = ""  # the last key record found

    def __call__(self, name: bytes | str, timeout: float = 5) -> bytes | None:
        text = name.decode("ascii", "replace") if isinstance(name, bytes) else name
        answer = self.lookups.get(text, "TXT")
        if answer.status == ERROR:
            self.temporary = True
            raise dkim.DnsTimeoutError(answer.detail)
        if answer.status != FOUND or not answer.values:
            self.missing = True
            return None
        self.record = answer.values[0]
        return self.record.encode()


def _tag(sig: bytes, name: str) -> str:
    match = re.search(rb"(?:^|;)\s*" + name.encode() + rb"\s*=\s*([^;]*)", sig)
    return re.sub(rb"\s+", b"", match[1]).decode("ascii", "replace") if match else ""


def _key_refuses(record: str, signature: bytes) -> str:
    """Why the key record refuses this signature, by the tags dkimpy does not read
    (RFC 6376 3.6.1): h= (the hash algorithms the key signs with) and t=s (the i= domain
    must be d= itself, not a subdomain of it); "" when it does not."""
    tags = {}
    for part in record.split(";"):
        name, _, value = part.partition("=")
        tags[name.strip()] = re.sub(r"\s+", "", value).lower()
    algorithm = _tag(signature, "a").lower()
    hashes = tags.get("h")
    if hashes and algorithm.rpartition("-")[2] not in hashes.split(":"):
        return f"the key allows h={hashes} only, not {algorithm}"
    identity = _tag(signature, "i").rpartition("@")[2].lower().rstrip(".")
    domain = _tag(signature, "d").lower().rstrip(".")
    if "s" in tags.get("t", "").split(":") and identity and identity != domain:
        return f"the key (t=s) allows no i= in a subdomain of d={domain}"
    return ""


def _testing(record: str) -> bool:
    """RFC 6376 3.6.1: t= is a colon-separated list of flags; y is testing mode."""
    for part in record.split(";"):
        name, _, value = part.partition("=")
        if name.strip() == "t":
            return "y" in re.sub(r"\s+", "", value).lower().split(":")
    return False


def _why_not(keys: _KeyLookup, selector: str, domain: str) -> tuple[str, str]:
    """dkimpy answers False for a bad signature and for a key it could not get or use."""
    if keys.temporary:
        return "temperror", f"key lookup for {selector}._domainkey.{domain} failed"
    if keys.missing:
        return "permerror", f"no key at {selector}._domainkey.{domain}"
    if re.search(r"(?:^|;)\s*p\s*=\s*(?:;|$)", keys.record):
        # RFC 6376 3.6.1, 6.1.2: an empty p= is a revoked key, PERMFAIL (key revoked)
        return "permerror", f"the key at {selector}._domainkey.{domain} is revoked (empty p=)"
    try:
        dkim.load_pk_from_dns(f"{selector}._domainkey.{domain}".encode(), keys)
    except Exception as exc:  # noqa: BLE001 - whatever the key's problem is
        return "permerror", f"unusable key: {exc}"
    return "fail", "signature did not verify"


def dkim_keys(message: bytes) -> list[str]:
    """The key names the DKIM and ARC signatures of the message need (to ask them at once)."""
    names = []
    for header in re.finditer(
        rb"^(?:dkim-signature|arc-message-signature|arc-seal):((?:.*\r?\n[ \t].*)*.*)",
        message.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0],
        re.IGNORECASE | re.MULTILINE,
    ):
        selector, domain = _tag(header[1], "s"), _tag(header[1], "d")
        if selector and domain:
            names.append(f"{selector}._domainkey.{domain}")
    return list(dict.fromkeys(names))[: MAX_SIGNATURES + 2]


def dkim_check(lookups: ScanLookups, message: bytes) -> list[DkimResult]:
    """Every DKIM-Signature, verified (an empty list: unsigned)."""
    keys = _KeyLookup(lookups)
    try:
        verifier = dkim.DKIM(message, timeout=max(lookups.remaining(), 0.1))
        signatures = [v for k, v in verifier.headers if k.lower() == b"dkim-signature"]
        signatures = signatures[:MAX_SIGNATURES]
    except Exception as exc:  # noqa: BLE001 - unparseable message
        return [DkimResult("permerror", detail=f"message not parseable: {exc}"[:200])]
    results = []
    for index, value in enumerate(signatures):
        domain, selector, algorithm = _tag(value, "d"), _tag(value, "s"), _tag(value, "a")
        refused = ""
        if algorithm.lower() == "rsa-sha1":
            # RFC 8301 3.1: rsa-sha1 MUST NOT be used for verifying (dkimpy does)
            refused = "rsa-sha1 signatures are not accepted (RFC 8301)"
        elif "from" not in _tag(value, "h").lower().split(":"):
            # RFC 6376 6.1.1: PERMFAIL (From field not signed); dkimpy verifies it
            refused = "the From field is not signed"
        if refused:
            results.append(DkimResult("permerror", domain.lower(), selector, algorithm, refused))
            continue
        keys.temporary = keys.missing = False
        keys.record = ""  # this signature's key, not the one before it
        try:
            ok = verifier.verify(idx=index, dnsfunc=keys)
            result, detail = ("pass", "") if ok else _why_not(keys, selector, domain)
            if ok and (refused := _key_refuses(keys.record, value)):
                result, detail = "permerror", refused
        except dkim.ValidationError as exc:
            mismatch = "body hash mismatch" in str(exc)
            result, detail = ("fail" if mismatch else "permerror"), str(exc)
        except dkim.DKIMException as exc:
            result, detail = ("temperror" if keys.temporary else "permerror"), str(exc)
        except Exception as exc:  # noqa: BLE001 - dkimpy on hostile input
            result, detail = "permerror", f"{type(exc).__name__}: {exc}"
        results.append(
            DkimResult(
                result, domain.lower(), selector, algorithm, detail[:200], _testing(keys.record)
            )
        )
    return results


@dataclass
class ArcResult:
    result: str  # none pass fail temperror
    detail: str = ""
    instances: int = 0


def arc_check(lookups: ScanLookups, message: bytes) -> ArcResult:
    if not re.search(rb"^arc-seal:", message, re.IGNORECASE | re.MULTILINE):
        return ArcResult("none")
    head = message.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    sets = len(re.findall(rb"^arc-seal[ \t]*:", head, re.IGNORECASE | re.MULTILINE))
    if sets > MAX_ARC_SETS:
        # RFC 8617 4.2.1: i= is 1 to 50. dkimpy reads every header field once per set:
        # 2,000 sets cost 5 s of a scan before it answered fail.
        return ArcResult("fail", f"more than {MAX_ARC_SETS} ARC sets")
    keys = _KeyLookup(lookups)
    try:
        verifier = dkim.ARC(message, timeout=max(lookups.remaining(), 0.1))
        cv, results, reason = verifier.verify(dnsfunc=keys)
    except Exception as exc:  # noqa: BLE001 - dkimpy on hostile input
        cv, results, reason = dkim.CV_Fail, [], str(exc)
    if keys.temporary:
        return ArcResult("temperror", reason, len(results))
    text = {dkim.CV_Pass: "pass", dkim.CV_Fail: "fail", dkim.CV_None: "none"}.get(cv, "fail")
    return ArcResult(text, "" if text == "pass" else str(reason)[:200], len(results))


# --- DMARC ---------------------------------------------------------------------------------


@dataclass
class DmarcResult:
    result: str  # none pass fail temperror permerror
    domain: str = ""  # the RFC5322.From domain
    policy: str = "none"  # the policy to apply: none quarantine reject (after sp=, pct=)
    published: dict[str, str] = field(default_factory=dict)
    spf_aligned: bool = False
    dkim_aligned: bool = False
    detail: str = ""
    record_domain: str = ""  # where the record was found (the From or organisational domain)

    @property
    def published_policy(self) -> str:
        """The policy the record sets for the From domain (sp= for a subdomain), or none."""
        policy = self.published.get("p", "none").lower()
        subdomain = self.published.get("sp", "").lower()
        if self.record_domain != self.domain and subdomain in ("none", "quarantine", "reject"):
            return subdomain
        return policy


DMARC_POLICIES = ("none", "quarantine", "reject")
NO_DMARC_POLICY = "DMARC record without a valid p= (or with an invalid sp=) and no valid rua="
# RFC 7489 6.4 dmarc-uri: an RFC 3986 URI (scheme ":" and URI characters, "," and "!"
# percent-encoded), then an optional "!" size limit.
_DMARC_URI = re.compile(
    r"[A-Za-z][A-Za-z0-9+.-]*:[A-Za-z0-9\-._~:/?#\[\]@$&'()*+;=%]+(?:![0-9]+[kmgt]?)?",
    re.IGNORECASE,
)

_DMARC_TAG_VALUES = {
    "adkim": lambda value: value.lower() in ("r", "s"),
    "aspf": lambda value: value.lower() in ("r", "s"),
    "pct": lambda value: re.fullmatch(r"[0-9]{1,3}", value) is not None and int(value) <= 100,
}


def _dmarc_record(values: tuple[str, ...]) -> tuple[dict[str, str] | None, str]:
    """(the record's tags, a problem). Without a valid p= (or with an invalid sp=) it is
    p=none when its rua= holds a valid URI, else (None, NO_DMARC_POLICY); (None, "")
    when there is no record."""
    records = [v for v in values if re.match(r"v\s*=\s*DMARC1\s*(;|$)", v, re.IGNORECASE)]
    if not records:
        return None, ""
    if len(records) > 1:
        return None, "more than one DMARC record"
    tags: dict[str, str] = {}
    for part in records[0].split(";"):
        if "=" in part:
            name, value = part.split("=", 1)
            tags[name.strip().lower()] = value.strip()
    # RFC 7489 6.3: an invalid value in the rest of the record is discarded for the default
    for name, valid in _DMARC_TAG_VALUES.items():
        if name in tags and not valid(tags[name]):
            del tags[name]
    policy, subdomain_policy = tags.get("p", "").lower(), tags.get("sp", "none").lower()
    if policy not in DMARC_POLICIES or subdomain_policy not in DMARC_POLICIES:
        # RFC 7489 6.6.3 step 6: act as p=none when rua= has a syntactically valid URI,
        # otherwise apply no DMARC processing (result none, not an error).
        uris = (u.strip() for u in tags.get("rua", "").split(","))
        if not any(_DMARC_URI.fullmatch(u) for u in uris):
            return None, NO_DMARC_POLICY
        tags["p"] = "none"
        tags.pop("sp", None)
    return tags, ""


def dmarc_lookups(from_domain: str) -> list[tuple[str, str]]:
    org = organizational_domain(from_domain)
    wanted = [(f"_dmarc.{from_domain}", "TXT")]
    if org != from_domain:
        wanted.append((f"_dmarc.{org}", "TXT"))
    return wanted


def dmarc_check(
    lookups: ScanLookups,
    *,
    from_domain: str,
    spf: SpfResult,
    dkim_results: list[DkimResult],
    rng: random.Random | None = None,
) -> DmarcResult:
    if not from_domain:
        return DmarcResult("none", detail="no RFC5322.From domain")
    org = organizational_domain(from_domain)
    answer = lookups.get(f"_dmarc.{from_domain}", "TXT")
    if answer.status == ERROR:
        return DmarcResult("temperror", from_domain, detail=answer.detail)
    record, problem = _dmarc_record(answer.values)
    at_org = False
    # (a record without a usable policy is still the From domain's: no organisational one)
    if record is None and not problem and org != from_domain:
        answer = lookups.get(f"_dmarc.{org}", "TXT")
        if answer.status == ERROR:
            return DmarcResult("temperror", from_domain, detail=answer.detail)
        record, problem = _dmarc_record(answer.values)
        at_org = True
    if problem == NO_DMARC_POLICY:
        return DmarcResult("none", from_domain, detail=problem)
    if problem:
        return DmarcResult("permerror", from_domain, detail=problem)
    if record is None:
        return DmarcResult("none", from_domain, detail="no DMARC record")
    aspf, adkim = record.get("aspf", "r").lower()[:1], record.get("adkim", "r").lower()[:1]
    spf_ok = spf.result == "pass" and aligned(spf.domain, from_domain, aspf)
    dkim_ok = any(r.verified and aligned(r.domain, from_domain, adkim) for r in dkim_results)
    policy = record["p"].lower()
    if at_org and record.get("sp", "").lower() in ("none", "quarantine", "reject"):
        policy = record["sp"].lower()  # the record is the organisational domain's
    result = "pass" if spf_ok or dkim_ok else "fail"
    applied = "none"
    if result == "fail":
        sampled = (rng or random).randrange(100) < int(record.get("pct", "100"))
        # RFC 7489 6.6.4: outside the sample, quarantine steps down to none, reject to
        # quarantine.
        applied = policy if sampled else {"reject": "quarantine"}.get(policy, "none")
    return DmarcResult(
        result,
        from_domain,
        applied,
        record,
        spf_ok,
        dkim_ok,
        "" if result == "pass" else "neither SPF nor DKIM aligned with the From domain",
        org if at_org else from_domain,
    )


MAX_AUTHOR_DOMAINS = 10  # the From domains judged; a From naming more is permerror


def dmarc_check_authors(
    lookups: ScanLookups,
    *,
    from_domains: list[str],
    spf: SpfResult,
    dkim_results: list[DkimResult],
    rng: random.Random | None = None,
) -> tuple[DmarcResult, list[DmarcResult]]:
    """(the result that applies, the result of each author domain). RFC 7489 6.6.1: a
    From naming several authors (one field or several) is checked for each of their
    domains, and the strictest policy among those that fail applies; with no failure the
    first error, else the first domain's result. Judging the first alone let
    `From: me@own.test, ceo@bank.test` pass on the sender's own domain while a reader saw
    the bank's address beside it."""
    domains = list(dict.fromkeys(d.lower() for d in from_domains if d))
    if len(domains) > MAX_AUTHOR_DOMAINS:
        detail = f"the From field names more than {MAX_AUTHOR_DOMAINS} author domains"
        return DmarcResult("permerror", domains[0], detail=detail), []
    results = [
        dmarc_check(lookups, from_domain=d, spf=spf, dkim_results=dkim_results, rng=rng)
        for d in domains or [""]
    ]
    failed = [r for r in results if r.result == "fail"]
    if failed:
        return max(failed, key=lambda r: DMARC_POLICIES.index(r.policy)), results
    errors = [r for r in results if r.result in ("temperror", "permerror")]
    return (errors or results)[0], results


# --- iprev ---------------------------------------------------------------------------------


@dataclass
class IprevResult:
    result: str  # pass fail temperror permerror (no PTR: permerror)
    ptr: str = ""  # the confirmed name (pass) or the first PTR name
    names: tuple[str, ...] = ()


def iprev_check(lookups: ScanLookups, ip: str) -> IprevResult:
    """RFC 8601 2.7.3: a PTR name whose A/AAAA records include the address (pass); no
    PTR data published (NXDOMAIN, NODATA) is permerror, PTR names that do not confirm
    forward fail, a DNS error or timeout temperror."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return IprevResult("permerror")
    answer = lookups.ptr(str(address))
    if answer.status == ERROR:
        return IprevResult("temperror")
    if answer.status == NONE or not answer.values:
        return IprevResult("permerror")
    names = tuple(answer.values[:MAX_PTR_NAMES])
    rtype = "A" if address.version == 4 else "AAAA"
    lookups.prefetch((n, rtype) for n in names)
    temporary = False
    for name in names:
        forward = lookups.get(name, rtype)
        temporary |= forward.temporary
        if any(ipaddress.ip_address(v) == address for v in forward.values):
            return IprevResult("pass", name, names)
    return IprevResult("temperror" if temporary else "fail", names[0], names)


# --- the header ----------------------------------------------------------------------------


@dataclass
class AuthResults:
    spf: SpfResult
    helo_spf: SpfResult | None
    dkim: list[DkimResult]
    arc: ArcResult
    dmarc: DmarcResult
    iprev: IprevResult
    ip: str = ""
    helo: str = ""
    sender: str = ""
    # Whose IP was judged: "" the connecting client's; for fetched mail "received" (the
    # client named by the remote provider's Received line) or "unknown" (none was named:
    # SPF and iprev not judged). The header's comment says which.
    judged: str = ""
    # DMARC of each author domain of the From (RFC 7489 6.6.1); `dmarc` is the one that
    # applies. Empty: `dmarc` alone.
    dmarc_each: list[DmarcResult] = field(default_factory=list)

    def header(self, authserv_id: str) -> str:
        """`Authentication-Results: ...` (RFC 8601), folded, without the final CRLF."""
        parts = []
        if self.dkim:
            for r in self.dkim:
                reason = f' reason="{_cut(_quote(r.detail))}"' if r.detail else ""
                parts.append(
                    f"dkim={r.result}{reason} header.d={_pvalue(r.domain or 'unknown')} "
                    f"header.s={_pvalue(r.selector or 'unknown')}"
                    + (f" header.a={_pvalue(r.algorithm)}" if r.algorithm else "")
                    + ("" if r.counts else " (testing mode)")
                )
        else:
            parts.append("dkim=none")
        ip = _pvalue(self.ip) if self.ip else ""
        if self.arc.result != "none":
            parts.append(f"arc={self.arc.result}" + (f" smtp.remote-ip={ip}" if ip else ""))
        spf_identity = (
            f"smtp.mailfrom={_pvalue(self.sender)}"
            if self.sender
            else f"smtp.helo={_pvalue(self.helo)}"
        )
        spf_part = f"spf={self.spf.result} {spf_identity}" if self.spf.domain else "spf=none"
        if self.judged == "received":
            spf_part += f" (fetched; judged client {_comment(self.ip)}, from its Received header)"
        elif self.judged == "unknown":
            spf_part += " (fetched; no client IP in its Received headers: SPF and iprev not judged)"
        parts.append(spf_part)
        if self.iprev.result:
            ptr = f" policy.iprev={ip}" if ip else ""
            name = f" ({_comment(self.iprev.ptr)})" if self.iprev.ptr else ""
            parts.append(f"iprev={self.iprev.result}{ptr}{name}")
        for result in self.dmarc_each if len(self.dmarc_each) > 1 else [self.dmarc]:
            dmarc = f"dmarc={result.result}"
            if result.domain:
                dmarc += f" header.from={_pvalue(result.domain)}"
            if result.published:
                dmarc += f" policy.dmarc={result.policy}"
            parts.append(dmarc)
        return "Authentication-Results: " + authserv_id + ";\r\n\t" + ";\r\n\t".join(parts)


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\r", " ").replace("\n", " ")


# RFC 8601 pvalue: a token (RFC 2045: US-ASCII, no space, control or tspecial), or an
# address as local-part "@" domain-name; anything else goes in a quoted-string (which
# RFC 6532 lets carry UTF-8).
_TOKEN = re.compile(r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+")
_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+")


# The longest value or comment written: a result's line stays within RFC 5322's 998
# characters whatever a hostile signature, From or PTR name holds (253: a domain name).
MAX_VALUE = 200


def _pvalue(text: str) -> str:
    """A property's value as the header's grammar has it: bare when it may be (domains,
    plain addresses, IPv4), quoted otherwise (an IPv6 address, an IP-literal HELO, what a
    hostile signature put in d=), so a "(" or ";" in it cannot open a comment or end
    the result for a reader. One longer than MAX_VALUE is cut, quoted, ending in "..."."""
    if len(text) <= MAX_VALUE and (_TOKEN.fullmatch(text) or _ADDRESS.fullmatch(text)):
        return text
    return f'"{_cut(_quote(text))}"'


def _cut(escaped: str) -> str:
    """Backslash-escaped text cut to MAX_VALUE characters, never inside an escape."""
    if len(escaped) <= MAX_VALUE:
        return escaped
    kept = escaped[: MAX_VALUE - 3]
    trailing = len(kept) - len(kept.rstrip("\\"))
    return kept[: len(kept) - trailing % 2] + "..."


def _comment(text: str) -> str:
    return _cut(re.sub(r"([()\\])", r"\\\1", text.replace("\r", " ").replace("\n", " ")))
