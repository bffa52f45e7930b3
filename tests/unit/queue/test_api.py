"""The queue control API: the spec's paths and shapes, filters, actions, isolation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.queue import delivery
from apps.queue.models import QueuedMessage, QueueDomain, QueueRecipient
from apps.queue.services import enqueue
from mailadmin.core.models import AuditEvent
from tests.unit.queue.conftest import message

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_wakeups(monkeypatch):
    monkeypatch.setattr(delivery, "wake", lambda domain_id: None)


def queue(tenant=None, *, sender="sender@origin.test", to=("a@remote.test",), subject="Hello"):
    return enqueue(
        return_path=sender,
        recipients=list(to),
        data=message(subject),
        tenant_id=tenant.pk if tenant else None,
    )


def test_it_lists_messages_in_the_specs_shape(api_a, tenant_a):
    queued = queue(tenant_a, to=["a@remote.test", "b@other.test"])
    response = api_a.get("/api/queue/messages")
    assert response.status_code == 200
    data = response.json()["data"]
    assert (data["total"], data["status"]) == (1, True)
    (item,) = data["items"]
    assert item["id"] == queued.pk
    assert item["return_path"] == "sender@origin.test"
    assert item["size"] == queued.size and item["blob_hash"] == queued.blob_hash
    assert [d["name"] for d in item["domains"]] == ["remote.test", "other.test"]
    domain = item["domains"][0]
    assert domain["status"] == "scheduled" and domain["retry_num"] == 0
    assert domain["recipients"] == [
        {"address": "a@remote.test", "status": "scheduled", "code": None, "response": ""}
    ]
    assert domain["next_retry"].endswith("Z") and domain["expires"].endswith("Z")


def test_a_tenant_admin_sees_only_its_tenants_messages(api_a, api_b, api_root, tenant_a, tenant_b):
    mine = queue(tenant_a)
    theirs = queue(tenant_b)
    assert [i["id"] for i in api_a.get("/api/queue/messages").json()["data"]["items"]] == [mine.pk]
    assert api_a.get(f"/api/queue/messages/{theirs.pk}").status_code == 404
    assert api_a.patch(f"/api/queue/messages/{theirs.pk}").status_code == 404
    assert api_a.delete(f"/api/queue/messages/{theirs.pk}").status_code == 404
    assert api_a.delete("/api/queue/messages").json() == {"data": True}  # cancels only A's
    assert QueueRecipient.objects.get(message=theirs).status == "scheduled"
    assert QueueRecipient.objects.get(message=mine).status == "cancelled"
    listed = api_root.get("/api/queue/messages").json()["data"]
    assert sorted(i["id"] for i in listed["items"]) == sorted([mine.pk, theirs.pk])


def test_an_ordinary_user_may_not_see_the_queue(api_client_for, user_a, tenant_a):
    queue(tenant_a)
    client = api_client_for(user_a)
    response = client.get("/api/queue/messages")
    assert response.status_code == 403
    assert response.json()["permission"] == "message-queue-list"


def test_it_filters_by_text_recipient_sender_domain_status_and_date(api_root):
    first = queue(sender="alice@origin.test", to=["x@remote.test"], subject="Invoice 42")
    second = queue(sender="bob@origin.test", to=["y@other.test"], subject="Lunch")
    QueuedMessage.objects.filter(pk=first.pk).update(created=timezone.now() - timedelta(days=3))
    QueuedMessage.objects.filter(pk=second.pk).update(status="failed")

    def ids(**params):
        response = api_root.get("/api/queue/messages", params)
        assert response.status_code == 200, response.content
        return [i["id"] for i in response.json()["data"]["items"]]

    assert ids(text="invoice") == [first.pk]
    assert ids(text="y@other") == [second.pk]
    assert ids(recipient="X@remote.test") == [first.pk]
    assert ids(sender="bob@origin.test") == [second.pk]
    assert ids(domain="other.test") == [second.pk]
    assert ids(status="failed") == [second.pk]
    day = (timezone.now() - timedelta(days=1)).date().isoformat()
    assert ids(**{"from": day}) == [second.pk]
    assert ids(to=day) == [first.pk]
    bad = api_root.get("/api/queue/messages", {"status": "lost"})
    assert bad.status_code == 400
    assert "Unknown status: lost" in bad.json()["detail"]


def test_it_pages_with_a_capped_total_in_constant_queries(api_root, django_assert_max_num_queries):
    for i in range(12):
        queue(to=[f"r{i}@remote.test", f"s{i}@other.test"])
    with django_assert_max_num_queries(12):
        response = api_root.get("/api/queue/messages", {"limit": 5, "page": 2, "max-total": 8})
    data = response.json()["data"]
    assert (len(data["items"]), data["total"]) == (5, 8)


def test_it_reschedules_one_message_and_all_matching(api_root):
    first, second = queue(to=["a@remote.test"]), queue(to=["b@other.test"])
    later = timezone.now() + timedelta(hours=1)
    QueueDomain.objects.update(next_retry=later)
    assert api_root.patch(f"/api/queue/messages/{first.pk}").json() == {"data": True}
    assert QueueDomain.objects.get(message=first).next_retry <= timezone.now()
    assert QueueDomain.objects.get(message=second).next_retry == later
    assert api_root.patch("/api/queue/messages?filter=other.test").json() == {"data": True}
    assert QueueDomain.objects.get(message=second).next_retry <= timezone.now()
    assert AuditEvent.objects.filter(action="queue.reschedule").count() == 2


def test_it_cancels_one_recipient_and_records_it(api_root, superadmin):
    queued = queue(to=["a@remote.test", "b@remote.test"])
    response = api_root.delete(f"/api/queue/messages/{queued.pk}?recipient=b@remote.test")
    assert response.json() == {"data": True}
    statuses = dict(queued.recipients.values_list("address", "status"))
    assert statuses == {"a@remote.test": "scheduled", "b@remote.test": "cancelled"}
    cancelled = queued.recipients.get(address="b@remote.test")
    assert cancelled.response == f"Cancelled by {superadmin.name}"
    assert QueueDomain.objects.get(message=queued).status == "scheduled"

    assert api_root.delete(f"/api/queue/messages/{queued.pk}").json() == {"data": True}
    queued.refresh_from_db()
    assert queued.status == "cancelled"
    assert QueueDomain.objects.get(message=queued).status == "cancelled"
    assert queued.recipients.count() == 2  # recorded, not dropped
    event = AuditEvent.objects.filter(action="queue.cancel").last()
    assert event.actor_name == superadmin.name


def test_it_cancels_everything_matching_a_text_filter(api_root):
    keep = queue(to=["a@remote.test"])
    gone = queue(to=["b@other.test"])
    assert api_root.delete("/api/queue/messages?text=other.test").json() == {"data": True}
    assert QueueRecipient.objects.get(message=gone).status == "cancelled"
    assert QueueRecipient.objects.get(message=keep).status == "scheduled"


def test_it_stops_and_starts_the_queue(api_root, api_a, tenant_a):
    assert api_root.get("/api/queue/status").json() == {"data": True}
    assert api_root.patch("/api/queue/status/stop").json() == {"data": True}
    assert api_root.get("/api/queue/status").json() == {"data": False}
    assert api_a.get("/api/queue/messages").json()["data"]["status"] is False
    queued = queue(tenant_a)
    entry = QueueDomain.objects.get(message=queued)
    assert delivery.claim(entry.pk) is None  # stopped: no delivery starts
    assert api_root.patch("/api/queue/status/start").json() == {"data": False}
    assert delivery.claim(entry.pk) is not None
    assert AuditEvent.objects.filter(action__in=["queue.stop", "queue.start"]).count() == 2


def test_only_a_superadmin_controls_the_queue(api_a):
    response = api_a.patch("/api/queue/status/stop")
    assert response.status_code == 403
    assert response.json()["permission"] == "queue-control"
    assert api_a.get("/api/queue/status").json() == {"data": True}


def test_an_unknown_message_is_a_problem_404(api_root):
    for path in ("/api/queue/messages/999999", "/api/queue/messages/nope"):
        response = api_root.get(path)
        assert response.status_code == 404
        assert response.json()["title"] == "Not Found"


def test_a_queued_messages_blob_is_visible_to_its_tenant_only(admin_a, admin_b, tenant_a):
    from apps.store.selectors import blob_visible

    queued = queue(tenant_a)
    assert blob_visible(admin_a, queued.blob_hash)
    assert not blob_visible(admin_b, queued.blob_hash)


def test_it_pages_by_cursor_too(api_root):
    ids = [queue(to=[f"r{i}@remote.test"]).pk for i in range(5)]
    first = api_root.get("/api/queue/messages", {"limit": 2}).json()["data"]
    assert [i["id"] for i in first["items"]] == ids[::-1][:2]
    assert first["next"]
    second = api_root.get("/api/queue/messages", {"limit": 2, "cursor": first["next"]})
    assert second.status_code == 200, second.content
    assert [i["id"] for i in second.json()["data"]["items"]] == ids[::-1][2:4]


@pytest.mark.parametrize("method", ["get", "patch", "delete"])
def test_a_date_with_any_offset_filters_in_utc(api_root, method):
    """Offsets PostgreSQL refuses (past 15:59) are read as the instant they name; the first
    hours of year 1 east of UTC are before any instant Python holds: a 400 naming the field."""
    queue()
    response = getattr(api_root, method)("/api/queue/messages?from=2000-01-01T00:00:00%2B18:56")
    assert response.status_code == 200, response.content
    response = getattr(api_root, method)("/api/queue/messages?to=0001-01-01T00:00:00%2B05:00")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "to"
