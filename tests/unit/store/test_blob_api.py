"""GET /api/store/blobs/{blob_id}: raw bytes, limit, and only the tenant's own mail."""

from __future__ import annotations

import base64

import pytest

from apps.store import blobs, services
from tests.unit.store.conftest import message


@pytest.fixture
def stored_a(make_mailbox):
    return services.deliver(make_mailbox("jane"), message("for tenant A"))


@pytest.fixture
def stored_b(make_mailbox, tenant_b, domain_b):
    mailbox = make_mailbox("bob", domain="b.example", tenant=tenant_b)
    return services.deliver(mailbox, message("for tenant B"))


def url(blob_id: str, query: str = "") -> str:
    return f"/api/store/blobs/{blob_id}{query}"


def test_it_answers_the_raw_bytes(api_a, stored_a):
    response = api_a.get(url(stored_a.blob_hash))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response.content == blobs.read(stored_a.blob_hash)
    assert b"Subject: for tenant A" in response.content


def test_it_takes_the_management_api_base64url_form_too(api_a, stored_a):
    b64 = base64.urlsafe_b64encode(bytes.fromhex(stored_a.blob_hash)).decode().rstrip("=")
    assert len(b64) == 43

    assert api_a.get(url(b64)).content == blobs.read(stored_a.blob_hash)
    assert api_a.get(url(stored_a.blob_hash.upper())).status_code == 200


def test_it_bounds_the_bytes_with_limit(api_a, stored_a):
    assert (
        api_a.get(url(stored_a.blob_hash, "?limit=10")).content
        == blobs.read(stored_a.blob_hash)[:10]
    )
    assert api_a.get(url(stored_a.blob_hash, "?limit=0")).content == b""


@pytest.mark.parametrize("limit", ["-1", "ten", "1e3", "9" * 40])
def test_it_refuses_a_bad_limit(api_a, stored_a, limit):
    response = api_a.get(url(stored_a.blob_hash, f"?limit={limit}"))

    assert response.status_code == 400
    assert response.json()["detail"] == "limit must be a whole number of bytes, 0 or more."


def test_it_hides_another_tenants_blob(api_a, api_b, stored_a, stored_b):
    missing = api_a.get(url("0" * 64)).json()
    for client, foreign in ((api_a, stored_b), (api_b, stored_a)):
        response = client.get(url(foreign.blob_hash))
        assert response.status_code == 404
        assert response.json() == missing  # the same answer as for no blob at all


def test_it_shows_shared_bytes_to_each_tenant_that_received_them(
    api_b, make_mailbox, tenant_b, domain_b, stored_a
):
    bob = make_mailbox("bob", domain="b.example", tenant=tenant_b)
    assert api_b.get(url(stored_a.blob_hash)).status_code == 404

    services.deliver(bob, blobs.read(stored_a.blob_hash))  # the same bytes reach tenant B

    assert api_b.get(url(stored_a.blob_hash)).status_code == 200


def test_it_lets_a_superadmin_read_any_stored_blob(api_root, stored_a, stored_b):
    assert api_root.get(url(stored_a.blob_hash)).status_code == 200
    assert api_root.get(url(stored_b.blob_hash)).status_code == 200
    assert api_root.get(url("0" * 64)).status_code == 404


@pytest.mark.parametrize("blob_id", ["..%2F..%2Fetc%2Fpasswd", "x" * 64, "abc", "%00" * 3])
def test_it_answers_404_for_what_is_not_a_blob_id(api_root, blob_id):
    response = api_root.get(url(blob_id))
    assert response.status_code == 404
    assert response.json()["status"] == 404


def test_it_needs_the_blob_fetch_permission(api_client_for, user_a, stored_a, anon_api):
    response = api_client_for(user_a).get(url(stored_a.blob_hash))
    assert response.status_code == 403
    assert "blob-fetch" in response.json()["detail"]
    assert anon_api.get(url(stored_a.blob_hash)).status_code == 401
