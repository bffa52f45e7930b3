"""Tenant limits: accounts, domains, addresses per account, disk quota."""

import pytest

from apps.accounts.models import Principal
from apps.accounts.principals.services import principal_create, principal_update

pytestmark = pytest.mark.django_db


def detail(response) -> str:
    return response.json()["detail"]


def test_it_enforces_the_account_limit(api_a, world_a):
    used = Principal.objects.filter(tenant=world_a.tenant, type="individual").count()
    Principal.objects.filter(pk=world_a.tenant.pk).update(max_accounts=used + 1)
    first = api_a.post("/api/principal", {"type": "individual", "name": "one"}, format="json")
    assert first.status_code == 200
    second = api_a.post("/api/principal", {"type": "individual", "name": "two"}, format="json")
    assert second.status_code == 400
    assert detail(second) == f"Tenant tenant-a has reached its limit of {used + 1} accounts."
    assert not Principal.objects.filter(name="two").exists()
    group = api_a.post("/api/principal", {"type": "group", "name": "g"}, format="json")
    assert group.status_code == 200  # groups are not accounts


def test_it_enforces_the_domain_limit(api_a, world_a):
    Principal.objects.filter(pk=world_a.tenant.pk).update(max_domains=1)
    response = api_a.post("/api/principal", {"type": "domain", "name": "c.example"}, format="json")
    assert response.status_code == 400
    assert detail(response) == "Tenant tenant-a has reached its limit of 1 domains."


def test_it_enforces_the_addresses_per_account_limit(api_a, world_a):
    Principal.objects.filter(pk=world_a.tenant.pk).update(max_mailboxes_per_user=2)
    ok = api_a.patch(
        "/api/principal/jane-a",
        [{"action": "addItem", "field": "emails", "value": "j2@a.example"}],
        format="json",
    )
    assert ok.status_code == 200
    response = api_a.patch(
        "/api/principal/jane-a",
        [{"action": "addItem", "field": "emails", "value": "j3@a.example"}],
        format="json",
    )
    assert response.status_code == 400
    assert detail(response) == "Tenant tenant-a allows at most 2 addresses per account."
    assert world_a.account.emails.count() == 2


def test_it_keeps_account_quotas_within_the_tenant_quota(api_a, world_a):
    Principal.objects.filter(pk=world_a.tenant.pk).update(quota=1000)
    response = api_a.post(
        "/api/principal", {"type": "individual", "name": "big", "quota": 1001}, format="json"
    )
    assert response.status_code == 400
    assert detail(response) == "The quota can't exceed the quota of tenant tenant-a (1000 bytes)."
    fits = api_a.post(
        "/api/principal", {"type": "individual", "name": "fits", "quota": 1000}, format="json"
    )
    assert fits.status_code == 200


def test_it_lets_a_superadmin_set_tenant_limits(api_root, world_a):
    response = api_root.patch(
        "/api/principal/tenant-a",
        [
            {"action": "set", "field": "maxAccounts", "value": 10},
            {"action": "set", "field": "maxDomains", "value": 2},
            {"action": "set", "field": "maxMailboxesPerUser", "value": 3},
            {"action": "set", "field": "quota", "value": 10**9},
        ],
        format="json",
    )
    assert response.status_code == 200, response.json()
    tenant = Principal.objects.get(name="tenant-a")
    assert (tenant.max_accounts, tenant.max_domains, tenant.max_mailboxes_per_user) == (10, 2, 3)
    assert tenant.quota == 10**9
    data = api_root.get("/api/principal/tenant-a").json()["data"]
    assert (data["maxAccounts"], data["maxDomains"], data["maxMailboxesPerUser"]) == (10, 2, 3)


def test_it_creates_a_tenant_with_limits(api_root, superadmin):
    response = api_root.post(
        "/api/principal",
        {"type": "tenant", "name": "tenant-c", "maxAccounts": 5, "maxDomains": None},
        format="json",
    )
    assert response.status_code == 200
    tenant = Principal.objects.get(name="tenant-c")
    assert (tenant.type, tenant.tenant_id, tenant.max_accounts) == ("tenant", None, 5)


def test_it_hides_the_own_tenant_from_a_tenant_admin(api_a, world_a):
    response = api_a.patch(
        "/api/principal/tenant-a",
        [{"action": "set", "field": "maxAccounts", "value": 1000}],
        format="json",
    )
    assert response.status_code == 404
    assert Principal.objects.get(name="tenant-a").max_accounts is None


def test_it_rejects_limits_on_an_account(api_root, world_a):
    response = api_root.patch(
        "/api/principal/jane-a",
        [{"action": "set", "field": "maxAccounts", "value": 3}],
        format="json",
    )
    assert response.status_code == 400
    assert detail(response) == (
        "The field maxAccounts does not apply to a principal of type individual."
    )


def test_it_counts_limits_in_the_service_for_every_caller(admin_a, world_a):
    """The HTML console, tasks and commands share the check: it lives in the service."""
    Principal.objects.filter(pk=world_a.tenant.pk).update(max_accounts=0)
    from mailadmin.errors import ServiceError

    with pytest.raises(ServiceError) as error:
        principal_create(actor=admin_a, data={"type": "individual", "name": "x"})
    assert error.value.message == "Tenant tenant-a has reached its limit of 0 accounts."
    # Lowering a limit below what is in use keeps the existing accounts editable.
    principal_update(
        actor=admin_a,
        principal=world_a.account,
        operations=[{"action": "set", "field": "description", "value": "still editable"}],
    )
