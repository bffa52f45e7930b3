"""The self-check: is every part of this installation reachable and answering?

Each check talks to the real peer (database, SMTP listeners, DNS resolver) and reports
what it saw; nothing is assumed.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass

import dns.exception
import dns.resolver
from django.conf import settings
from django.db import connection

from mailadmin.dns import make_resolver


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str

    def as_dict(self) -> dict:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


def check_database() -> CheckResult:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return CheckResult("Database", True, f"{connection.vendor} answered")


def smtp_banner(host: str, port: int, timeout: float = 5.0) -> str:
    """Connect and read the greeting line, then say QUIT."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        banner = sock.makefile("rb").readline(1024).decode("latin-1").strip()
        sock.sendall(b"QUIT\r\n")
    return banner


def _check_smtp(name: str, bind: tuple[str, int]) -> CheckResult:
    host, port = bind
    if host in {"0.0.0.0", "::", ""}:  # noqa: S104 - we connect to it, we don't bind
        host = "127.0.0.1"
    try:
        banner = smtp_banner(host, port)
    except OSError as exc:
        return CheckResult(name, False, f"{host}:{port} unreachable: {exc}")
    if not banner.startswith("220"):
        return CheckResult(name, False, f"{host}:{port} answered {banner!r}, not 220")
    return CheckResult(name, True, f"{host}:{port} answered {banner}")


def check_smtp_inbound() -> CheckResult:
    return _check_smtp("SMTP inbound (MX)", settings.MAILADMIN_SMTP_BIND)


def check_smtp_submission() -> CheckResult:
    return _check_smtp("SMTP submission", settings.MAILADMIN_SUBMISSION_BIND)


def check_dns() -> CheckResult:
    resolver = make_resolver()
    where = ", ".join(f"{h}:{p}" for h, p in settings.MAILADMIN_DNS_NAMESERVERS) or "system"
    name = settings.MAILADMIN_HOSTNAME
    try:
        answer = resolver.resolve(name, "A")
    except dns.resolver.NXDOMAIN:
        return CheckResult("DNS resolver", True, f"{where} answered: {name} does not exist")
    except dns.resolver.NoAnswer:
        return CheckResult("DNS resolver", True, f"{where} answered: {name} has no A record")
    except (dns.exception.DNSException, OSError) as exc:
        return CheckResult("DNS resolver", False, f"{where} failed for {name}: {exc}")
    addresses = ", ".join(r.to_text() for r in answer)
    return CheckResult("DNS resolver", True, f"{where} answered: {name} A {addresses}")


CHECKS: list[Callable[[], CheckResult]] = [
    check_database,
    check_smtp_inbound,
    check_smtp_submission,
    check_dns,
]
