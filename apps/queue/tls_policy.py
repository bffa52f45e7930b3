"""Verified TLS for outbound mail: MTA-STS (RFC 8461) and DANE (RFC 7672).

Without either, delivery uses opportunistic TLS (remote.py: any certificate, plain text
when the handshake fails). With one, the connection to an MX host must meet a
`Requirement`, checked here when remote.send opens the connection:

- **DANE**, when the `_<port>._tcp.<mx host>` TLSA RRset comes back authenticated (the AD
  bit of a validating resolver: we trust the resolver in MAILADMIN_DNS_NAMESERVERS to
  validate DNSSEC, as Postfix does) and holds usable records: STARTTLS is required and the
  MX's certificate must match one of them. Usable here: usage 3 (DANE-EE), selector 0
  (whole certificate) or 1 (SubjectPublicKeyInfo), matching 0 (exact), 1 (SHA-256) or
  2 (SHA-512). DANE takes precedence over MTA-STS (RFC 8461 2).
- **MTA-STS**, when `_mta-sts.<domain>` has a `v=STSv1` TXT record and
  `https://mta-sts.<domain>/.well-known/mta-sts.txt` serves a valid policy over HTTPS with
  a WebPKI certificate (MAILADMIN_TLS_CA_FILE to trust another CA). In `enforce` mode only
  MX hosts the policy names are used, STARTTLS is required and the certificate must be
  valid for the MX host name; in `testing` mode failures are only recorded. Policies are
  cached in the database for their max_age and refetched when the TXT id changes.

A failure under an enforced requirement is a temporary failure of that MX (the queue
retries later, as RFC 8461 5 and RFC 7672 2.2 say) and, like every attempt, is recorded
for our TLS-RPT reports (apps.reports.outgoing.record_tls_outcome) with the policy's
type and strings.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import logging
import re
import smtplib
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import timedelta

import dns.exception
import dns.flags
import dns.resolver
from django.conf import settings
from django.utils import timezone

from mailadmin.converters import digits
from mailadmin.dns import make_resolver

log = logging.getLogger(__name__)

POLICY_PATH = "/.well-known/mta-sts.txt"
MAX_POLICY_BYTES = 64 * 1024  # RFC 8461 3.3 suggests this limit
MAX_MAX_AGE = 31_557_600  # RFC 8461 3.2
LOOKUP_CACHE_SECONDS = 60.0  # in-process: DNS answers (TXT id, TLSA) per destination
X509_V_ERR_CERT_HAS_EXPIRED = 10
X509_V_ERR_HOSTNAME_MISMATCH = 62


class PolicyFailure(Exception):
    """The connection did not meet an enforced requirement: try later, report it."""

    def __init__(self, result_type: str, detail: str, requirement: Requirement) -> None:
        super().__init__(detail)
        self.result_type = result_type
        self.detail = detail
        self.requirement = requirement


class PolicyError(Exception):
    """No policy could be had (fetch or syntax); `result_type` is RFC 8460's."""

    def __init__(self, result_type: str, detail: str) -> None:
        super().__init__(detail)
        self.result_type = result_type


# --- MTA-STS policies ------------------------------------------------------------------


@dataclass(frozen=True)
class StsPolicy:
    mode: str  # enforce | testing | none
    mx: tuple[str, ...]
    max_age: int
    policy_id: str = ""

    def matches(self, host: str) -> bool:
        """RFC 8461 4.1: an mx pattern is the host itself or `*.` one leftmost label."""
        host = host.rstrip(".").lower()
        for pattern in self.mx:
            pattern = pattern.rstrip(".").lower()
            if pattern.startswith("*."):
                label, _, rest = host.partition(".")
                if label and rest == pattern[2:]:
                    return True
            elif host == pattern:
                return True
        return False

    def strings(self) -> list[str]:
        """The policy as RFC 8460's policy-string: one entry per line."""
        return [
            "version: STSv1",
            f"mode: {self.mode}",
            *(f"mx: {mx}" for mx in self.mx),
            f"max_age: {self.max_age}",
        ]


def parse_policy(text: str) -> StsPolicy:
    """RFC 8461 3.2; raises PolicyError("sts-policy-invalid") naming what is wrong."""
    fields: dict[str, list[str]] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        key, sep, value = line.partition(":")
        if not sep:
            raise PolicyError("sts-policy-invalid", f"not a key: value line: {line[:80]!r}")
        fields.setdefault(key.strip().lower(), []).append(value.strip())
    if fields.get("version") != ["STSv1"]:
        raise PolicyError("sts-policy-invalid", "version is not STSv1")
    mode = (fields.get("mode") or [""])[0]
    if mode not in ("enforce", "testing", "none"):
        raise PolicyError("sts-policy-invalid", f"mode must be enforce, testing or none: {mode!r}")
    raw_age = (fields.get("max_age") or [""])[0]
    if not digits(raw_age) or len(raw_age) > 10 or int(raw_age) > MAX_MAX_AGE:
        raise PolicyError("sts-policy-invalid", f"max_age is not a number up to {MAX_MAX_AGE}")
    mx = tuple(fields.get("mx", []))
    if mode != "none" and not mx:
        raise PolicyError("sts-policy-invalid", "no mx lines")
    return StsPolicy(mode=mode, mx=mx, max_age=int(raw_age))


_TXT_ID = re.compile(r"^v=STSv1\s*;(?:.*;)?\s*id=([A-Za-z0-9]{1,32})\s*(?:;.*)?$")


def _sts_record_id(domain: str) -> str | None:
    """The id of `_mta-sts.<domain>`'s STSv1 record; None when there is none (or more
    than one, which RFC 8461 3.1 says is no policy). DNS failures raise PolicyError."""
    try:
        answer = make_resolver().resolve(f"_mta-sts.{domain}", "TXT")
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return None
    except dns.exception.DNSException as exc:
        raise PolicyError("sts-policy-fetch-error", f"TXT lookup failed: {exc}") from exc
    ids = []
    for record in answer:
        text = b"".join(record.strings).decode("ascii", "replace")
        if text.startswith("v=STSv1"):
            found = _TXT_ID.match(text)
            ids.append(found.group(1) if found else "")
    if len(ids) != 1 or not ids[0]:
        return None
    return ids[0]


def client_context(*, verify: bool) -> ssl.SSLContext:
    """WebPKI verification against MAILADMIN_TLS_CA_FILE (else the system's CAs)."""
    if not verify:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=settings.MAILADMIN_TLS_CA_FILE or None)


def fetch_policy(domain: str) -> str:
    """The policy text from https://mta-sts.<domain>/.well-known/mta-sts.txt (port
    MAILADMIN_MTA_STS_HTTPS_PORT): 200 only, no redirects, text/plain, at most 64 KiB."""
    host = f"mta-sts.{domain}"
    port = settings.MAILADMIN_MTA_STS_HTTPS_PORT
    timeout = settings.MAILADMIN_QUEUE_SMTP_TIMEOUT
    from apps.queue.remote import TemporaryFailure, _addresses

    try:
        addresses = _addresses(make_resolver(), host)
    except TemporaryFailure as exc:
        raise PolicyError("sts-policy-fetch-error", str(exc)) from exc
    if not addresses:
        raise PolicyError("sts-policy-fetch-error", f"{host} has no address")
    errors = []
    for address in addresses:
        try:
            return _get_policy(address, port, host, timeout)
        except ssl.SSLCertVerificationError as exc:
            raise PolicyError("sts-webpki-invalid", f"{host}: {exc.verify_message or exc}") from exc
        except (OSError, http.client.HTTPException) as exc:
            errors.append(f"{address}:{port}: {exc or type(exc).__name__}")
    raise PolicyError("sts-policy-fetch-error", f"{host}: " + "; ".join(errors))


def _get_policy(address: str, port: int, host: str, timeout: float) -> str:
    raw = socket.create_connection((address, port), timeout=timeout)
    try:
        tls = client_context(verify=True).wrap_socket(raw, server_hostname=host)
    except BaseException:
        raw.close()
        raise
    with tls:
        request = (
            f"GET {POLICY_PATH} HTTP/1.1\r\nHost: {host}\r\n"
            "User-Agent: mailadmin\r\nConnection: close\r\n\r\n"
        )
        tls.sendall(request.encode())
        response = http.client.HTTPResponse(tls)
        response.begin()
        if response.status != 200:  # redirects are not followed (RFC 8461 3.3)
            raise PolicyError("sts-policy-fetch-error", f"HTTP {response.status} from {host}")
        kind = (response.getheader("Content-Type") or "").split(";")[0].strip()
        if kind.lower() != "text/plain":
            raise PolicyError("sts-policy-invalid", f"Content-Type is {kind or 'missing'}")
        body = response.read(MAX_POLICY_BYTES + 1)
        if len(body) > MAX_POLICY_BYTES:
            raise PolicyError("sts-policy-invalid", "policy larger than 64 KiB")
        return body.decode("utf-8", "replace")


@dataclass(frozen=True)
class StsLookup:
    policy: StsPolicy | None
    error: PolicyError | None = None  # a published policy we could not get
    fresh: bool = True  # False: this process's copy from the last minute (error reported)


_sts_seen: dict[str, tuple[float, StsLookup]] = {}
_tlsa_seen: dict[str, tuple[float, tuple]] = {}
_lock = threading.Lock()


def clear_caches() -> None:
    with _lock:
        _sts_seen.clear()
        _tlsa_seen.clear()


def sts_policy(domain: str) -> StsLookup:
    """The MTA-STS policy in force for `domain` (RFC 8461 3.3, 5.1).

    A cached, unexpired policy is used while the TXT id is unchanged, and also when the
    TXT record is gone or a refetch fails (so stripping the record does not downgrade);
    a new id fetches the policy again. `error` says why a published policy was not had."""
    from apps.queue.models import StsPolicyCache

    domain = domain.rstrip(".").lower()
    now = time.monotonic()
    with _lock:
        seen = _sts_seen.get(domain)
        if seen and seen[0] > now:
            return replace(seen[1], fresh=False)
    row = StsPolicyCache.objects.filter(domain=domain, expires__gt=timezone.now()).first()
    cached = (
        StsPolicy(row.mode, tuple(row.mx), row.max_age, row.policy_id) if row is not None else None
    )
    try:
        record_id = _sts_record_id(domain)
        if record_id is None or cached is not None and cached.policy_id == record_id:
            result = StsLookup(cached)
        else:
            text = fetch_policy(domain)
            policy = parse_policy(text)
            policy = StsPolicy(policy.mode, policy.mx, policy.max_age, record_id)
            fetched = timezone.now()
            StsPolicyCache.objects.update_or_create(
                domain=domain,
                defaults={
                    "policy_id": record_id,
                    "mode": policy.mode,
                    "mx": list(policy.mx),
                    "max_age": policy.max_age,
                    "text": text[:MAX_POLICY_BYTES],
                    "fetched": fetched,
                    "expires": fetched + timedelta(seconds=policy.max_age),
                },
            )
            result = StsLookup(policy)
    except PolicyError as exc:
        log.info("MTA-STS policy of %s: %s", domain, exc)
        result = StsLookup(cached, None if cached else exc)
    with _lock:
        _sts_seen[domain] = (now + LOOKUP_CACHE_SECONDS, result)
    return result


# --- DANE ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tlsa:
    usage: int
    selector: int
    mtype: int
    data: bytes

    def usable(self) -> bool:
        return self.usage == 3 and self.selector in (0, 1) and self.mtype in (0, 1, 2)

    def __str__(self) -> str:
        return f"{self.usage} {self.selector} {self.mtype} {self.data.hex()}"


def tlsa_records(host: str, port: int) -> tuple[bool, tuple[Tlsa, ...]]:
    """(authenticated, records) of `_<port>._tcp.<host>`. Unauthenticated answers (no AD
    bit) mean nothing for DANE; none or a failed lookup is (False, ())."""
    name = f"_{port}._tcp.{host.rstrip('.').lower()}"
    now = time.monotonic()
    with _lock:
        seen = _tlsa_seen.get(name)
        if seen and seen[0] > now:
            return seen[1]
    resolver = make_resolver()
    resolver.use_edns(0, dns.flags.DO, 1232)
    resolver.flags = dns.flags.RD | dns.flags.AD  # ask for the AD bit (RFC 6840 5.7)
    try:
        answer = resolver.resolve(name, "TLSA")
        authenticated = bool(answer.response.flags & dns.flags.AD)
        records = tuple(Tlsa(r.usage, r.selector, r.mtype, bytes(r.cert)) for r in answer)
        result = (authenticated, records)
    except dns.exception.DNSException:
        # No record, or a failed lookup: Postfix would defer on a failure in a signed
        # zone; without tracking the MX RRset's own security we treat both as no DANE.
        result = (False, ())
    with _lock:
        _tlsa_seen[name] = (now + LOOKUP_CACHE_SECONDS, result)
    return result


def tlsa_match(certificate_der: bytes, records: tuple[Tlsa, ...]) -> bool:
    """Does the end-entity certificate match one usable record (RFC 6698 2.1, 7672 3.1)?"""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    spki = None
    for record in records:
        if not record.usable():
            continue
        if record.selector == 0:
            selected = certificate_der
        else:
            if spki is None:
                cert = x509.load_der_x509_certificate(certificate_der)
                spki = cert.public_key().public_bytes(
                    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
                )
            selected = spki
        if record.mtype == 1:
            selected = hashlib.sha256(selected).digest()
        elif record.mtype == 2:
            selected = hashlib.sha512(selected).digest()
        if hmac.compare_digest(selected, record.data):
            return True
    return False


# --- what a connection must achieve -------------------------------------------------------


@dataclass(frozen=True)
class Requirement:
    kind: str  # "tlsa" (DANE) | "sts" (RFC 8460 policy-type)
    enforce: bool  # False: MTA-STS testing mode, failures recorded only
    tlsa: tuple[Tlsa, ...] = ()
    sts: StsPolicy | None = None
    strings: tuple[str, ...] = field(default=())

    @property
    def key(self) -> str:
        """Pooled connections are kept apart per requirement (a connection opened without
        verification never serves a delivery that needs it)."""
        return f"{self.kind}:{int(self.enforce)}:{hash(self.strings)}"


def requirement(host: str, port: int, sts: StsPolicy | None) -> Requirement | None:
    """What a connection to MX `host` must meet: DANE when its TLSA records are
    authenticated and usable, else the domain's MTA-STS policy (mode enforce or testing),
    else nothing (opportunistic TLS)."""
    authenticated, records = tlsa_records(host, port)
    usable = tuple(r for r in records if r.usable())
    if authenticated and usable:
        return Requirement("tlsa", True, tlsa=usable, strings=tuple(str(r) for r in records))
    if sts is not None and sts.mode in ("enforce", "testing"):
        return Requirement("sts", sts.mode == "enforce", sts=sts, strings=tuple(sts.strings()))
    return None


def open_connection(host: str, port: int, server_name: str, need: Requirement):
    """Connect, EHLO, STARTTLS and check `need`: a remote.Connection, or PolicyFailure when
    an enforced requirement is not met. In testing mode a failure is noted on the
    connection (for TLS-RPT) and delivery goes on with opportunistic TLS."""
    from apps.queue import remote

    timeout = settings.MAILADMIN_QUEUE_SMTP_TIMEOUT
    client = smtplib.SMTP(timeout=timeout, local_hostname=settings.MAILADMIN_HOSTNAME)
    client._host = server_name  # SNI and the name the certificate must carry
    failure: tuple[str, str] | None = None
    try:
        code, message = client.connect(host, port)
        if code != 220:
            raise smtplib.SMTPConnectError(code, message)
        client.ehlo()
        if not client.has_extn("starttls"):
            failure = ("starttls-not-supported", f"{server_name} does not offer STARTTLS")
        else:
            try:
                client.starttls(context=client_context(verify=need.kind == "sts"))
            except ssl.SSLCertVerificationError as exc:
                kind = {
                    X509_V_ERR_CERT_HAS_EXPIRED: "certificate-expired",
                    X509_V_ERR_HOSTNAME_MISMATCH: "certificate-host-mismatch",
                }.get(exc.verify_code, "certificate-not-trusted")
                failure = (kind, f"{server_name}: {exc.verify_message or exc}")
            except (ssl.SSLError, smtplib.SMTPException, OSError) as exc:
                failure = ("validation-failure", f"STARTTLS failed: {exc or type(exc).__name__}")
            else:
                if need.kind == "tlsa":
                    der = client.sock.getpeercert(binary_form=True) or b""
                    if not tlsa_match(der, need.tlsa):
                        failure = (
                            "tlsa-invalid",
                            f"the certificate of {server_name} matches none of its TLSA records",
                        )
        if failure is None:
            client.ehlo()
            return remote.Connection(client, True)
    except BaseException:
        client.close()
        raise
    client.close()
    if need.enforce:
        raise PolicyFailure(failure[0], failure[1], need)
    log.info("MTA-STS testing: %s (%s); delivering anyway", failure[1], failure[0])
    return remote._open(host, port, server_name, failure=failure)
