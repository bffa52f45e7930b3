"""The domain console in Chromium: the New domain form's error, and a DKIM rotation from
the button to the new key signing, found by a real worker's DNS check on the loopback DNS
server, with the records and keys refreshed in place when the check finishes."""

import pytest
from playwright.sync_api import expect

from apps.accounts.models import Principal
from apps.domains import dkim, records
from apps.domains.models import DkimKey
from apps.domains.selectors import expected_records
from apps.domains.services import dkim_key_create
from tests.conftest import TEST_PASSWORD
from tests.e2e.conftest import login, mark_document, same_document
from tests.support.worker import Worker
from tests.unit.domains.test_dns_task import HOST, publish

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page(browser_page, page_problems, live_server, admin_a):
    login(browser_page, live_server, "admin-a", TEST_PASSWORD)
    expect(browser_page.locator("h1")).to_have_text("Dashboard")
    yield browser_page
    assert [p for p in page_problems if "422" not in p] == []


def test_the_new_domain_form_shows_a_bad_name_in_place(page, live_server, admin_a):
    page.goto(f"{live_server.url}/domains/")
    page.click("#new-domain")
    expect(page.locator("h1")).to_have_text("New domain")
    page.fill("#id_name", "not a domain")
    mark_document(page)
    page.click("#create-domain")
    expect(page.locator("#id_name_error")).to_contain_text("Invalid value for field name:")
    assert same_document(page)
    expect(page.locator("#id_name")).to_have_value("not a domain")
    page.fill("#id_name", "new.example")
    page.click("#create-domain")
    expect(page.locator("h1")).to_have_text("new.example")
    assert Principal.objects.get(name="new.example").tenant_id == admin_a.tenant_id


def test_a_dkim_key_is_rotated_and_the_new_one_signs_once_dns_has_it(
    page, live_server, admin_a, tenant_a, make_principal, dns_server, settings
):
    settings.MAILADMIN_HOSTNAME = HOST
    domain = make_principal(tenant=tenant_a, roles=(), name="a.example", type="domain", password="")
    old = dkim_key_create(actor=admin_a, domain=domain, algorithm=dkim.ED25519)
    DkimKey.objects.filter(pk=old.pk).update(state="active")
    page.goto(f"{live_server.url}/domains/{domain.pk}/")
    expect(page.locator(f"#dkim-key-{old.pk}")).to_have_attribute("data-state", "active")

    page.once("dialog", lambda dialog: dialog.accept())
    mark_document(page)
    page.click(f"#dkim-key-{old.pk} .dkim-rotate")
    pending = page.locator("#dkim-keys tr[data-state=pending]")
    expect(pending).to_have_count(1)
    new = DkimKey.objects.get(domain=domain, state="pending")
    new_name = records.dkim_name("a.example", new.selector)
    expect(page.locator("#dns-records")).to_contain_text(new_name)
    assert same_document(page)

    # A second rotation while the new key waits: refused, said above the keys (422).
    page.once("dialog", lambda dialog: dialog.accept())
    page.click(f"#dkim-key-{old.pk} .dkim-rotate")
    expect(page.locator("#dkim-error")).to_contain_text(
        f"The new key {new.selector} is already waiting for its DNS record"
    )

    publish(dns_server, expected_records(domain=domain))  # the new key's record too
    worker = Worker(
        {"MAILADMIN_DNS_NAMESERVERS": dns_server.address, "MAILADMIN_HOSTNAME": HOST}
    ).start()
    try:
        page.click("#check-dns")
        expect(page.locator(".task-progress")).to_have_attribute(
            "data-state", "success", timeout=30_000
        )
        # The check finished: the records and keys were fetched again, in place.
        expect(page.locator(f"#dkim-key-{new.pk}")).to_have_attribute(
            "data-state", "active", timeout=10_000
        )
    finally:
        worker.stop()
    expect(page.locator(f"#dkim-key-{old.pk}")).to_have_attribute("data-state", "retiring")
    expect(page.locator(f"#dns-status-{domain.pk}")).to_have_text("All records found")
    row = page.locator("#dns-records tr", has_text=new_name)
    expect(row.locator(".badge")).to_have_text("Found")
    expect(row.locator("button.copy-button").first).to_be_visible()
    assert same_document(page)
    assert [k.state for k in DkimKey.objects.filter(pk__in=[old.pk, new.pk]).order_by("pk")] == [
        "retiring",
        "active",
    ]
