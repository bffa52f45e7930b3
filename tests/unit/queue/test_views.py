"""The queue pages: list with filters and chips, bulk actions behind a confirmation,
stop/resume, message detail and raw view; tenant isolation and constant query counts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.queue import delivery
from apps.queue.models import QueueDomain, QueueRecipient, QueueSample
from apps.queue.services import enqueue
from tests.unit.queue.conftest import message

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_wakeups(monkeypatch):
    monkeypatch.setattr(delivery, "wake", lambda domain_id: None)


def queue(tenant=None, *, to=("a@remote.test",), subject="Hello", sender="s@origin.test"):
    return enqueue(
        return_path=sender,
        recipients=list(to),
        data=message(subject),
        tenant_id=tenant.pk if tenant else None,
    )


def test_the_queue_page_lists_the_tenants_messages_only(client, admin_a, tenant_a, tenant_b):
    queue(tenant_a, subject="Mine")
    queue(tenant_b, subject="Theirs")
    client.force_login(admin_a)
    response = client.get("/queue/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "Mine" in body and "Theirs" not in body
    assert "Stop the queue" not in body  # server-wide control: superadmins only
    assert 'hx-trigger="every 10s, queue-refresh"' in body


def test_the_page_filters_and_counts_by_status(client, superadmin):
    queue(subject="Invoice", to=["x@remote.test"])
    failed = queue(subject="Lunch", to=["y@other.test"])
    failed.status = "failed"
    failed.save()
    client.force_login(superadmin)
    body = client.get("/queue/", {"text": "invoice"}).content.decode()
    assert "Invoice" in body and "Lunch" not in body
    body = client.get("/queue/", {"status": "failed"}).content.decode()
    assert "Lunch" in body and "Invoice" not in body
    assert "scheduled <b>1</b>" in body and "failed <b>1</b>" in body
    partial = client.get("/queue/", {"status": "failed"}, HTTP_HX_REQUEST="true")
    assert partial.content.decode().lstrip().startswith('<div id="queue-table"')


def test_a_bad_filter_is_reported_not_a_500(client, superadmin):
    client.force_login(superadmin)
    response = client.get("/queue/", {"from": "yesterday"})
    assert response.status_code == 200
    assert "is not a date or date-time" in response.content.decode()


def test_the_page_has_constant_queries(client, superadmin, django_assert_max_num_queries):
    client.force_login(superadmin)
    for i in range(3):
        queue(to=[f"r{i}@remote.test", f"s{i}@other.test"])
    client.get("/queue/")
    with django_assert_max_num_queries(30) as few:
        client.get("/queue/")
    for i in range(20):
        queue(to=[f"t{i}@remote.test", f"u{i}@other.test"])
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get("/queue/")


def test_the_chart_gets_the_recorded_queue_sizes(client, superadmin, admin_a, tenant_a):
    queue(tenant_a)
    delivery.sweep()
    assert QueueSample.objects.get(tenant=None).size == 1
    client.force_login(admin_a)
    body = client.get("/queue/").content.decode()
    assert 'id="queue-sizes"' in body and '"size": 1' in body
    assert "vendor/chart-4.6.1.umd.min.js" in body


def test_bulk_cancel_asks_first_then_records_each_recipient(client, admin_a, tenant_a):
    one = queue(tenant_a, to=["a@remote.test", "b@remote.test"])
    other = queue(tenant_a)
    client.force_login(admin_a)
    asked = client.post("/queue/bulk/", {"action": "cancel", "ids": [one.pk]})
    assert asked.status_code == 200
    assert "Cancel delivery of 1 message?" in asked.content.decode()
    assert QueueRecipient.objects.filter(status="cancelled").count() == 0
    done = client.post("/queue/bulk/", {"action": "cancel", "ids": [one.pk], "confirm": "yes"})
    assert done.status_code == 302
    assert set(one.recipients.values_list("status", flat=True)) == {"cancelled"}
    assert other.recipients.get().status == "scheduled"


def test_bulk_actions_reach_all_matching_but_never_another_tenant(
    client, admin_a, tenant_a, tenant_b
):
    mine = queue(tenant_a, to=["a@remote.test"])
    theirs = queue(tenant_b, to=["a@remote.test"])
    QueueDomain.objects.update(next_retry=timezone.now() + timedelta(hours=1))
    client.force_login(admin_a)
    data = {"action": "reschedule", "scope": "all", "recipient": "a@remote.test"}
    assert "Reschedule 1 message?" in client.post("/queue/bulk/", data).content.decode()
    client.post("/queue/bulk/", {**data, "confirm": "yes"})
    assert QueueDomain.objects.get(message=mine).next_retry <= timezone.now()
    assert QueueDomain.objects.get(message=theirs).next_retry > timezone.now()
    client.post("/queue/bulk/", {"action": "cancel", "ids": [theirs.pk], "confirm": "yes"})
    assert theirs.recipients.get().status == "scheduled"


def test_stop_and_resume_from_the_page(client, superadmin, admin_a):
    client.force_login(superadmin)
    assert "Stop the queue" in client.get("/queue/").content.decode()
    client.post("/queue/control/", {"running": "no"})
    body = client.get("/queue/").content.decode()
    assert "Resume the queue" in body and "stopped: no delivery starts" in body
    assert not delivery.queue_running()
    client.post("/queue/control/", {"running": "yes"})
    assert delivery.queue_running()
    client.force_login(admin_a)
    assert client.post("/queue/control/", {"running": "no"}).status_code == 403
    assert delivery.queue_running()


def test_the_detail_page_shows_each_recipient_and_the_last_answer(
    client, admin_a, tenant_a, admin_b
):
    queued = queue(tenant_a, to=["a@remote.test", "b@remote.test"], subject="Figures")
    QueueRecipient.objects.filter(address="a@remote.test").update(
        code=451, response="451 4.7.1 Greylisted, try later"
    )
    client.force_login(admin_a)
    body = client.get(f"/queue/{queued.pk}/").content.decode()
    assert "Figures" in body and "b@remote.test" in body
    assert "451 4.7.1 Greylisted, try later" in body
    client.post(f"/queue/{queued.pk}/cancel/", {"recipient": "b@remote.test"})
    assert queued.recipients.get(address="b@remote.test").status == "cancelled"
    assert queued.recipients.get(address="a@remote.test").status == "scheduled"
    raw = client.get(f"/queue/{queued.pk}/raw/").content.decode()
    assert "Subject: Figures" in raw

    client.force_login(admin_b)
    for url in (f"/queue/{queued.pk}/", f"/queue/{queued.pk}/raw/"):
        assert client.get(url).status_code == 404
    assert client.post(f"/queue/{queued.pk}/cancel/").status_code == 404
    assert client.post(f"/queue/{queued.pk}/reschedule/").status_code == 404
    assert queued.recipients.get(address="a@remote.test").status == "scheduled"


def test_an_ordinary_user_gets_no_queue_pages(client, user_a, tenant_a):
    queued = queue(tenant_a)
    client.force_login(user_a)
    assert client.get("/queue/").status_code == 403
    assert client.get(f"/queue/{queued.pk}/").status_code == 403
