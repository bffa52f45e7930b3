"""Bad input on each console form shows its message on the screen.

htmx forms (principals, domains, DKIM) get a 422 with the form re-rendered and swap it in
place, without a page load; plain forms get the page again with a 422.
"""

import pytest
from playwright.sync_api import expect

from apps.accounts.auth.app_passwords import app_password_add
from apps.accounts.models import Principal, PrincipalEmail
from apps.domains.models import DkimKey
from tests.conftest import TEST_PASSWORD
from tests.e2e.conftest import login, mark_document, same_document

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page(browser_page, page_problems, live_server, admin_a):
    login(browser_page, live_server, "admin-a", TEST_PASSWORD)
    expect(browser_page.locator("h1")).to_have_text("Dashboard")
    yield browser_page
    # The 422 is the answer the page expects, not an error the console should show.
    assert [p for p in page_problems if "422" not in p] == []


def _submit_in_place(page, form: str) -> None:
    mark_document(page)
    page.click(f"{form} button[type=submit]")


def test_an_account_form_shows_a_bad_name(page, live_server):
    page.goto(f"{live_server.url}/accounts/new/?type=individual")
    page.fill("#id_name", "jane doe")
    _submit_in_place(page, "#principal-form")
    expect(page.locator("#id_name_error")).to_have_text(
        "The name 'jane doe' is not valid: use letters, digits, '.', '_', '-' and '@' "
        "(at most 255 characters)."
    )
    assert same_document(page)  # htmx swapped the 422 into the page
    expect(page.locator("#id_name")).to_have_value("jane doe")  # the input is kept
    assert not Principal.objects.filter(name="jane doe").exists()


def test_a_membership_form_names_the_missing_principal(page, live_server, admin_a):
    page.goto(f"{live_server.url}/accounts/{admin_a.pk}/memberships/")
    page.fill("#id_memberOf", "nobody")
    _submit_in_place(page, "#principal-form")
    expect(page.locator("#principal-form .errorlist")).to_have_text("No such principal: nobody")
    assert same_document(page)


def test_a_domain_form_shows_a_bad_domain_name(page, live_server):
    page.goto(f"{live_server.url}/accounts/new/?type=domain")
    page.fill("#id_name", "not a domain")
    _submit_in_place(page, "#principal-form")
    expect(page.locator("#principal-form .errorlist")).to_have_text(
        "'not a domain' is not a valid domain name."
    )
    assert same_document(page)
    assert not Principal.objects.filter(type="domain").exists()


def test_a_domain_delete_shows_why_it_is_refused(page, live_server, make_principal, tenant_a):
    domain = make_principal(tenant=tenant_a, roles=(), name="a.example", type="domain", password="")
    jane = make_principal(tenant=tenant_a, name="jane", password="")
    PrincipalEmail.objects.create(principal=jane, address="jane@a.example")
    page.goto(f"{live_server.url}/accounts/{domain.pk}/delete/")
    page.click("#confirm-delete")
    expect(page.locator("#delete-errors")).to_contain_text("The domain a.example still has 1 ")
    assert Principal.objects.filter(pk=domain.pk).exists()


def test_a_dkim_form_shows_a_bad_selector(page, live_server, make_principal, tenant_a):
    domain = make_principal(tenant=tenant_a, roles=(), name="a.example", type="domain", password="")
    page.goto(f"{live_server.url}/domains/{domain.pk}/")
    page.fill("#id_selector", "mail_2026")
    _submit_in_place(page, "#dkim-form")
    expect(page.locator("#id_selector_error")).to_have_text(
        "Invalid value for field selector: 'mail_2026' is not a DNS label "
        "(1-63 letters, digits or hyphens, not starting or ending with a hyphen)."
    )
    assert same_document(page)
    assert not DkimKey.objects.exists()

    page.fill("#id_selector", "mail2026")
    page.click("#dkim-form button[type=submit]")
    expect(page.locator("#messages")).to_contain_text("Created DKIM key mail2026.")
    expect(page.locator("#dns-records")).to_contain_text("mail2026._domainkey.a.example")


def test_an_api_key_form_shows_a_past_expiry(page, live_server):
    page.goto(f"{live_server.url}/account/api-keys/")
    page.fill("#id_name", "deploy")
    page.fill("#id_expires_at", "2001-01-01T00:00")
    page.fill("#id_password", TEST_PASSWORD)
    page.click("#create-api-key")
    expect(page.locator("#expires-errors")).to_have_text("The expiry must be in the future.")
    expect(page.locator("#id_name")).to_have_value("deploy")
    assert not Principal.objects.filter(name="deploy").exists()


def test_an_app_password_form_shows_a_taken_name(page, live_server, admin_a):
    app_password_add(actor=admin_a, name="phone")
    page.goto(f"{live_server.url}/account/app-passwords/")
    page.fill("#id_name", "phone")
    page.fill("#id_password", TEST_PASSWORD)
    page.click("#create-app-password")
    expect(page.locator("#name-errors")).to_have_text(
        "An app password named 'phone' already exists."
    )
    expect(page.locator("#app-password-created")).to_have_count(0)


def test_the_totp_form_shows_a_wrong_code(page, live_server, admin_a):
    page.goto(f"{live_server.url}/account/security/totp/")
    page.fill("#id_code", "000000")
    page.fill("#id_password", TEST_PASSWORD)
    page.click("#confirm-totp")
    expect(page.locator("#code-errors")).to_have_text(
        "The code is not valid. Check the time on your device."
    )
    assert not Principal.objects.get(pk=admin_a.pk).otp_enabled


def test_the_totp_disable_form_asks_for_the_current_password(page, live_server, admin_a):
    import pyotp

    from apps.accounts.auth.totp import totp_enable
    from apps.accounts.auth.twofactor import new_secret

    secret = new_secret()
    totp_enable(actor=admin_a, secret=secret, code=pyotp.TOTP(secret).now())
    page.goto(f"{live_server.url}/account/security/")
    page.click("text=Turn off two-factor authentication")
    page.fill("#id_disable-password", "not my password")
    page.click("#disable-totp")
    expect(page.locator("#id_disable-password-errors")).to_have_text(
        "Your current password is not correct."
    )
    assert Principal.objects.get(pk=admin_a.pk).otp_enabled


def test_the_login_form_shows_a_wrong_password(browser_page, live_server, admin_a):
    page = browser_page
    login(page, live_server, "admin-a", "not the password")
    expect(page.locator("#login-errors")).to_have_text(
        "Please enter a correct name or e-mail address and password."
    )
    expect(page.locator("#id_username")).to_have_value("admin-a")


def test_a_fetch_job_form_refuses_plain_text_to_a_remote_host(page, live_server, tenant_a):
    jane = Principal.objects.create_user("jane", TEST_PASSWORD, type="individual", tenant=tenant_a)
    PrincipalEmail.objects.create(principal=jane, address="jane@example.test")
    page.goto(f"{live_server.url}/queue/fetch/new/")
    page.fill("#id_mailbox", "jane@example.test")
    page.fill("#id_host", "imap.remote.test")
    page.select_option("#id_security", "none")
    page.fill("#id_username", "remote-user")
    page.fill("#id_password", "remote-secret")
    _submit_in_place(page, "#fetch-form")
    expect(page.locator("#id_security_error")).to_have_text(
        "Plain-text connections are only allowed to loopback hosts (127.0.0.1, ::1, "
        "localhost): use implicit TLS (useSsl) or STARTTLS."
    )
    assert same_document(page)
    expect(page.locator("#id_host")).to_have_value("imap.remote.test")
