"""The mailbox form in a browser: bad input shows its message in place (422 swapped by
htmx), good input creates the mailbox; a CSV import runs on a real worker with live
progress and lists the rows it refused."""

import pytest
from playwright.sync_api import expect

from apps.domains.models import MailboxProfile
from tests.conftest import TEST_PASSWORD
from tests.e2e.conftest import login, mark_document, same_document
from tests.support.worker import Worker

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def domain(make_principal, tenant_a):
    return make_principal(tenant=tenant_a, roles=(), name="a.example", type="domain", password="")


@pytest.fixture
def page(browser_page, page_problems, live_server, admin_a):
    login(browser_page, live_server, "admin-a", TEST_PASSWORD)
    expect(browser_page.locator("h1")).to_have_text("Dashboard")
    yield browser_page
    assert [p for p in page_problems if "422" not in p] == []


def test_the_mailbox_form_shows_a_short_password(page, live_server, domain):
    page.goto(f"{live_server.url}/domains/{domain.pk}/")
    page.click("#new-mailbox")
    page.fill("#id_name", "jane")
    page.fill("#id_display_name", "Jane Doe")
    page.fill("#id_password", "short")
    page.fill("#id_quota_0", "2")
    page.select_option("#id_quota_1", "GB")
    mark_document(page)
    page.click("#mailbox-form button[type=submit]")
    expect(page.locator("#id_password_error")).to_have_text(
        "Password must be at least 8 characters long"
    )
    assert same_document(page)
    expect(page.locator("#id_name")).to_have_value("jane")
    assert not MailboxProfile.objects.exists()

    page.fill("#id_password", "Secret123!@#")
    page.click("#mailbox-form button[type=submit]")
    expect(page.locator("#messages")).to_contain_text("Created mailbox jane@a.example.")
    expect(page.locator("#mailbox-table")).to_contain_text("jane@a.example")
    expect(page.locator("#mailbox-table")).to_contain_text("2048 MB")


def test_the_mailbox_form_shows_a_name_in_use(page, live_server, domain):
    from apps.accounts.models import Principal
    from apps.domains import mailbox_services

    admin = Principal.objects.get(name="admin-a")
    values = {"display_name": "Jane", "password": "Secret123!@#", "size": 10}
    mailbox_services.mailbox_create(actor=admin, domain=domain, name="jane", values=values)
    page.goto(f"{live_server.url}/domains/{domain.pk}/mailboxes/new/")
    page.fill("#id_name", "Jane")
    page.fill("#id_display_name", "Jane again")
    page.fill("#id_password", "Secret123!@#")
    page.fill("#id_quota_0", "10")
    page.select_option("#id_quota_1", "MB")
    page.click("#mailbox-form button[type=submit]")
    expect(page.locator("#id_name_error")).to_have_text(
        "The email address jane@a.example is already in use"
    )


def test_an_import_shows_live_progress_and_the_refused_rows(page, live_server, domain, tmp_path):
    csv = tmp_path / "mailboxes.csv"
    csv.write_text(
        "name,displayName,password,size\nann,Ann,Secret123!@#,100\nbad name,X,Secret123!@#,1\n"
    )
    worker = Worker({}).start()
    try:
        page.goto(f"{live_server.url}/domains/{domain.pk}/")
        page.set_input_files("#id_file", str(csv))
        page.click("#import-mailboxes")
        progress = page.locator("#mailbox-import-run .task-progress")
        expect(progress).to_be_visible()
        expect(progress).to_have_attribute("data-state", "failure", timeout=30_000)
        expect(progress.locator(".task-message")).to_contain_text(
            "1 of 2 row(s) refused: nothing was imported."
        )
        expect(progress.locator("table.checks")).to_contain_text("Row 2 (bad name)")
        expect(progress.locator("table.checks")).to_contain_text("Invalid user name")
    finally:
        worker.stop()
    assert not MailboxProfile.objects.exists()
