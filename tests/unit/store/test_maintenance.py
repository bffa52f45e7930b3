"""Store maintenance: purges, undelete, reindex and UID reset, through the API and the real
tasks (run here, on the shared task base), against real blob files on disk."""

from __future__ import annotations

import os
import threading
import time
from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.utils import timezone

from apps.store import blobs, maintenance, services, tasks
from apps.store.models import DeletedMessage, Folder, Message
from mailadmin.core.models import AuditEvent, SpentToken, TaskRun
from tests.unit.store.conftest import message

pytestmark = pytest.mark.django_db

HOUR = 3600


def age(blob_hash: str, seconds: float) -> None:
    """Make a blob look `seconds` old (past or within the purge's grace period)."""
    moment = time.time() - seconds
    os.utime(blobs.path_for(blob_hash), (moment, moment))


@pytest.fixture
def jane(make_mailbox):
    return make_mailbox("jane")


@pytest.fixture
def bob(make_mailbox, tenant_b, domain_b):
    return make_mailbox("bob", domain="b.example", tenant=tenant_b)


@pytest.fixture
def run_now(django_capture_on_commit_callbacks):
    """run_now(start) -> the finished TaskRun, carried out here by the run's real task."""
    by_name = {
        maintenance.PURGE_ACCOUNTS_TASK: tasks.purge_accounts_task,
        maintenance.PURGE_ACCOUNT_TASK: tasks.purge_account_task,
        maintenance.PURGE_BLOB_TASK: tasks.purge_blob_task,
        maintenance.PURGE_DATA_TASK: tasks.purge_data_task,
        maintenance.PURGE_IN_MEMORY_TASK: tasks.purge_in_memory_task,
        maintenance.REINDEX_TASK: tasks.reindex_task,
    }

    def run(start, **kwargs) -> TaskRun:
        with django_capture_on_commit_callbacks(execute=False):
            started = start(**kwargs)
        by_name[started.task_name](str(started.pk))
        started.refresh_from_db()
        return started

    return run


def latest_run(task_name: str) -> TaskRun:
    return TaskRun.objects.filter(task_name=task_name).latest("created_at")


# --- the blob purge -----------------------------------------------------------------------


def test_it_deletes_only_unreferenced_blobs_past_the_grace_period(
    run_now, superadmin, jane, settings
):
    settings.MAILADMIN_STORE_BLOB_GRACE_MINUTES = 60
    kept = services.deliver(jane, message("kept"))
    orphan = blobs.put(b"nobody references these bytes")
    recent = blobs.put(b"written a moment ago, its row may be on its way")
    for blob_hash in (kept.blob_hash, orphan):
        age(blob_hash, 2 * HOUR)

    run = run_now(maintenance.purge_blob_start, actor=superadmin)

    assert run.state == TaskRun.State.SUCCESS, run.message
    assert not blobs.path_for(orphan).exists()
    assert blobs.read(kept.blob_hash) == message("kept")
    assert blobs.exists(recent)
    assert (run.result["deleted"], run.result["kept_recent"]) == (1, 1)
    assert run.result["freed"] == len(b"nobody references these bytes")
    assert run.message.startswith("1 unreferenced blob(s) deleted")


def test_it_keeps_a_blob_referenced_by_a_queued_message(run_now, superadmin, monkeypatch):
    from apps.queue import delivery
    from apps.queue.services import enqueue

    monkeypatch.setattr(delivery, "wake", lambda domain_id: None)
    queued = enqueue(
        return_path="jane@a.example", recipients=["x@remote.example"], data=message("out")
    )
    age(queued.blob_hash, 48 * HOUR)

    run_now(maintenance.purge_blob_start, actor=superadmin)

    assert blobs.read(queued.blob_hash) == message("out")


def test_it_keeps_the_blob_of_a_deleted_message_until_it_is_purged_for_good(
    run_now, superadmin, jane, settings
):
    stored = services.deliver(jane, message("doomed"), flags=["\\Deleted"])
    age(stored.blob_hash, 2 * HOUR)
    maintenance.account_purge(jane.pk)
    run_now(maintenance.purge_blob_start, actor=superadmin)
    assert blobs.exists(stored.blob_hash)  # undelete can still bring it back

    settings.MAILADMIN_STORE_UNDELETE_DAYS = 0
    maintenance.account_purge(jane.pk)
    assert not DeletedMessage.objects.exists()
    run_now(maintenance.purge_blob_start, actor=superadmin)
    assert not blobs.path_for(stored.blob_hash).exists()


def test_it_keeps_an_old_blob_a_new_delivery_reuses(run_now, superadmin, jane):
    """`put` of bytes already stored touches the file, so the purge sees it as recent even
    before the delivery's row exists."""
    old = blobs.put(message("again"))
    age(old, 2 * HOUR)
    assert blobs.put(message("again")) == old

    run_now(maintenance.purge_blob_start, actor=superadmin)

    assert blobs.exists(old)


def test_it_puts_back_a_blob_referenced_between_the_check_and_the_delete(jane):
    orphan = blobs.put(message("raced"))
    age(orphan, 2 * HOUR)
    cutoff = time.time() - HOUR

    removed = blobs.remove_unless_used(orphan, cutoff, referenced=lambda blob_hash: True)

    assert removed is False
    assert blobs.read(orphan) == message("raced")
    assert [p.name for p in blobs.path_for(orphan).parent.iterdir()] == [orphan]


def _race(data: bytes, blob_hash: str) -> None:
    committed = threading.Event()
    start = threading.Barrier(2)

    def deliver() -> None:
        start.wait()
        blobs.put(data)
        committed.set()  # the row, referencing the blob, commits after the put

    def purge() -> None:
        start.wait()
        blobs.remove_unless_used(blob_hash, time.time() - HOUR, lambda h: committed.is_set())

    workers = [threading.Thread(target=deliver), threading.Thread(target=purge)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def test_a_racing_put_never_loses_its_blob():
    """A delivery reusing an old blob races the purge of it, many times over: whatever the
    interleaving, once the delivery's row exists (after its put) the file is there."""
    data = message("raced bytes")
    blob_hash = blobs.put(data)
    for _ in range(500):
        age(blob_hash, 2 * HOUR)
        _race(data, blob_hash)
        assert blobs.read(blob_hash) == data
    assert [p.name for p in blobs.path_for(blob_hash).parent.iterdir()] == [blob_hash]


def test_it_removes_old_temporary_files_a_crash_left(run_now, superadmin, jane):
    stored = services.deliver(jane, message())
    stray = blobs.path_for(stored.blob_hash).parent / ".tmp-crashed"
    stray.write_bytes(b"half a message")
    moment = time.time() - 2 * HOUR
    os.utime(stray, (moment, moment))

    run = run_now(maintenance.purge_blob_start, actor=superadmin)

    assert not stray.exists()
    assert run.result["strays"] == 1


# --- the account purge --------------------------------------------------------------------


def test_it_expunges_deleted_flags_and_old_trash_and_keeps_the_rest(run_now, admin_a, jane):
    inbox = services.deliver(jane, message("stays"))
    services.deliver(jane, message("flagged"), flags=["\\Seen", "\\Deleted"])
    old_trash = services.deliver(jane, message("old trash"), folder="Trash")
    Message.objects.filter(pk=old_trash.pk).update(received_at=timezone.now() - timedelta(days=31))
    new_trash = services.deliver(jane, message("new trash"), folder="Trash")

    run = run_now(maintenance.purge_account_start, actor=admin_a, account_id=jane.name)

    assert run.state == TaskRun.State.SUCCESS, run.message
    assert run.result == {"expunged": 1, "expired": 1, "purged": 0}
    assert set(Message.objects.values_list("pk", flat=True)) == {inbox.pk, new_trash.pk}
    deleted = {d.subject: d for d in DeletedMessage.objects.all()}
    assert set(deleted) == {"flagged", "old trash"}
    assert deleted["flagged"].flags == ["\\Seen"]
    assert deleted["old trash"].folder_name == "Trash"
    assert AuditEvent.objects.filter(action="store.purge-account", object_id=str(jane.pk)).exists()


def test_it_deletes_for_good_what_is_past_the_undelete_window(jane, settings):
    settings.MAILADMIN_STORE_UNDELETE_DAYS = 30
    services.deliver(jane, message("gone"), flags=["\\Deleted"])
    maintenance.account_purge(jane.pk)
    DeletedMessage.objects.update(deleted_at=timezone.now() - timedelta(days=31))

    assert maintenance.account_purge(jane.pk).purged == 1
    assert not DeletedMessage.objects.exists()


def test_a_tenant_admins_purge_of_all_accounts_stays_in_the_tenant(run_now, admin_a, jane, bob):
    services.deliver(jane, message(), flags=["\\Deleted"])
    services.deliver(bob, message(), flags=["\\Deleted"])

    run = run_now(maintenance.purge_accounts_start, actor=admin_a)

    assert run.tenant_id == admin_a.tenant_id
    assert run.result["accounts"] == 1
    assert list(Message.objects.values_list("principal", flat=True)) == [bob.pk]


def test_the_schedule_purges_every_account(run_now, jane, bob):
    services.deliver(jane, message(), flags=["\\Deleted"])
    services.deliver(bob, message(), flags=["\\Deleted"])

    run = run_now(maintenance.purge_accounts_start, actor=None)

    assert run.state == TaskRun.State.SUCCESS
    assert not Message.objects.exists()
    assert DeletedMessage.objects.count() == 2


# --- the API: permissions and tenant isolation --------------------------------------------


@pytest.mark.parametrize(
    "path", ["/api/store/purge/blob", "/api/store/purge/data", "/api/store/purge/in-memory"]
)
def test_server_wide_purges_are_for_superadmins(
    api_a, api_root, path, django_capture_on_commit_callbacks
):
    refused = api_a.get(path)
    assert refused.status_code == 403
    with django_capture_on_commit_callbacks(execute=False):
        assert api_root.get(path).json() == {"data": None}
    assert TaskRun.objects.get().task_name.startswith("store.purge_")


def test_it_queues_one_run_per_kind(api_root, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        for _ in range(2):
            assert api_root.get("/api/store/reindex").json() == {"data": None}
    assert TaskRun.objects.filter(task_name=maintenance.REINDEX_TASK).count() == 1


def test_another_tenants_account_is_not_found(api_a, bob):
    for response in (
        api_a.get(f"/api/store/purge/account/{bob.name}"),
        api_a.get(f"/api/store/undelete/{bob.name}"),
        api_a.post(f"/api/store/undelete/{bob.name}", [], format="json"),
        api_a.delete(f"/api/store/uids/{bob.name}"),
    ):
        assert response.status_code == 404, response.content
    assert not TaskRun.objects.exists()


def test_a_user_may_undelete_their_own_mail_only(api_client_for, jane, make_mailbox):
    from apps.accounts.principals.services import builtin_role

    jane.roles.add(builtin_role("user"))
    own = api_client_for(jane)
    assert own.get(f"/api/store/undelete/{jane.name}").status_code == 200
    other = make_mailbox("john")
    assert own.get(f"/api/store/undelete/{other.name}").status_code == 404
    assert own.delete(f"/api/store/uids/{jane.name}").status_code == 403
    assert own.get(f"/api/store/purge/account/{jane.name}").status_code == 403


def test_a_users_api_key_may_undelete_its_owners_mail_only(anon_api, jane, make_mailbox):
    """A key acts for its owner: with undelete it reaches the owner's mail (it was
    404 for the owner too, so the permission was of no use to a user's key)."""
    from apps.accounts.auth.api_keys import api_key_create
    from apps.accounts.principals.services import builtin_role

    jane.roles.add(builtin_role("user"))
    jane.enabled_permissions = ["api-key-create"]
    jane.save(update_fields=["enabled_permissions"])
    _, secret = api_key_create(actor=jane, name="jane-key", permissions=["undelete"])
    anon_api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    for key in (jane.name, str(jane.pk)):
        response = anon_api.get(f"/api/store/undelete/{key}")
        assert response.status_code == 200, response.content
        assert response.json()["data"]["items"] == []
    other = make_mailbox("john")
    assert anon_api.get(f"/api/store/undelete/{other.name}").status_code == 404


# --- undelete -----------------------------------------------------------------------------


def test_it_lists_and_restores_a_deleted_message_with_a_new_uid(api_a, jane):
    stored = services.deliver(jane, message("bring me back"), flags=["\\Flagged", "\\Deleted"])
    services.deliver(jane, message("later"))
    maintenance.account_purge(jane.pk)

    listed = api_a.get(f"/api/store/undelete/{jane.name}").json()["data"]
    assert listed["total"] == 1
    item = listed["items"][0]
    assert item["hash"] == maintenance.blob_id(stored.blob_hash)
    assert (item["collection"], item["folder"], item["subject"]) == (
        "email",
        "INBOX",
        "bring me back",
    )
    assert item["size"] == stored.size

    body = [{"hash": item["hash"], "collection": "email", "restoreTime": item["deletedAt"]}]
    response = api_a.post(f"/api/store/undelete/{jane.name}", body, format="json")

    assert response.json() == {"data": [{"type": "success"}]}
    restored = Message.objects.get(subject="bring me back")
    assert restored.folder.name == "INBOX"
    assert restored.uid == 3  # after the two delivered: a new UID, never the old one
    assert restored.flags == ["\\Flagged"]
    assert restored.folder.uidnext == 4
    assert not DeletedMessage.objects.exists()
    assert api_a.get(f"/api/store/undelete/{jane.name}").json()["data"]["total"] == 0


def test_it_answers_not_found_for_a_hash_it_does_not_hold(api_a, jane):
    body = [{"hash": "9pDYGrkDlLYuBNl062qhi0wStnDYyq4ZWalnj2vXbLY", "collection": "email"}]
    response = api_a.post(f"/api/store/undelete/{jane.name}", body, format="json")
    assert response.json() == {"data": [{"type": "notFound"}]}


def test_it_restores_into_the_inbox_when_the_folder_is_gone(api_a, jane):
    folders = services.folders_ensure(jane)
    archive = Folder.objects.create(principal=jane, name="Archive", uidvalidity=7)
    stored = services.deliver(jane, message("archived"), folder="Archive", flags=["\\Deleted"])
    maintenance.account_purge(jane.pk)
    archive.delete()

    body = [{"hash": stored.blob_hash}]
    assert api_a.post(f"/api/store/undelete/{jane.name}", body, format="json").json() == {
        "data": [{"type": "success"}]
    }
    assert Message.objects.get().folder == folders["INBOX"]


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"hash": "x"}, "The body must be a list of messages to undelete."),
        ([{"collection": "email"}], "Missing required field: hash"),
        ([{"hash": "nope"}], "Item 0: hash is not a blob hash (base64url or hex SHA-256)."),
        ([{"hash": "a" * 64, "extra": 1}], "Unrecognized field: extra"),
        (
            [{"hash": "a" * 64, "collection": "contact"}],
            "Item 0: only the collection 'email' can be undeleted.",
        ),
        (
            [{"hash": "a" * 64, "restoreTime": "yesterday"}],
            "Item 0: restoreTime must be a date and time with its zone (2025-01-05T14:50:13Z).",
        ),
    ],
)
def test_it_refuses_a_bad_undelete_body(api_a, jane, body, detail):
    response = api_a.post(f"/api/store/undelete/{jane.name}", body, format="json")
    assert response.status_code == 400
    assert response.json()["detail"] == detail


# --- reset UIDs ---------------------------------------------------------------------------


def test_it_renumbers_uids_and_changes_uidvalidity(api_a, jane):
    for n in range(4):
        services.deliver(jane, message(f"m{n}"))
    services.deliver(jane, message("sent"), folder="Sent")
    Message.objects.filter(subject="m1").delete()  # a gap: UIDs 1, 3, 4 in the INBOX
    before = {f.name: f.uidvalidity for f in Folder.objects.filter(principal=jane)}

    response = api_a.delete(f"/api/store/uids/{jane.name}")

    assert response.json() == {"data": [4, 4]}  # the four standard folders, four messages
    inbox = Folder.objects.get(principal=jane, name="INBOX")
    assert list(inbox.messages.order_by("uid").values_list("subject", "uid")) == [
        ("m0", 1),
        ("m2", 2),
        ("m3", 3),
    ]
    assert inbox.uidnext == 4
    after = {f.name: f.uidvalidity for f in Folder.objects.filter(principal=jane)}
    assert all(after[name] != before[name] for name in before)
    assert services.deliver(jane, message("next")).uid == 4
    assert AuditEvent.objects.filter(action="store.uids-reset").exists()


# --- reindex, data and in-memory purges ---------------------------------------------------


def test_reindex_recomputes_what_rows_derive_from_their_blobs(run_now, superadmin, jane):
    stored = services.deliver(jane, message("the real subject"))
    Message.objects.filter(pk=stored.pk).update(subject="stale", size=1)
    lost = services.deliver(jane, message("lost"))
    blobs.path_for(lost.blob_hash).unlink()

    run = run_now(maintenance.reindex_start, actor=superadmin)

    stored.refresh_from_db()
    assert (stored.subject, stored.size) == ("the real subject", len(message("the real subject")))
    assert run.result["messages"] == 2
    assert (run.result["updated"], run.result["missing"]) == (1, 1)
    assert run.result["missingIds"] == [lost.pk]
    assert run.state == TaskRun.State.FAILURE  # a missing blob is a failure to look at


def test_data_purge_deletes_expired_rows(run_now, superadmin, monkeypatch):
    from apps.queue import delivery
    from apps.queue.models import QueuedMessage
    from apps.queue.services import enqueue

    Session.objects.create(
        session_key="old", session_data="", expire_date=timezone.now() - timedelta(days=1)
    )
    Session.objects.create(
        session_key="live", session_data="", expire_date=timezone.now() + timedelta(days=1)
    )
    monkeypatch.setattr(delivery, "wake", lambda domain_id: None)
    done = enqueue(return_path="", recipients=["x@remote.example"], data=message())
    QueuedMessage.objects.filter(pk=done.pk).update(
        status="delivered", created=timezone.now() - timedelta(days=30)
    )
    waiting = enqueue(return_path="", recipients=["y@remote.example"], data=message("wait"))

    run = run_now(maintenance.purge_data_start, actor=superadmin)

    assert run.state == TaskRun.State.SUCCESS, run.message
    assert list(Session.objects.values_list("session_key", flat=True)) == ["live"]
    assert list(QueuedMessage.objects.values_list("pk", flat=True)) == [waiting.pk]
    assert (run.result["sessions"], run.result["queue_messages"]) == (1, 1)


@pytest.mark.parametrize("started_by", ["api", "schedule"])
def test_data_purge_deletes_expired_spent_stream_tokens(
    api_root, started_by, django_capture_on_commit_callbacks
):
    """A spent token is remembered until it would have expired (mailadmin.api.streams):
    past that the row only takes room, and streams may go unopened for days."""
    now = timezone.now()
    SpentToken.objects.create(digest="a" * 64, expires_at=now - timedelta(seconds=1))
    SpentToken.objects.create(digest="b" * 64, expires_at=now + timedelta(minutes=5))
    with django_capture_on_commit_callbacks(execute=False):
        if started_by == "api":
            assert api_root.get("/api/store/purge/data").json() == {"data": None}
        else:
            tasks.store_purge_due_task()
    started = TaskRun.objects.get(task_name=maintenance.PURGE_DATA_TASK)
    tasks.purge_data_task(str(started.pk))
    started.refresh_from_db()

    assert started.state == TaskRun.State.SUCCESS, started.message
    assert list(SpentToken.objects.values_list("digest", flat=True)) == ["b" * 64]
    assert started.result["spent_tokens"] == 1
    event = AuditEvent.objects.get(action="store.purge-data")
    assert event.changes["spent_tokens"] == 1


def test_in_memory_purge_deletes_expired_cache_entries(run_now, superadmin, settings):
    from django.core.cache import cache, caches
    from django.core.cache.backends.db import DatabaseCache

    if not isinstance(caches["default"], DatabaseCache):  # Redis expires keys by itself
        run = run_now(maintenance.purge_in_memory_start, actor=superadmin)
        assert (run.state, run.result["cache_entries"]) == (TaskRun.State.SUCCESS, 0)
        return
    cache.set("smtp-rate:gone", 5, timeout=1)
    cache.set("smtp-rate:live", 5, timeout=600)
    time.sleep(1.1)

    run = run_now(maintenance.purge_in_memory_start, actor=superadmin)

    assert run.result["cache_entries"] == 1, run.message
    assert cache.get("smtp-rate:live") == 5


# --- the schedule and list costs ----------------------------------------------------------


def test_beat_starts_the_nightly_purges_once(settings, django_capture_on_commit_callbacks):
    entries = {e["task"]: e for e in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "store.purge_due" in entries
    for name in ("store.purge_due", *(t for t in tasks_by_name())):
        assert settings.CELERY_TASK_ROUTES[name] == {"queue": "maintenance"}
    with django_capture_on_commit_callbacks(execute=False):
        first = tasks.store_purge_due_task()
        assert tasks.store_purge_due_task() == first  # the runs under way, not twins
        blob = tasks.store_purge_due_task(blobs=True)
    names = TaskRun.objects.values_list("task_name", flat=True)
    assert sorted(names) == sorted(
        [
            maintenance.PURGE_ACCOUNTS_TASK,
            maintenance.PURGE_DATA_TASK,
            maintenance.PURGE_IN_MEMORY_TASK,
            maintenance.PURGE_BLOB_TASK,
        ]
    )
    assert len(blob) == 1
    assert TaskRun.objects.filter(actor=None, tenant=None).count() == 4


def tasks_by_name() -> list[str]:
    return [
        maintenance.PURGE_ACCOUNTS_TASK,
        maintenance.PURGE_ACCOUNT_TASK,
        maintenance.PURGE_BLOB_TASK,
        maintenance.PURGE_DATA_TASK,
        maintenance.PURGE_IN_MEMORY_TASK,
        maintenance.REINDEX_TASK,
    ]


def test_the_deleted_list_costs_the_same_for_3_or_60_messages(
    api_a, jane, django_assert_max_num_queries
):
    def fill(n: int) -> None:
        for i in range(n):
            services.deliver(jane, message(f"n{i}"), flags=["\\Deleted"])
        maintenance.account_purge(jane.pk)

    fill(3)
    with django_assert_max_num_queries(12) as few:
        assert api_a.get(f"/api/store/undelete/{jane.name}").json()["data"]["total"] == 3
    fill(57)
    with django_assert_max_num_queries(len(few.captured_queries)):
        page = api_a.get(f"/api/store/undelete/{jane.name}?limit=50").json()["data"]
    assert (page["total"], len(page["items"])) == (60, 50)


# --- time budgets: a run that stops leaves the rest to the next -----------------------


def test_an_accounts_purge_past_its_budget_goes_on_in_the_next_run(
    run_now, superadmin, jane, bob, settings
):
    settings.MAILADMIN_STORE_RUN_BUDGET_SECONDS = 0  # stop after each account
    for mailbox in (jane, bob):
        services.deliver(mailbox, message(), flags=["\\Deleted"])
    first_id, second_id = sorted([jane.pk, bob.pk])

    first = run_now(maintenance.purge_accounts_start, actor=superadmin)
    assert (first.result["accounts"], first.result["resumeAfter"]) == (1, first_id)
    assert "1 left for the next run" in first.message
    assert list(Message.objects.values_list("principal", flat=True)) == [second_id]

    second = run_now(maintenance.purge_accounts_start, actor=superadmin)
    assert second.result["accounts"] == 1 and "resumeAfter" not in second.result
    assert not Message.objects.exists()

    third = run_now(maintenance.purge_accounts_start, actor=superadmin)
    assert third.total == 2  # finished last time: from the beginning again


def test_a_blob_purge_past_its_budget_goes_on_in_the_next_run(run_now, superadmin, settings):
    settings.MAILADMIN_STORE_RUN_BUDGET_SECONDS = 0  # stop after each fan-out directory
    orphans = sorted(blobs.put(f"orphan {i}".encode()) for i in range(40))
    by_dir = sorted({h[:2] for h in orphans})
    assert len(by_dir) > 2
    for blob_hash in orphans:
        age(blob_hash, 2 * HOUR)

    first = run_now(maintenance.purge_blob_start, actor=superadmin)

    assert first.result["resumeAfter"] == by_dir[0]
    assert [h for h in orphans if blobs.exists(h)] == [h for h in orphans if h[:2] != by_dir[0]]
    second = run_now(maintenance.purge_blob_start, actor=superadmin)
    assert second.result["resumeAfter"] == by_dir[1]
    assert all(blobs.exists(h) == (h[:2] > by_dir[1]) for h in orphans)


def test_a_reindex_past_its_budget_goes_on_in_the_next_run(
    run_now, superadmin, jane, settings, monkeypatch
):
    settings.MAILADMIN_STORE_RUN_BUDGET_SECONDS = 0  # stop after each batch
    monkeypatch.setattr(maintenance, "BATCH", 2)
    stored = [services.deliver(jane, message(f"s{i}")) for i in range(3)]
    Message.objects.update(subject="stale")

    first = run_now(maintenance.reindex_start, actor=superadmin)
    assert (first.result["messages"], first.result["resumeAfter"]) == (2, stored[1].pk)
    second = run_now(maintenance.reindex_start, actor=superadmin)
    assert second.result["messages"] == 1 and "resumeAfter" not in second.result
    assert sorted(Message.objects.values_list("subject", flat=True)) == ["s0", "s1", "s2"]
