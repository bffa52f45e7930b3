"""Telemetry -> Troubleshoot delivery: the steps appear live as the server runs them
against the loopback DNS server and SMTP sink."""

import pytest
from playwright.sync_api import expect

from apps.queue import remote, tls_policy
from tests.conftest import TEST_PASSWORD
from tests.e2e.conftest import login

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_it_shows_each_step_and_the_verdict(
    browser_page, live_server, superadmin, dns_server, smtp_sink, settings, page_problems
):
    remote.clear_mx_cache()
    tls_policy.clear_caches()
    dns_server.set_zone("remote.test", {"MX": [(10, "mx.remote.test.")]})
    dns_server.set_zone("mx.remote.test", {"A": ["127.0.0.1"]})
    settings.MAILADMIN_SMTP_REMOTE_PORT = smtp_sink.port
    smtp_sink.handler.rcpt_replies["gone@remote.test"] = "550 5.1.1 No such user"
    page = browser_page
    login(page, live_server, "root", TEST_PASSWORD)
    page.goto(f"{live_server.url}/telemetry/")
    page.click("#troubleshoot-delivery-link")
    page.fill("#troubleshoot-recipient", "gone@remote.test")
    page.click("#troubleshoot-start")
    status = page.locator("#troubleshoot-status")
    expect(status).to_contain_text(
        "FAILURE: mx.remote.test refuses gone@remote.test: 550 5.1.1 No such user",
        timeout=15_000,
    )
    steps = page.locator("#troubleshoot-steps tbody tr")
    expect(steps.first).to_contain_text("MX: 10 mx.remote.test")
    expect(page.locator("#troubleshoot-steps tbody tr.step-failure")).to_contain_text(
        "RCPT TO:<gone@remote.test> 550 5.1.1 No such user"
    )
    assert steps.count() == 10
    # A token opens one stream: a second run on the same page gets a new one.
    page.fill("#troubleshoot-recipient", "jane@remote.test")
    page.click("#troubleshoot-start")
    expect(status).to_contain_text("SUCCESS", timeout=15_000)
    expect(status).to_contain_text("jane@remote.test")
    assert smtp_sink.messages == []
    assert page_problems == []
