"""Delivery troubleshooting: what a delivery to one recipient would do, step by step, with
each step's outcome and time, for a superadmin watching it live (Server-Sent Events).

Only superadmins: the steps show the server's resolver answers, the network path to other
domains' MX hosts and their TLS setup, which is the server's business, not a tenant's.

The steps reuse the delivery code (remote.lookup_mx, tls_policy's MTA-STS and DANE
lookups, the same port and timeouts) and then talk SMTP themselves up to RCPT TO, so the
remote server answers for the recipient; DATA is never sent. The whole run is bounded by
MAILADMIN_TROUBLESHOOT_TIMEOUT.

Its token (GET /api/troubleshoot/token) exists because the browser's EventSource cannot
send an Authorization header: a short-lived value signed with SECRET_KEY naming the
principal it was issued to, checked again (active, superadmin) when used.
"""

from __future__ import annotations

import secrets
import smtplib
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core import signing

from apps.accounts.models import Principal
from apps.queue import remote, tls_policy
from mailadmin.errors import ServiceError

TOKEN_SALT = "mailadmin.telemetry.troubleshoot"  # noqa: S105 (a namespace, not a secret)
TOKEN_SECONDS = 300
SUCCESS, WARNING, FAILURE = "success", "warning", "failure"


class SuperadminOnly(ServiceError):
    status = 403
    title = "Forbidden"


class InvalidToken(ServiceError):
    status = 401
    title = "Unauthorized"

    def __init__(self) -> None:
        super().__init__(
            "The troubleshooting token is missing, invalid or expired: get a new one from "
            "GET /api/troubleshoot/token."
        )


def require_superadmin(actor: Principal | None, what: str) -> None:
    if actor is None or not actor.is_active or not actor.reaches_all_tenants:
        raise SuperadminOnly(f"{what} is for superadmins only.")


def token_issue(*, actor: Principal) -> str:
    require_superadmin(actor, "Delivery troubleshooting")
    # The nonce tells apart two tokens issued within a second: each opens one stream.
    payload = {"p": actor.pk, "n": secrets.token_urlsafe(6)}
    return signing.dumps(payload, salt=TOKEN_SALT, compress=True)


def token_principal(token: str | None) -> Principal:
    """The principal a valid, unexpired token was issued to (still a superadmin)."""
    if not token:
        raise InvalidToken()
    try:
        payload = signing.loads(token, salt=TOKEN_SALT, max_age=TOKEN_SECONDS)
    except signing.BadSignature:  # SignatureExpired is one
        raise InvalidToken() from None
    principal = Principal.objects.filter(pk=payload.get("p")).first()
    if principal is None or not principal.is_active:
        raise InvalidToken()
    require_superadmin(principal, "Delivery troubleshooting")
    return principal


def parse_recipient(value: str) -> tuple[str, str]:
    """(address, domain), or a 400 naming the field."""
    address = value.strip()
    local, at, domain = address.rpartition("@")
    domain = domain.rstrip(".").lower()
    if not at or not local or not domain or " " in address or len(address) > 320:
        raise ServiceError(
            f"Invalid value for field recipient: {value!r} is not an e-mail address.",
            field="recipient",
        )
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise ServiceError(
            f"Invalid value for field recipient: {domain!r} is not a domain name.",
            field="recipient",
        ) from None
    return f"{local}@{domain}", domain


# --- the run -----------------------------------------------------------------------------


@dataclass
class Run:
    recipient: str
    domain: str
    started: float = field(default_factory=time.monotonic)
    deadline: float = 0.0

    def __post_init__(self) -> None:
        self.deadline = self.started + settings.MAILADMIN_TROUBLESHOOT_TIMEOUT

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def timeout(self) -> float:
        return max(0.1, min(float(settings.MAILADMIN_QUEUE_SMTP_TIMEOUT), self.left()))


class OutOfTime(Exception):
    pass


def _step(name: str, outcome: str, detail: str, since: float, **extra: Any) -> dict[str, Any]:
    return {
        "type": "step",
        "step": name,
        "outcome": outcome,
        "detail": detail,
        "elapsedMs": round((time.monotonic() - since) * 1000),
        **extra,
    }


def _reply_text(code: int, text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return f"{code} {' '.join(text.split())}".strip()


def delivery_steps(recipient: str) -> Iterator[dict[str, Any]]:
    """Every step as a dict (type "step"), then one of type "verdict"."""
    address, domain = parse_recipient(recipient)
    run = Run(address, domain)
    verdict: tuple[str, str] | None = None
    try:
        steps = _steps(run)
        while True:
            if run.left() <= 0:
                raise OutOfTime()
            try:
                item = next(steps)
            except StopIteration as stop:
                verdict = stop.value
                break
            yield item
    except OutOfTime:
        verdict = (
            FAILURE,
            f"Stopped after {settings.MAILADMIN_TROUBLESHOOT_TIMEOUT} s "
            "(MAILADMIN_TROUBLESHOOT_TIMEOUT).",
        )
    outcome, detail = verdict or (FAILURE, "No verdict.")
    yield {
        "type": "verdict",
        "outcome": outcome,
        "detail": detail,
        "recipient": address,
        "elapsedMs": round((time.monotonic() - run.started) * 1000),
    }


def _steps(run: Run):
    """Yields steps; returns the verdict (outcome, detail)."""
    domain = run.domain
    port = settings.MAILADMIN_SMTP_REMOTE_PORT
    began = time.monotonic()
    try:
        exchanges = remote.lookup_mx(domain)
    except remote.PermanentFailure as exc:
        yield _step("mx", FAILURE, str(exc), began, domain=domain)
        return FAILURE, f"Undeliverable: {exc.code} {exc.status} {exc}"
    except remote.TemporaryFailure as exc:
        yield _step("mx", FAILURE, str(exc), began, domain=domain)
        return WARNING, f"Delivery would be retried later: {exc}"
    implicit = len(exchanges) == 1 and exchanges[0].host == domain
    hosts = [{"preference": e.preference, "host": e.host} for e in exchanges]
    detail = (
        f"No MX record: {domain} itself is the mail host (implicit MX)."
        if implicit
        else "MX: " + ", ".join(f"{e.preference} {e.host}" for e in exchanges)
    )
    yield _step("mx", SUCCESS, detail, began, domain=domain, exchanges=hosts)

    sts = None
    if settings.MAILADMIN_QUEUE_TLS_POLICIES:
        began = time.monotonic()
        found = tls_policy.sts_policy(domain)
        sts = found.policy
        if found.error is not None:
            yield _step("mta-sts", WARNING, f"Published policy not had: {found.error}", began)
        elif sts is None:
            yield _step("mta-sts", SUCCESS, "No MTA-STS policy.", began)
        else:
            yield _step(
                "mta-sts",
                SUCCESS,
                f"Policy mode {sts.mode}, MX {', '.join(sts.mx)}, max_age {sts.max_age}",
                began,
                mode=sts.mode,
                mx=list(sts.mx),
            )

    failures = []
    for exchange in exchanges:
        host = exchange.host
        began = time.monotonic()
        yield _step(
            "addresses",
            SUCCESS,
            f"{host}: {', '.join(exchange.addresses)}",
            began,
            host=host,
            addresses=list(exchange.addresses),
        )
        if sts is not None and sts.mode == "enforce" and not sts.matches(host):
            detail = f"{host} is not an MX host of the domain's MTA-STS policy: skipped"
            yield _step("mta-sts", FAILURE, detail, time.monotonic(), host=host)
            failures.append(detail)
            continue
        need = None
        if settings.MAILADMIN_QUEUE_TLS_POLICIES:
            began = time.monotonic()
            authenticated, records = tls_policy.tlsa_records(host, port)
            need = tls_policy.requirement(host, port, sts)
            if records:
                state = "authenticated" if authenticated else "not authenticated (no AD bit)"
                detail = f"TLSA {state}: " + "; ".join(str(r) for r in records)
            else:
                detail = "No TLSA records."
            if need is not None:
                rule = "DANE" if need.kind == "tlsa" else f"MTA-STS {sts.mode}"
                detail += f" TLS required by {rule}." if need.enforce else f" {rule}."
            yield _step("dane", SUCCESS, detail, began, host=host)
        for address in exchange.addresses:
            answer = yield from _session(run, host, address, port, need)
            if isinstance(answer, tuple):
                return answer
            failures.append(f"{host}[{address}]:{port}" + (f": {answer}" if answer else ""))
    return WARNING, "No MX host answered for the recipient; delivery would be retried later: " + (
        ", ".join(failures) or "no host to try"
    )


def _session(run: Run, host: str, address: str, port: int, need):
    """One SMTP conversation up to RCPT TO: the verdict (outcome, detail), or why this
    address failed (a string, or None when its step said it): try the next one."""
    where = f"{host}[{address}]:{port}"
    began = time.monotonic()
    client = smtplib.SMTP(timeout=run.timeout(), local_hostname=settings.MAILADMIN_HOSTNAME)
    client._host = host  # SNI and the name the certificate must carry, as delivery does
    try:
        try:
            code, text = client.connect(address, port)
        except OSError as exc:
            yield _step("connect", FAILURE, f"{where}: {exc or type(exc).__name__}", began)
            return None
        outcome = SUCCESS if code == 220 else FAILURE
        yield _step("connect", outcome, f"{where}: {_reply_text(code, text)}", began, host=host)
        if code != 220:
            return None
        began = time.monotonic()
        code, text = client.ehlo()
        extensions = sorted(client.esmtp_features)
        yield _step(
            "ehlo",
            SUCCESS if code == 250 else FAILURE,
            f"{_reply_text(code, text.splitlines()[0] if text else b'')}; "
            f"extensions: {', '.join(extensions) or 'none'}",
            began,
            extensions=extensions,
        )
        if code != 250:
            return None
        tls_problem = yield from _starttls(run, client, host, address, port, need)
        if tls_problem == "retry":
            client.close()
            client = smtplib.SMTP(timeout=run.timeout(), local_hostname=settings.MAILADMIN_HOSTNAME)
            client._host = host
            began = time.monotonic()
            code, text = client.connect(address, port)
            client.ehlo()
            client.starttls(context=tls_policy.client_context(verify=False))
            client.ehlo()
            yield _step(
                "starttls",
                WARNING,
                "Reconnected: delivery would use TLS without certificate verification "
                "(opportunistic TLS, RFC 7435).",
                began,
            )
        elif tls_problem == "plain":
            client.close()
            client = smtplib.SMTP(timeout=run.timeout(), local_hostname=settings.MAILADMIN_HOSTNAME)
            began = time.monotonic()
            client.connect(address, port)
            client.ehlo()
            yield _step(
                "starttls",
                WARNING,
                "Reconnected without TLS, as delivery would (opportunistic TLS, RFC 7435).",
                began,
            )
        elif tls_problem is not None:
            return tls_problem  # a policy not met: this address fails, as in delivery
        began = time.monotonic()
        code, text = client.mail("")
        yield _step("mail-from", SUCCESS if code == 250 else FAILURE,
                    f"MAIL FROM:<> {_reply_text(code, text)}", began)  # fmt: skip
        if code != 250:
            return FAILURE if code >= 500 else WARNING, f"{host} refused the null sender: " + (
                _reply_text(code, text)
            )
        began = time.monotonic()
        code, text = client.rcpt(run.recipient)
        reply = _reply_text(code, text)
        outcome = SUCCESS if 200 <= code < 300 else WARNING if code < 500 else FAILURE
        yield _step("rcpt", outcome, f"RCPT TO:<{run.recipient}> {reply}", began, code=code)
        began = time.monotonic()
        try:
            code, text = client.quit()
            yield _step("quit", SUCCESS, _reply_text(code, text), began)
        except (smtplib.SMTPException, OSError) as exc:
            yield _step("quit", WARNING, f"{exc or type(exc).__name__}", began)
        if outcome == SUCCESS:
            return SUCCESS, f"{host} accepts mail for {run.recipient}: {reply}"
        if outcome == FAILURE:
            return FAILURE, f"{host} refuses {run.recipient}: {reply}"
        return WARNING, f"{host} deferred {run.recipient}: {reply}"
    except (smtplib.SMTPException, OSError) as exc:
        yield _step("session", FAILURE, f"{where}: {exc or type(exc).__name__}", began)
        return None
    finally:
        client.close()


def _starttls(run: Run, client: smtplib.SMTP, host: str, address: str, port: int, need):
    """None: go on; "retry": reconnect for TLS without verification; "plain": reconnect
    without TLS (the handshake itself failed); another string: an enforced policy was not
    met, so this address fails (delivery would try the next one) and that is why."""
    began = time.monotonic()
    enforced = need is not None and need.enforce
    if not client.has_extn("starttls"):
        if enforced:
            detail = f"{host} does not offer STARTTLS, which its policy requires"
            yield _step("starttls", FAILURE, detail, began)
            return f"policy: {detail}"
        yield _step("starttls", WARNING, "Not offered: mail would travel in plain text.", began)
        return None
    # Verify as a policy would (DANE checks the TLSA match instead of the WebPKI).
    dane = need is not None and need.kind == "tlsa"
    try:
        client.starttls(context=tls_policy.client_context(verify=not dane))
    except ssl.SSLCertVerificationError as exc:
        detail = f"Certificate not verified: {exc.verify_message or exc}"
        if enforced:
            yield _step("starttls", FAILURE, detail, began, verified=False)
            return f"MTA-STS: {detail}"
        yield _step("starttls", WARNING, detail, began, verified=False)
        return "retry"
    except (ssl.SSLError, smtplib.SMTPException, OSError) as exc:
        detail = f"STARTTLS failed: {exc or type(exc).__name__}"
        yield _step("starttls", FAILURE if enforced else WARNING, detail, began, verified=False)
        if enforced:
            return f"policy: {detail}"
        return "plain"
    cipher = client.sock.cipher() if hasattr(client.sock, "cipher") else None
    version = client.sock.version() if hasattr(client.sock, "version") else ""
    if dane:
        der = client.sock.getpeercert(binary_form=True) or b""
        if not tls_policy.tlsa_match(der, need.tlsa):
            detail = f"The certificate of {host} matches none of its TLSA records"
            yield _step("starttls", FAILURE, detail, began, verified=False)
            return f"DANE: {detail}"
        detail = f"{version} {cipher[0] if cipher else ''}: certificate matches a TLSA record"
    else:
        detail = f"{version} {cipher[0] if cipher else ''}: certificate verified for {host}"
    client.ehlo()
    yield _step("starttls", SUCCESS, detail.strip(), began, verified=True)
    return None
