"""The one place DNS resolvers are made: tests point MAILADMIN_DNS_NAMESERVERS at loopback."""

from __future__ import annotations

import dns.asyncresolver
import dns.resolver
from django.conf import settings


def _configure(resolver: dns.resolver.Resolver) -> None:
    nameservers = settings.MAILADMIN_DNS_NAMESERVERS
    if nameservers:
        resolver.nameservers = [host for host, _ in nameservers]
        ports = {port for _, port in nameservers}
        resolver.port = ports.pop() if len(ports) == 1 else 53
        resolver.nameserver_ports = {host: port for host, port in nameservers}
    resolver.lifetime = settings.MAILADMIN_DNS_TIMEOUT
    resolver.timeout = settings.MAILADMIN_DNS_TIMEOUT


def make_resolver() -> dns.resolver.Resolver:
    resolver = dns.resolver.Resolver(configure=not settings.MAILADMIN_DNS_NAMESERVERS)
    _configure(resolver)
    return resolver


def make_async_resolver() -> dns.asyncresolver.Resolver:
    """The same resolver for asyncio code (the DNS check runs its lookups concurrently)."""
    resolver = dns.asyncresolver.Resolver(configure=not settings.MAILADMIN_DNS_NAMESERVERS)
    _configure(resolver)
    return resolver
