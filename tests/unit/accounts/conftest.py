"""Principal fixtures shared by the accounts tests: a small world in two tenants."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.conftest import TEST_PASSWORD


@dataclass
class TenantWorld:
    tenant: object
    admin: object
    domain: object
    account: object
    group: object
    mailing_list: object
    role: object


def _build(make_principal, tenant, admin, prefix: str) -> TenantWorld:
    from apps.accounts.models import PrincipalEmail, PrincipalType

    # No passwords: hashing with Argon2 would make every test slow.
    domain = make_principal(
        tenant=tenant, roles=(), name=f"{prefix}.example", type=PrincipalType.DOMAIN, password=""
    )
    account = make_principal(
        tenant=tenant, name=f"jane-{prefix}", description=f"Jane {prefix}", password=""
    )
    PrincipalEmail.objects.create(principal=account, address=f"jane@{prefix}.example")
    group = make_principal(
        tenant=tenant, roles=(), name=f"staff-{prefix}", type="group", password=""
    )
    mailing_list = make_principal(
        tenant=tenant, roles=(), name=f"all-{prefix}", type="list", password=""
    )
    PrincipalEmail.objects.create(principal=mailing_list, address=f"all@{prefix}.example")
    role = make_principal(
        tenant=tenant,
        roles=(),
        name=f"helpdesk-{prefix}",
        type="role",
        password="",
        enabled_permissions=["principal-list"],
    )
    account.member_of.add(group, mailing_list)
    return TenantWorld(tenant, admin, domain, account, group, mailing_list, role)


@pytest.fixture
def world_a(make_principal, tenant_a, admin_a) -> TenantWorld:
    """Tenant A: domain a.example, account jane-a (jane@a.example), group, list, role."""
    return _build(make_principal, tenant_a, admin_a, "a")


@pytest.fixture
def world_b(make_principal, tenant_b, admin_b) -> TenantWorld:
    """Tenant B, built like tenant A with the prefix b."""
    return _build(make_principal, tenant_b, admin_b, "b")


@pytest.fixture
def console_a(client, admin_a):
    client.force_login(admin_a)
    return client


@pytest.fixture
def password() -> str:
    return TEST_PASSWORD
