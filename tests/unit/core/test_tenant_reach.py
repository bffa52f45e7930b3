"""A superadmin's API key has its owner's reach: every check that asks "may this actor see
every tenant" asks `reaches_all_tenants`, never `is_superuser` (which a key never is)."""

from __future__ import annotations

import pytest
from django.utils import timezone

from apps.accounts.models import Principal, PrincipalType


@pytest.fixture
def root_key(superadmin) -> Principal:
    return Principal.objects.create(
        name="root-key", type=PrincipalType.API_KEY, created_by=superadmin,
        all_owner_permissions=True,
    )  # fmt: skip


@pytest.fixture
def api_key_root(api_client_for, root_key):
    return api_client_for(root_key)


@pytest.fixture
def outgoing_report(db):
    from apps.reports.models import OutgoingReport

    now = timezone.now()
    return OutgoingReport.objects.create(
        kind="dmarc", policy_domain="a.example", range_begin=now, range_end=now,
        report_id="r1", filename="r1.xml.gz", payload=b"",
    )  # fmt: skip


def test_it_gives_the_key_its_owners_reach(root_key):
    assert root_key.reaches_all_tenants and not root_key.is_superuser


def test_it_lets_a_superadmins_key_list_get_and_cancel_outgoing_reports(
    api_key_root, outgoing_report
):
    from apps.reports.models import OutgoingReport

    listed = api_key_root.get("/api/queue/reports").json()["data"]
    assert listed["total"] == 1
    assert api_key_root.get(f"/api/queue/reports/{outgoing_report.pk}").status_code == 200
    assert api_key_root.delete(f"/api/queue/reports/{outgoing_report.pk}").status_code == 200
    assert OutgoingReport.objects.get().status == OutgoingReport.Status.CANCELLED


def test_it_lets_a_superadmins_key_register_a_domain_in_a_named_tenant(api_key_root, tenant_b):
    response = api_key_root.post("/api/domains", {"name": "x.example"}, format="json")
    assert response.status_code == 400
    assert response.json()["detail"] == "Missing required field: project_id"
    response = api_key_root.post(
        "/api/domains", {"name": "x.example", "project_id": tenant_b.pk}, format="json"
    )
    assert response.status_code == 200, response.content
    assert Principal.objects.get(name="x.example").tenant_id == tenant_b.pk


def test_it_lets_a_superadmins_key_pick_the_mail_server_tenant(api_key_root, tenant_b):
    response = api_key_root.get("/api/mailserver/server", {"tenant": "tenant-b"})
    assert response.status_code == 200, response.content
    assert response.json()["data"]["Id"] == tenant_b.pk


def test_it_lets_a_superadmins_key_delete_another_tenants_failure(api_key_root, tenant_b):
    from apps.reports.models import IngestFailure

    failure = IngestFailure.objects.create(
        source="api", reason="x", raw=b"x", received_at=timezone.now(), tenant=tenant_b
    )
    assert api_key_root.delete(f"/api/reports/failed/{failure.pk}").status_code == 200
    assert not IngestFailure.objects.exists()
