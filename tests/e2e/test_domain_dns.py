"""Check DNS now: a real worker checks a domain against the loopback DNS server, live."""

import pytest
from playwright.sync_api import expect

from apps.domains.models import DomainProfile
from apps.domains.selectors import expected_records
from tests.conftest import TEST_PASSWORD
from tests.e2e.conftest import login
from tests.support.worker import Worker

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_it_checks_a_domains_dns_with_a_real_worker(
    browser_page, live_server, admin_a, make_principal, tenant_a, dns_server, settings
):
    settings.MAILADMIN_HOSTNAME = "mx.example.test"
    domain = make_principal(tenant=tenant_a, roles=(), name="a.example", type="domain", password="")
    records = expected_records(domain=domain)
    for name in {r["name"] for r in records}:
        zone: dict = {}
        for r in (r for r in records if r["name"] == name):
            content = r["content"]
            if r["type"] == "MX":
                value = (10, content.split()[1])
            elif r["type"] == "SRV":
                p, w, port, target = content.split()
                value = (int(p), int(w), int(port), target)
            else:
                value = content
            zone.setdefault(r["type"], []).append(value)
        dns_server.set_zone(name, zone)
    dns_server.set_zone("mx.example.test", {"A": ["192.0.2.25"]})  # SPF must authorise it
    worker = Worker(
        {"MAILADMIN_DNS_NAMESERVERS": dns_server.address, "MAILADMIN_HOSTNAME": "mx.example.test"}
    ).start()
    try:
        page = browser_page
        login(page, live_server, "admin-a", TEST_PASSWORD)
        page.goto(f"{live_server.url}/domains/{domain.pk}/")
        page.click("#check-dns")
        progress = page.locator(".task-progress")
        expect(progress).to_be_visible()
        expect(progress).to_have_attribute("data-state", "success", timeout=30_000)
        expect(progress.locator(".task-message")).to_contain_text(
            f"{len(records)} of {len(records)} records found"
        )
        expect(progress.locator("table.checks")).to_contain_text("MX a.example.")
    finally:
        worker.stop()
    assert DomainProfile.objects.get(domain=domain).dns_status == "ok"
