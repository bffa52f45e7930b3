"""The domain list and detail pages, and the Check DNS button."""

import pytest
from django.urls import reverse

from apps.accounts.models import Principal
from apps.domains import selectors
from apps.domains.models import DnsCheckResult, DomainProfile
from apps.domains.services import dkim_key_create
from mailadmin.core.models import AuditEvent, TaskRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def console(client):
    def login(principal):
        client.force_login(principal)
        return client

    return login


def test_it_lists_the_tenants_domains_with_their_dns_status(console, admin_a, domain_a, domain_b):
    DomainProfile.objects.create(domain=domain_a, tenant=domain_a.tenant, dns_status="partial")
    response = console(admin_a).get("/domains/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "a.example" in body
    assert "Some records missing or wrong" in body
    assert "b.example" not in body


def test_it_lists_every_domain_for_a_superadmin(console, superadmin, domain_a, domain_b):
    body = console(superadmin).get("/domains/").content.decode()
    assert "a.example" in body and "b.example" in body
    assert "tenant-b" in body


def test_it_searches_and_returns_the_table_to_htmx(console, admin_a, make_domain, tenant_a):
    make_domain("shop.example", tenant=tenant_a)
    make_domain("blog.example", tenant=tenant_a)
    response = console(admin_a).get("/domains/?q=SHOP", HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="domain-table" hx-get="/domains/?q=SHOP"')
    assert "shop.example" in body and "blog.example" not in body


def test_it_pages_2000_domains_in_constant_queries(
    console, admin_a, tenant_a, django_assert_max_num_queries
):
    domains = Principal.objects.bulk_create(
        Principal(name=f"d{i:04}.example", type="domain", tenant=tenant_a) for i in range(2000)
    )
    DomainProfile.objects.bulk_create(
        DomainProfile(domain=d, tenant=tenant_a, dns_status="ok") for d in domains[:1000]
    )
    client = console(admin_a)
    # session, user, roles, the page's ids then its rows (past page 1), the capped count
    with django_assert_max_num_queries(6):
        response = client.get("/domains/?page=3")
    body = response.content.decode()
    assert "d0100.example" in body and "d0149.example" in body and "d0150.example" not in body
    assert "Page 3 of 40 · 2,000 in all" in body


def test_it_needs_domain_list(console, user_a):
    response = console(user_a).get("/domains/")
    assert response.status_code == 403
    assert "domain-list" in response.content.decode()


def test_it_shows_the_records_with_the_latest_results(console, admin_a, domain_a, settings):
    settings.MAILADMIN_HOSTNAME = "mx.example.test"
    DnsCheckResult.objects.create(
        domain=domain_a,
        tenant=domain_a.tenant,
        record_type="MX",
        name="a.example.",
        expected="10 mx.example.test.",
        found="10 elsewhere.test.",
        status="mismatch",
        detail="no MX points to mx.example.test.",
    )
    response = console(admin_a).get(f"/domains/{domain_a.pk}/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "10 mx.example.test." in body
    assert "Different value" in body and "10 elsewhere.test." in body
    assert "_dmarc.a.example." in body
    assert 'id="check-dns"' in body


def test_it_shows_a_domain_never_checked_without_writing(console, admin_a, domain_a):
    response = console(admin_a).get(f"/domains/{domain_a.pk}/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "Not checked yet" in body and "last checked never" in body
    token = selectors.verification_token(domain_a)
    assert f"mailadmin-verification={token}" in body
    assert not DomainProfile.objects.exists()  # a GET never writes
    assert not AuditEvent.objects.exists()


def test_it_shows_the_detail_in_constant_queries(
    console, admin_a, domain_a, django_assert_max_num_queries
):
    DomainProfile.objects.create(domain=domain_a, tenant=domain_a.tenant)
    for algorithm in ("rsa", "ed25519", "rsa"):
        dkim_key_create(actor=admin_a, domain=domain_a, algorithm=algorithm)
    client = console(admin_a)
    # session, user, roles, domain + profile, results, published DKIM keys (records),
    # latest run, the DKIM keys table; the mailbox section: mailboxes (their addresses
    # prefetched when there are some), aliases, catch-all, latest import run
    with django_assert_max_num_queries(12):
        assert client.get(f"/domains/{domain_a.pk}/").status_code == 200


def test_it_answers_404_for_a_foreign_or_missing_domain(console, admin_b, domain_a):
    client = console(admin_b)
    assert client.get(f"/domains/{domain_a.pk}/").status_code == 404
    assert client.post(f"/domains/{domain_a.pk}/dns-check/").status_code == 404
    assert client.get("/domains/999999/").status_code == 404
    assert not TaskRun.objects.exists()


def test_it_needs_domain_get_and_dns_check(console, user_a, domain_a):
    client = console(user_a)
    response = client.get(f"/domains/{domain_a.pk}/")
    assert response.status_code == 403
    assert "domain-get" in response.content.decode()
    response = client.post(f"/domains/{domain_a.pk}/dns-check/")
    assert response.status_code == 403
    assert "dns-check" in response.content.decode()


def test_it_starts_a_check_and_swaps_in_its_progress(
    console, admin_a, domain_a, django_capture_on_commit_callbacks
):
    url = reverse("domains:dns-check", args=[domain_a.pk])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = console(admin_a).post(url, HTTP_HX_REQUEST="true")
    assert len(callbacks) == 1
    run = TaskRun.objects.get()
    body = response.content.decode()
    assert body.lstrip().startswith(f'<div class="task-progress" id="task-{run.id}"')
    assert 'data-state="pending"' in body and "DNS check of a.example" in body
    # the page shows the latest run too
    assert f"task-{run.id}" in console(admin_a).get(f"/domains/{domain_a.pk}/").content.decode()


def test_it_redirects_a_plain_post_back_to_the_domain(console, admin_a, domain_a):
    response = console(admin_a).post(f"/domains/{domain_a.pk}/dns-check/")
    assert response.status_code == 302
    assert response["Location"] == f"/domains/{domain_a.pk}/"


def test_it_offers_the_zone_file_and_says_when_a_check_could_not_finish(
    console, admin_a, domain_a, settings
):
    settings.MAILADMIN_HOSTNAME = "mx.example.test"
    DomainProfile.objects.create(domain=domain_a, tenant=domain_a.tenant, dns_status="ok")
    DnsCheckResult.objects.create(
        domain=domain_a,
        tenant=domain_a.tenant,
        record_type="MX",
        name="a.example.",
        expected="10 mx.example.test.",
        status="error",
        detail="lookup of a.example. MX failed: 127.0.0.1:53 SERVFAIL",
    )
    client = console(admin_a)
    body = client.get(f"/domains/{domain_a.pk}/").content.decode()
    assert 'href="/api/dns/records/a.example?format=zone"' in body
    assert "All records found" in body
    assert "the latest check could not finish (our DNS resolver failed)" in body
    assert "127.0.0.1:53 SERVFAIL" in body
    download = client.get("/api/dns/records/a.example?format=zone")
    assert download.status_code == 200
    assert download.content.decode().startswith("; DNS records for a.example.")


def test_it_starts_check_all_from_the_list(console, admin_a, user_a, domain_a):
    page = console(admin_a).get("/domains/").content.decode()
    assert 'id="check-all-dns"' in page
    response = console(admin_a).post("/domains/check-all/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    run = TaskRun.objects.get()
    assert (run.kind, run.title) == (
        f"dns-check-all:{admin_a.tenant_id}",
        "DNS check of every domain",
    )
    assert console(user_a).post("/domains/check-all/").status_code == 403
