"""Fixtures shared by the domains tests: one domain in each of two tenants."""

from __future__ import annotations

import pytest


@pytest.fixture
def domain_a(make_principal, tenant_a):
    """Tenant A's domain a.example (a Principal of type domain)."""
    return make_principal(tenant=tenant_a, roles=(), name="a.example", type="domain", password="")


@pytest.fixture
def domain_b(make_principal, tenant_b):
    """Tenant B's domain b.example."""
    return make_principal(tenant=tenant_b, roles=(), name="b.example", type="domain", password="")


# --- DNS checks and pages (test_checks, test_dns_task, test_domain_pages) ---------------


@pytest.fixture
def make_domain(make_principal):
    """make_domain("c.example", tenant=t): more domain principals (no password, no roles)."""

    def make(name: str, *, tenant):
        return make_principal(tenant=tenant, roles=(), name=name, type="domain", password="")

    return make


@pytest.fixture
def console(client):
    """console(principal) -> the test client signed in as them."""

    def login(principal):
        client.force_login(principal)
        return client

    return login
