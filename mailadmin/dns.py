"""The one place DNS resolvers are made: tests point MAILADMIN_DNS_NAMESERVERS at loopback."""

from __future__ import annotations

import dns.resolver
from django.conf import settings


def make_resolver() -> dns.resolver.Resolver:
    nameservers = settings.MAILADMIN_DNS_NAMESERVERS
    if not nameservers:
        resolver = dns.resolver.Resolver()
    else:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [host for host, _ in nameservers]
        ports = {port for _, port in nameservers}
        resolver.port = ports.pop() if len(ports) == 1 else 53
        resolver.nameserver_ports = {host: port for host, port in nameservers}
    resolver.lifetime = settings.MAILADMIN_DNS_TIMEOUT
    resolver.timeout = settings.MAILADMIN_DNS_TIMEOUT
    return resolver
