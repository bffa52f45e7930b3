"""The queue page in Chromium: the size chart drawn by the vendored Chart.js under the
strict CSP, ticking messages for a bulk cancel through the confirmation page (which fits
1280 px), and the auto-refresh holding off while messages are ticked."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from apps.queue import delivery
from apps.queue.models import QueueRecipient, QueueSample
from apps.queue.services import enqueue
from tests.conftest import TEST_PASSWORD
from tests.e2e.conftest import login
from tests.e2e.test_layout import WIDTH, assert_fits

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _no_wakeups(monkeypatch, settings, tmp_path):
    settings.MAILADMIN_BLOB_DIR = str(tmp_path)
    monkeypatch.setattr(delivery, "wake", lambda domain_id: None)


def test_it_charts_the_queue_and_cancels_ticked_messages_after_confirming(
    browser_page, page_problems, live_server, admin_a, tenant_a
):
    queued = [
        enqueue(
            return_path="s@origin.test",
            recipients=[f"r{i}@remote.test"],
            data=f"Subject: message {i}\r\n\r\nbody\r\n".encode(),
            tenant_id=tenant_a.pk,
        )
        for i in range(3)
    ]
    now = timezone.now()
    QueueSample.objects.bulk_create(
        [QueueSample(tenant=None, at=now - timedelta(minutes=m), size=5) for m in range(10)]
        + [QueueSample(tenant=tenant_a, at=now - timedelta(minutes=m), size=m) for m in range(10)]
    )
    page = browser_page
    page.set_viewport_size({"width": WIDTH, "height": 900})
    login(page, live_server, "admin-a", TEST_PASSWORD)
    page.goto(f"{live_server.url}/queue/")
    expect(page.locator("#queue-messages tbody tr")).to_have_count(3)
    page.wait_for_function("window.Chart && Chart.getChart('chart-queue-size')")
    sizes = page.evaluate("Chart.getChart('chart-queue-size').data.datasets[0].data")
    assert sizes == list(range(9, -1, -1))  # the tenant's own samples, oldest first

    refresh = """() => new Promise((resolve) => {
        let sent = false;
        document.body.addEventListener('htmx:afterRequest', () => { sent = true; });
        htmx.trigger('#queue-table', 'queue-refresh');  // what the 10 s poll does
        setTimeout(() => resolve(sent), 1000);
    })"""
    assert page.evaluate(refresh) is True
    page.check(f"input[name=ids][value='{queued[0].pk}']")
    page.check(f"input[name=ids][value='{queued[2].pk}']")
    assert page.evaluate(refresh) is False  # a refresh now would lose the ticks
    page.click("#bulk-cancel")
    expect(page.locator("h1")).to_have_text("Cancel delivery of 2 messages?")
    assert_fits(page, "queue confirmation")
    page.click("#confirm-action")
    expect(page.locator("#messages")).to_contain_text("Cancelled delivery to 2 recipient(s).")
    statuses = dict(QueueRecipient.objects.values_list("message_id", "status"))
    assert statuses == {
        queued[0].pk: "cancelled",
        queued[1].pk: "scheduled",
        queued[2].pk: "cancelled",
    }
    assert page_problems == []
