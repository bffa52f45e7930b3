"""The domain console's new parts: the New domain form (422 errors), the DKIM keys with
rotate/retire (htmx, 422 refusals), the records fragment refreshed when a check finishes."""

from __future__ import annotations

import json

import pytest

from apps.accounts.models import Principal
from apps.domains import services
from apps.domains.models import DkimKey
from mailadmin.core.models import TaskRun

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def console(client):
    def login(principal):
        client.force_login(principal)
        return client

    return login


# --- New domain ---------------------------------------------------------------------


def test_it_offers_new_domain_to_whoever_may_create_domains(console, admin_a, user_a):
    page = console(admin_a).get("/domains/").content.decode()
    assert 'id="new-domain"' in page and 'href="/domains/new/"' in page
    form = console(admin_a).get("/domains/new/").content.decode()
    assert 'id="domain-form"' in form and 'name="tenant"' not in form  # their own tenant
    assert console(user_a).get("/domains/new/").status_code == 403
    assert 'id="new-domain"' not in console(user_a).get("/domains/").content.decode()


def test_it_adds_a_domain_in_the_actors_tenant_and_opens_its_page(console, admin_a, tenant_a):
    response = console(admin_a).post("/domains/new/", {"name": "Bücher.example"})
    domain = Principal.objects.get(type="domain", name="xn--bcher-kva.example")
    assert domain.tenant_id == tenant_a.pk
    assert response.status_code == 302 and response["Location"] == f"/domains/{domain.pk}/"
    htmx = console(admin_a).post("/domains/new/", {"name": "c.example"}, **HTMX)
    assert htmx.status_code == 204
    assert htmx["HX-Redirect"].startswith("/domains/")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "This field is required."),
        ("not a domain", "Invalid value for field name:"),
        ("a.example", "already"),
    ],
)
def test_it_answers_a_bad_domain_with_422_and_the_message(
    console, admin_a, domain_a, name, message
):
    response = console(admin_a).post("/domains/new/", {"name": name}, **HTMX)
    assert response.status_code == 422
    body = response.content.decode()
    assert body.lstrip().startswith('<form method="post" id="domain-form"')  # the form alone
    assert 'id="id_name_error"' in body and message in body
    assert Principal.objects.filter(type="domain").count() == 1


def test_it_has_a_superadmin_pick_the_tenant(console, superadmin, tenant_a, tenant_b):
    client = console(superadmin)
    assert f'<option value="{tenant_b.pk}">' in client.get("/domains/new/").content.decode()
    response = client.post("/domains/new/", {"name": "n.example"}, **HTMX)
    assert response.status_code == 422 and 'id="id_tenant_error"' in response.content.decode()
    client.post("/domains/new/", {"name": "n.example", "tenant": tenant_b.pk})
    assert Principal.objects.get(name="n.example").tenant_id == tenant_b.pk


# --- DKIM keys on the domain page ---------------------------------------------------


@pytest.fixture
def active_key(admin_a, domain_a):
    key = services.dkim_key_create(actor=admin_a, domain=domain_a, algorithm="rsa")
    DkimKey.objects.filter(pk=key.pk).update(state="active")
    key.refresh_from_db()
    return key


def test_it_shows_each_key_with_its_state_and_next_step(console, admin_a, domain_a, active_key):
    page = console(admin_a).get(f"/domains/{domain_a.pk}/").content.decode()
    assert f'id="dkim-key-{active_key.pk}" data-state="active"' in page
    assert "Signing. Rotate it to replace it with a new key." in page
    assert f'hx-post="/domains/{domain_a.pk}/dkim/{active_key.pk}/rotate/"' in page
    assert "hx-confirm=" in page


def test_it_rotates_a_key_from_the_page(console, admin_a, domain_a, active_key):
    url = f"/domains/{domain_a.pk}/dkim/{active_key.pk}/rotate/"
    response = console(admin_a).post(url, **HTMX)
    assert response.status_code == 200
    new = DkimKey.objects.exclude(pk=active_key.pk).get()
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="dns-records-box"')
    assert f'id="dkim-key-{new.pk}" data-state="pending"' in body
    assert f"{new.selector}._domainkey.a.example." in body  # its record, to publish
    assert "to replace" in json.loads(response["HX-Trigger"])["messages"][0]["message"]


def test_it_answers_a_refused_rotation_with_422(console, admin_a, domain_a, active_key):
    url = f"/domains/{domain_a.pk}/dkim/{active_key.pk}/rotate/"
    console(admin_a).post(url, **HTMX)
    response = console(admin_a).post(url, **HTMX)
    assert response.status_code == 422
    assert 'id="dkim-error"' in response.content.decode()
    assert "is already waiting for its DNS record" in response.content.decode()
    assert DkimKey.objects.count() == 2


def test_it_retires_a_key_from_the_page(console, admin_a, domain_a, active_key):
    url = f"/domains/{domain_a.pk}/dkim/{active_key.pk}/retire/"
    response = console(admin_a).post(url)
    assert response.status_code == 302 and response["Location"] == f"/domains/{domain_a.pk}/"
    assert DkimKey.objects.get(pk=active_key.pk).state == "retiring"
    page = console(admin_a).get(f"/domains/{domain_a.pk}/").content.decode()
    assert "no longer signs" in page and "Withdrawn on " in page


def test_it_keeps_keys_of_other_tenants_out_of_reach(
    console, admin_a, admin_b, user_a, domain_a, domain_b, active_key
):
    for action in ("rotate", "retire"):
        url = f"/domains/{domain_a.pk}/dkim/{active_key.pk}/{action}/"
        assert console(admin_b).post(url).status_code == 404
        assert console(user_a).post(url).status_code == 403
        # Another domain's page with this key: not found either.
        other = services.dkim_key_create(actor=admin_b, domain=domain_b, algorithm="rsa")
        assert (
            console(admin_a).post(f"/domains/{domain_a.pk}/dkim/{other.pk}/{action}/").status_code
            == 404
        )
    assert DkimKey.objects.get(pk=active_key.pk).state == "active"


# --- refreshed when a check finishes -------------------------------------------------


def test_it_serves_the_records_fragment_to_the_domains_tenant_only(
    console, admin_a, admin_b, domain_a
):
    response = console(admin_a).get(f"/domains/{domain_a.pk}/records/", **HTMX)
    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<div id="dns-records-box"')
    assert 'hx-trigger="task-finished from:body"' in body
    assert console(admin_b).get(f"/domains/{domain_a.pk}/records/").status_code == 404


def test_it_tells_the_page_when_a_run_finishes(console, admin_a, domain_a):
    run = TaskRun.objects.create(
        kind=f"dns-check:{domain_a.pk}",
        title="DNS check",
        actor=admin_a,
        tenant_id=domain_a.tenant_id,
    )
    client = console(admin_a)
    assert "HX-Trigger" not in client.get(f"/tasks/{run.pk}/", **HTMX)
    TaskRun.objects.filter(pk=run.pk).update(state=TaskRun.State.SUCCESS)
    response = client.get(f"/tasks/{run.pk}/", **HTMX)
    assert json.loads(response["HX-Trigger"]) == {"task-finished": {"kind": run.kind}}


def test_it_reloads_the_domain_list_when_check_all_finishes(console, admin_a, domain_a):
    page = console(admin_a).get("/domains/?q=a.ex").content.decode()
    assert (
        '<div id="domain-table" hx-get="/domains/?q=a.ex" hx-trigger="task-finished from:body"'
        in page
    )
