"""/api/dkim and /api/dns/records/{domain}: shapes, errors, permissions, tenant isolation."""

from __future__ import annotations

import json

import pytest

from apps.domains import selectors, services
from apps.domains.models import DkimKey, DomainProfile
from mailadmin.core.models import AuditEvent

NOT_FOUND = {
    "type": "about:blank",
    "status": 404,
    "title": "Not Found",
    "detail": "The requested resource does not exist on this server.",
}


def _create(api, **body):
    payload = {"id": None, "algorithm": "Ed25519", "domain": "a.example", "selector": None}
    payload.update(body)
    return api.post("/api/dkim", payload, format="json")


# --- POST /api/dkim --------------------------------------------------------------------


@pytest.mark.parametrize(("algorithm", "stored"), [("Ed25519", "ed25519"), ("RSA", "rsa")])
def test_it_creates_a_key_with_the_spec_body(api_a, domain_a, admin_a, algorithm, stored):
    response = _create(api_a, algorithm=algorithm)
    assert response.status_code == 200, response.content
    assert response.json() == {"data": None}
    key = DkimKey.objects.get(domain=domain_a)
    assert key.algorithm == stored
    assert key.tenant_id == domain_a.tenant_id
    assert key.selector.endswith("e" if stored == "ed25519" else "r")
    event = AuditEvent.objects.get(action="dkim.create")
    assert event.actor_id == admin_a.pk
    assert event.tenant_id == domain_a.tenant_id
    assert event.changes == {"domain": "a.example", "selector": key.selector, "algorithm": stored}
    assert "PRIVATE" not in json.dumps(event.changes)


def test_it_accepts_a_chosen_selector_and_a_unicode_uppercase_domain(
    api_a, make_principal, tenant_a
):
    make_principal(tenant=tenant_a, roles=(), name="xn--bcher-kva.example", type="domain")
    response = _create(api_a, domain="BÜCHER.example", selector="mail2026")
    assert response.status_code == 200, response.content
    assert DkimKey.objects.get().selector == "mail2026"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"algorithm": "dsa"},
            "Invalid value for field algorithm: 'dsa' is not one of Ed25519, Rsa.",
        ),
        (
            {"selector": "bad_selector"},
            "Invalid value for field selector: 'bad_selector' is not a DNS label "
            "(1-63 letters, digits or hyphens, not starting or ending with a hyphen).",
        ),
        ({"keySize": 4096}, "Unrecognized field: keySize"),
    ],
)
def test_it_rejects_bad_input_with_exact_messages(api_a, domain_a, body, message):
    response = _create(api_a, **body)
    assert response.status_code == 400
    assert response.json()["detail"] == message
    assert not DkimKey.objects.exists()


def test_it_rejects_a_selector_the_domain_already_uses(api_a, domain_a):
    assert _create(api_a, selector="s1").status_code == 200
    response = _create(api_a, selector="S1", algorithm="rsa")
    assert response.status_code == 400
    assert response.json()["detail"] == "The selector S1 is already used by a.example."
    assert DkimKey.objects.count() == 1


def test_it_picks_a_new_default_selector_for_a_second_key_of_the_month(api_a, domain_a):
    assert _create(api_a).status_code == 200
    assert _create(api_a).status_code == 200
    first, second = sorted(DkimKey.objects.values_list("selector", flat=True))
    assert second == f"{first}2"


def test_it_answers_404_with_the_spec_body_for_a_missing_domain(api_a, domain_a):
    response = _create(api_a, domain="nowhere.example")
    assert response.status_code == 404
    assert response.json() == NOT_FOUND


def test_it_names_the_missing_permission(api_client_for, user_a, admin_a, domain_a):
    api = api_client_for(user_a)
    response = _create(api)
    assert response.status_code == 403
    assert response.json()["permission"] == "dkim-signature-create"
    assert api.get("/api/dkim").json()["permission"] == "dkim-signature-get"
    assert api.get("/api/dns/records/a.example").json()["permission"] == "dns-record-get"
    key = services.dkim_key_create(actor=admin_a, domain=domain_a, algorithm="rsa")
    assert api.delete(f"/api/dkim/{key.pk}").json()["permission"] == "dkim-signature-create"


# --- GET /api/dkim ---------------------------------------------------------------------


def test_it_lists_keys_with_public_halves_only(api_a, admin_a, domain_a):
    key = services.dkim_key_create(
        actor=admin_a, domain=domain_a, algorithm="ed25519", selector="s1"
    )
    response = api_a.get("/api/dkim", {"domain": "a.example"})
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["total"] == 1
    item = data["items"][0]
    assert set(item) == {
        "id",
        "domain",
        "selector",
        "algorithm",
        "publicKey",
        "active",
        "createdAt",
    }
    assert item["id"] == key.pk
    assert (item["domain"], item["selector"], item["algorithm"]) == ("a.example", "s1", "Ed25519")
    assert item["publicKey"] == key.public_key
    assert item["active"] is False  # pending: it signs once its DNS record is found
    assert "PRIVATE KEY" not in response.content.decode()


def test_it_lists_only_the_actors_tenants_keys(api_a, api_b, admin_a, admin_b, domain_a, domain_b):
    services.dkim_key_create(actor=admin_a, domain=domain_a, algorithm="ed25519", selector="s1")
    services.dkim_key_create(actor=admin_b, domain=domain_b, algorithm="ed25519", selector="s1")
    items = api_a.get("/api/dkim").json()["data"]["items"]
    assert [i["domain"] for i in items] == ["a.example"]
    assert api_b.get("/api/dkim", {"domain": "a.example"}).json() == NOT_FOUND


def test_it_lists_many_keys_in_a_constant_number_of_queries(
    api_a, admin_a, domain_a, django_assert_max_num_queries
):
    for n in range(30):
        services.dkim_key_create(
            actor=admin_a, domain=domain_a, algorithm="ed25519", selector=f"s{n}"
        )
    with django_assert_max_num_queries(6):
        response = api_a.get("/api/dkim", {"domain": "a.example", "limit": 20})
    assert response.json()["data"]["total"] == 30
    assert len(response.json()["data"]["items"]) == 20


# --- DELETE /api/dkim/{id} -------------------------------------------------------------


def test_it_deletes_a_key_and_audits_it(api_a, admin_a, domain_a):
    key = services.dkim_key_create(actor=admin_a, domain=domain_a, algorithm="rsa")
    response = api_a.delete(f"/api/dkim/{key.pk}")
    assert response.status_code == 200
    assert response.json() == {"data": None}
    assert not DkimKey.objects.exists()
    event = AuditEvent.objects.get(action="dkim.delete")
    assert event.object_id == str(key.pk)
    assert event.tenant_id == domain_a.tenant_id


def test_it_hides_foreign_and_missing_keys(api_b, admin_a, domain_a):
    key = services.dkim_key_create(actor=admin_a, domain=domain_a, algorithm="rsa")
    assert api_b.delete(f"/api/dkim/{key.pk}").json() == NOT_FOUND
    assert api_b.delete("/api/dkim/999999").json() == NOT_FOUND
    assert DkimKey.objects.filter(pk=key.pk).exists()


# --- GET /api/dns/records/{domain} -----------------------------------------------------


def test_it_returns_the_records_in_the_spec_shape(api_a, admin_a, domain_a, settings):
    settings.MAILADMIN_HOSTNAME = "mx.test"
    key = services.dkim_key_create(
        actor=admin_a, domain=domain_a, algorithm="ed25519", selector="202611e"
    )
    response = api_a.get("/api/dns/records/A.EXAMPLE")
    assert response.status_code == 200
    data = response.json()["data"]
    assert all(set(r) == {"type", "name", "content"} for r in data)
    token = selectors.verification_token(domain_a)
    assert data[:3] == [
        {"type": "MX", "name": "a.example.", "content": "10 mx.test."},
        {"type": "TXT", "name": "a.example.", "content": '"v=spf1 mx -all"'},
        {
            "type": "TXT",
            "name": "202611e._domainkey.a.example.",
            "content": f'"v=DKIM1; k=ed25519; h=sha256; p={key.public_key}"',
        },
    ]
    assert {
        "type": "TXT",
        "name": "_mailadmin-verification.a.example.",
        "content": f'"mailadmin-verification={token}"',
    } in data
    assert len(data) == 22  # 21 records + the DKIM key (TLSA only with a certificate)
    assert "PRIVATE KEY" not in response.content.decode()


def test_it_keeps_the_verification_token_stable_without_writing(api_a, admin_a, domain_a):
    first = api_a.get("/api/dns/records/a.example").json()["data"]
    second = api_a.get(f"/api/dns/records/{domain_a.pk}").json()["data"]
    assert first == second
    assert not DomainProfile.objects.exists()  # a GET never writes
    assert not AuditEvent.objects.exists()
    services.domain_profile_ensure(actor=admin_a, domain=domain_a)  # the first check does
    assert api_a.get("/api/dns/records/a.example").json()["data"] == first


def test_it_omits_retired_keys(api_a, admin_a, domain_a):
    key = services.dkim_key_create(actor=admin_a, domain=domain_a, algorithm="rsa")
    services.dkim_key_retire(actor=admin_a, key=key)  # pending: withdrawn at once
    assert DkimKey.objects.get(pk=key.pk).state == "retired"
    data = api_a.get("/api/dns/records/a.example").json()["data"]
    assert not [r for r in data if "_domainkey" in r["name"]]


@pytest.mark.parametrize(
    "request_it",
    [
        lambda api: api.get("/api/dns/records/a.example"),
        lambda api: api.get("/api/dkim", {"domain": "a.example"}),
        lambda api: _create(api, domain="a.example"),
    ],
    ids=["records", "list", "create"],
)
def test_it_answers_404_to_another_tenants_admin(api_b, domain_a, domain_b, request_it):
    response = request_it(api_b)
    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    assert not DkimKey.objects.exists()


def test_it_answers_404_for_a_principal_that_is_not_a_domain(api_a, admin_a, domain_a):
    assert api_a.get("/api/dns/records/admin-a").json() == NOT_FOUND
    assert api_a.get(f"/api/dns/records/{admin_a.pk}").json() == NOT_FOUND


def test_it_lets_a_superadmin_see_every_tenant(api_client_for, superadmin, domain_a, domain_b):
    api = api_client_for(superadmin)
    assert _create(api, domain="b.example").status_code == 200
    assert api.get("/api/dns/records/b.example").status_code == 200
    assert api.get("/api/dkim").json()["data"]["total"] == 1


def test_a_page_deeper_than_offset_goes_is_a_400_naming_page(api_root):
    response = api_root.get("/api/domains?page=999999&page_size=50")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "page"
    assert "Pages reach 10,000 items deep at most" in response.json()["detail"]
