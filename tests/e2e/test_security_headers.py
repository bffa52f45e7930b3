"""Every console page works under its Content-Security-Policy and Permissions-Policy.

Chromium enforces the headers for real: a blocked script, style or request shows up as a
`securitypolicyviolation` event or a console error, and both fail the test.
"""

import pytest
from playwright.sync_api import expect

from apps.accounts.auth.app_passwords import app_password_add
from apps.accounts.models import PrincipalEmail
from mailadmin.core.models import TaskRun
from tests.conftest import TEST_PASSWORD
from tests.e2e.conftest import login, mark_document, same_document

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def console_world(superadmin, tenant_a, make_principal):
    """Something on every page: accounts, a domain, an app password, a finished task."""
    jane = make_principal(tenant=tenant_a, name="jane", password="")
    PrincipalEmail.objects.create(principal=jane, address="jane@a.example")
    make_principal(tenant=tenant_a, name="john", password="")
    domain = make_principal(tenant=tenant_a, roles=(), name="a.example", type="domain", password="")
    app_password_add(actor=superadmin, name="phone")
    run = TaskRun.objects.create(
        kind="self-check", title="Self-check", actor=superadmin, state=TaskRun.State.SUCCESS
    )
    return {"jane": jane, "domain": domain, "run": run}


def _check_headers(response, url: str) -> None:
    headers = response.all_headers()
    csp = headers.get("content-security-policy", "")
    assert "script-src 'self' 'nonce-" in csp, url
    assert "unsafe-inline" not in csp.split("script-src", 1)[1].split(";", 1)[0], url
    assert "unsafe-eval" not in csp, url
    assert "camera=()" in headers.get("permissions-policy", ""), url


def test_every_console_page_loads_under_the_policies(
    browser_page, page_problems, live_server, superadmin, console_world
):
    page = browser_page
    login(page, live_server, "root", TEST_PASSWORD)
    expect(page.locator("h1")).to_have_text("Dashboard")
    jane, domain, run = console_world["jane"], console_world["domain"], console_world["run"]
    pages = {
        "/": "h1",
        "/accounts/": "#principal-table",
        f"/accounts/{jane.pk}/": "h1",
        "/accounts/new/?type=individual": "#principal-form",
        f"/accounts/{jane.pk}/memberships/": "#principal-form",
        f"/accounts/{jane.pk}/permissions/": "#principal-form",
        "/accounts/audit/": "#audit-table",
        "/account/api-keys/": "#api-key-form",
        "/account/app-passwords/": "#app-password-table",
        "/account/security/": "#two-factor",
        "/account/security/totp/": ".totp-qr svg",
        "/domains/": "#domain-table",
        f"/domains/{domain.pk}/": "#dns-records",
        "/telemetry/": "h1",
        f"/tasks/{run.id}/": ".task-progress",
        "/api/docs/": ".swagger-ui .information-container",
        "/admin/": "#content",
        "/admin/accounts/principal/": "#changelist",
        f"/admin/accounts/principal/{jane.pk}/change/": "#content-main form",
    }
    for path, ready in pages.items():
        response = page.goto(live_server.url + path)
        assert response.status == 200, path
        _check_headers(response, path)
        expect(page.locator(ready).first).to_be_visible()
        page.wait_for_load_state("networkidle")
    assert page_problems == []


def test_htmx_works_under_the_policy(
    browser_page, page_problems, live_server, admin_a, console_world
):
    page = browser_page
    login(page, live_server, "admin-a", TEST_PASSWORD)
    page.goto(f"{live_server.url}/accounts/?type=individual")
    mark_document(page)
    table = page.locator("#principal-table")
    expect(table).to_contain_text("john")
    page.fill("input[name=q]", "jane")
    expect(table).not_to_contain_text("john")
    expect(table).to_contain_text("jane@a.example")
    assert page.url.endswith("q=jane")  # hx-push-url
    assert same_document(page)

    page.goto(f"{live_server.url}/accounts/new/?type=group")
    mark_document(page)
    page.fill("#id_name", "staff")
    page.click("#principal-form button[type=submit]")
    expect(page.locator("h1")).to_have_text("staff (group)")  # HX-Redirect to the new group
    expect(page.locator("#messages")).to_contain_text("Created group staff.")
    assert page_problems == []


def test_it_blocks_and_reports_an_injected_inline_script(
    browser_page, page_problems, live_server, admin_a
):
    """The watcher above sees real violations: markup injected into a page cannot run."""
    page = browser_page
    login(page, live_server, "admin-a", TEST_PASSWORD)
    expect(page.locator("h1")).to_have_text("Dashboard")
    page.evaluate(
        """() => {
          const script = document.createElement("script");
          script.textContent = "window.__injected = true";
          document.body.appendChild(script);
          document.getElementById("main").insertAdjacentHTML(
            "beforeend", '<p id="styled" style="color: rgb(255, 0, 0)">x</p>');
        }"""
    )
    page.wait_for_timeout(200)  # the violation events are dispatched asynchronously
    assert page.evaluate("window.__injected") is None
    assert page.locator("#styled").evaluate("e => getComputedStyle(e).color") != "rgb(255, 0, 0)"
    blocked = [p for p in page_problems if p.startswith("CSP ")]
    assert [p.split(" blocked")[0] for p in blocked] == [
        "CSP script-src-elem",
        "CSP style-src-attr",
    ]
