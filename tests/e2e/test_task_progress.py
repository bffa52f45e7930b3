"""A Celery task started from a page shows its progress live until it completes."""

import pytest
from playwright.sync_api import expect

from apps.queue.smtp import ListenerThread
from mailadmin.core.models import TaskRun
from tests.conftest import TEST_PASSWORD
from tests.e2e.conftest import login
from tests.support.worker import Worker

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def listeners():
    listener = ListenerThread({"inbound": ("127.0.0.1", 0), "submission": ("127.0.0.1", 0)})
    listener.start()
    try:
        yield listener
    finally:
        listener.stop()


def test_it_shows_a_self_check_run_by_a_real_worker(
    browser_page, live_server, superadmin, listeners, dns_server
):
    dns_server.set_zone("mail.localhost", {"A": ["127.0.0.1"]})
    ports = listeners.ports
    worker = Worker(
        {
            "MAILADMIN_SMTP_BIND": f"127.0.0.1:{ports['inbound']}",
            "MAILADMIN_SUBMISSION_BIND": f"127.0.0.1:{ports['submission']}",
            "MAILADMIN_DNS_NAMESERVERS": dns_server.address,
            "MAILADMIN_HOSTNAME": "mail.localhost",
        }
    ).start()
    try:
        page = browser_page
        login(page, live_server, "root", TEST_PASSWORD)
        page.goto(f"{live_server.url}/telemetry/")
        page.click("#self-check-link")
        page.click("#start-self-check")
        progress = page.locator(".task-progress")
        expect(progress).to_be_visible()
        expect(progress).to_have_attribute("data-state", "success", timeout=30_000)
        expect(progress.locator(".task-message")).to_contain_text("All checks passed.")
        expect(progress.locator("table.checks")).to_contain_text(
            f"127.0.0.1:{ports['inbound']} answered 220"
        )
        expect(progress.locator("table.checks")).to_contain_text("mail.localhost A 127.0.0.1")
    finally:
        worker.stop()
    run = TaskRun.objects.get()
    assert run.state == TaskRun.State.SUCCESS
    assert run.done == run.total == 4
    assert run.tenant_id is None  # server-wide: listed to superadmins only
    assert ("mail.localhost", "A") in dns_server.queries
