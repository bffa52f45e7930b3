"""The quarantine: browse (filters, the one pager, constant queries), an item's detail,
release (INBOX with the next UID, Bayes ham), delete, bulk actions after a confirmation,
audit, tenant isolation, the daily digest to each owner and the retention purge, the last
two as runs on the task base. Items are held by the MX's own call (quarantine_store); the
SMTP path itself is tested in tests/unit/queue/test_smtp_quarantine.py."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.accounts.models import Principal, PrincipalType
from apps.accounts.permissions import BUILTIN_ROLES
from apps.queue.models import QueuedMessage
from apps.spamfilter import bayes, quarantine
from apps.spamfilter.models import MailboxSpamSetting, QuarantinedMessage
from apps.spamfilter.tasks import (
    quarantine_digest_task,
    quarantine_due_task,
    quarantine_purge_task,
)
from apps.store import blobs
from apps.store.models import Message
from apps.store.services import deliver
from mailadmin.core.models import AuditEvent, TaskRun

pytestmark = pytest.mark.django_db


def _message(subject: str, sender: str = "spammer@junk.test") -> bytes:
    return (
        f"X-Spam-Status: Yes, score=9.00\r\nFrom: {sender}\r\nTo: someone@example.test\r\n"
        f"Subject: {subject}\r\nDate: Mon, 30 Nov 2026 10:00:00 +0000\r\n\r\nBuy now.\r\n"
    ).encode()


@pytest.fixture
def mailbox(make_principal):
    def make(name: str, tenant, domain: str = "example.test"):
        if not Principal.objects.filter(name=domain).exists():
            Principal.objects.create(name=domain, type=PrincipalType.DOMAIN, tenant=tenant)
        principal = make_principal(name=name, tenant=tenant)
        principal.emails.create(address=f"{name}@{domain}")
        return principal

    return make


@pytest.fixture
def jane(mailbox, tenant_a):
    return mailbox("jane", tenant_a)


@pytest.fixture
def bob(mailbox, tenant_b):
    return mailbox("bob", tenant_b, "other.test")


def hold(principal, subject="Cheap watches", sender="spammer@junk.test", age_days=0):
    [item] = quarantine.quarantine_store(
        mailboxes=[principal],
        data=_message(subject, sender),
        sender=sender,
        score=9.0,
        tags={"MISSING_MID": 2.5, "BAYES_SPAM": 5.1},
        reasons=["spam score 9.00 reaches the quarantine threshold 6"],
        peer_ip="192.0.2.7",
        queue_id="ABC123",
    )
    if age_days:
        item.received_at = timezone.now() - timedelta(days=age_days)
        item.save(update_fields=["received_at"])
    return item


# --- browsing ------------------------------------------------------------------------------


def test_it_lists_the_tenants_items_only(client, admin_a, jane, bob):
    mine = hold(jane, "Cheap watches")
    hold(bob, "Tenant B's secret")
    client.force_login(admin_a)
    response = client.get("/spam-filter/quarantine/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Cheap watches" in page and f"/spam-filter/quarantine/{mine.pk}/" in page
    assert "Tenant B&#x27;s secret" not in page and "Tenant B's secret" not in page
    assert "1 in all" in page


def test_it_filters_by_mailbox_domain_sender_and_date(client, admin_a, jane, mailbox, tenant_a):
    joe = mailbox("joe", tenant_a, "example.org")
    hold(jane, "For Jane", sender="a@spam.test")
    hold(joe, "For Joe", sender="b@other.test")
    hold(jane, "Old one", age_days=10)
    client.force_login(admin_a)

    def subjects(**query) -> set[str]:
        response = client.get("/spam-filter/quarantine/", query, HTTP_HX_REQUEST="true")
        assert response.status_code == 200
        page = response.content.decode()
        assert page.lstrip().startswith('<div id="quarantine-table">')
        return {s for s in ("For Jane", "For Joe", "Old one") if s in page}

    assert subjects() == {"For Jane", "For Joe", "Old one"}
    assert subjects(mailbox="jane@example.test") == {"For Jane", "Old one"}
    assert subjects(domain="example.org") == {"For Joe"}
    assert subjects(sender="spam.test") == {"For Jane"}
    today = timezone.now().date()
    assert subjects(**{"from": str(today - timedelta(days=1))}) == {"For Jane", "For Joe"}
    assert subjects(to=str(today - timedelta(days=5))) == {"Old one"}


def test_a_bad_filter_is_named_and_the_rest_still_applies(client, admin_a, jane):
    hold(jane)
    client.force_login(admin_a)
    response = client.get("/spam-filter/quarantine/", {"from": "yesterday"})
    assert response.status_code == 200
    page = response.content.decode()
    assert "Invalid value for field from: &#x27;yesterday&#x27; is not a date or date-time." in page
    assert "Cheap watches" in page


def _copies(item: QuarantinedMessage, n: int) -> None:
    fields = {f.attname: getattr(item, f.attname) for f in item._meta.concrete_fields}
    del fields["id"]
    QuarantinedMessage.objects.bulk_create(
        [QuarantinedMessage(**{**fields, "subject": f"Offer {i}"}) for i in range(n)]
    )


def test_the_list_costs_the_same_queries_for_many_items(
    client, admin_a, jane, django_assert_max_num_queries
):
    _copies(hold(jane), 160)  # page 2 is full: the total is counted
    client.force_login(admin_a)
    client.get("/spam-filter/quarantine/")  # warm the session and permission caches
    with django_assert_max_num_queries(8) as counted:
        assert client.get("/spam-filter/quarantine/", {"page": 2}).status_code == 200
    _copies(QuarantinedMessage.objects.first(), 600)
    with django_assert_max_num_queries(len(counted.captured_queries)):
        response = client.get("/spam-filter/quarantine/", {"page": 3})
    assert "Page 3 of 16" in response.content.decode()


def test_the_detail_shows_headers_score_tags_and_why(client, admin_a, jane):
    item = hold(jane)
    client.force_login(admin_a)
    response = client.get(f"/spam-filter/quarantine/{item.pk}/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "<b>9.00</b>" in page
    assert "<code>BAYES_SPAM</code>" in page and "5.10" in page
    assert "reaches the quarantine threshold" in page
    assert "X-Spam-Status: Yes, score=9.00" in page
    assert "Subject: Cheap watches" in page
    assert "Buy now." not in page  # headers only


# --- release and delete ----------------------------------------------------------------------


def test_release_delivers_to_the_inbox_with_the_next_uid_and_trains_ham(
    client, admin_a, jane, django_capture_on_commit_callbacks
):
    deliver(jane, b"Subject: earlier\r\n\r\nhi\r\n")  # INBOX UID 1
    item = hold(jane)
    scope = bayes.account_scope(jane.pk)
    _, ham_before = bayes.learned(scope)
    client.force_login(admin_a)
    with django_capture_on_commit_callbacks(execute=True):  # trained once committed
        response = client.post(f"/spam-filter/quarantine/{item.pk}/release/")
    assert response.status_code == 302
    assert response.url == "/spam-filter/quarantine/"
    assert not QuarantinedMessage.objects.exists()
    released = Message.objects.get(principal=jane, subject="Cheap watches")
    assert (released.folder.name, released.uid, released.blob_hash) == (
        "INBOX",
        2,
        item.blob_hash,
    )
    assert bayes.learned(scope)[1] == ham_before + 1
    event = AuditEvent.objects.get(action="spam-filter.quarantine-release")
    assert (event.actor, event.tenant_id, event.object_id) == (
        admin_a,
        jane.tenant_id,
        str(item.pk),
    )
    assert event.changes["uid"] == 2 and event.changes["recipient"] == "jane@example.test"


def test_release_into_a_full_mailbox_keeps_the_item_held(client, admin_a, jane):
    item = hold(jane)
    jane.quota = 10
    jane.save(update_fields=["quota"])
    client.force_login(admin_a)
    response = client.post(f"/spam-filter/quarantine/{item.pk}/release/", follow=True)
    assert "Not done: jane@example.test: the mailbox is full" in response.content.decode()
    assert QuarantinedMessage.objects.filter(pk=item.pk).exists()
    assert not Message.objects.exists()


def test_delete_drops_the_item_and_audits_it(client, admin_a, jane):
    item = hold(jane)
    client.force_login(admin_a)
    response = client.post(f"/spam-filter/quarantine/{item.pk}/delete/")
    assert response.status_code == 302
    assert not QuarantinedMessage.objects.exists()
    assert not Message.objects.exists()
    event = AuditEvent.objects.get(action="spam-filter.quarantine-delete")
    assert (event.actor, event.object_type, event.interface) == (
        admin_a,
        "quarantined-message",
        "html",
    )


def test_bulk_release_asks_first_then_releases_the_ticked(client, admin_a, jane):
    items = [hold(jane, f"Offer {n}") for n in range(3)]
    ticked = [items[0].pk, items[2].pk]
    client.force_login(admin_a)
    response = client.post("/spam-filter/quarantine/bulk/", {"action": "release", "ids": ticked})
    assert response.status_code == 200
    page = response.content.decode()
    assert "Release 2 quarantined messages?" in page
    assert QuarantinedMessage.objects.count() == 3  # nothing done before the confirmation
    response = client.post(
        "/spam-filter/quarantine/bulk/",
        {"action": "release", "ids": ticked, "confirm": "yes"},
        follow=True,
    )
    assert "Released 2 message(s)." in response.content.decode()
    assert list(QuarantinedMessage.objects.values_list("pk", flat=True)) == [items[1].pk]
    assert set(Message.objects.filter(folder__name="INBOX").values_list("subject", flat=True)) == {
        "Offer 0",
        "Offer 2",
    }
    assert AuditEvent.objects.filter(action="spam-filter.quarantine-release").count() == 2


def test_bulk_delete_of_all_matching_keeps_what_the_filter_leaves_out(client, admin_a, jane):
    hold(jane, "From spam", sender="x@spam.test")
    hold(jane, "From spam too", sender="y@spam.test")
    kept = hold(jane, "From a friend", sender="friend@ok.test")
    client.force_login(admin_a)
    data = {"action": "delete", "scope": "all", "sender": "spam.test"}
    response = client.post("/spam-filter/quarantine/bulk/", data)
    assert "Delete 2 quarantined messages?" in response.content.decode()
    response = client.post("/spam-filter/quarantine/bulk/", {**data, "confirm": "yes"})
    assert response.status_code == 302
    assert response.url == "/spam-filter/quarantine/?sender=spam.test"
    assert list(QuarantinedMessage.objects.all()) == [kept]
    assert AuditEvent.objects.filter(action="spam-filter.quarantine-delete").count() == 2


def test_another_tenants_admin_gets_404_and_changes_nothing(client, admin_b, jane):
    item = hold(jane)
    client.force_login(admin_b)
    assert client.get(f"/spam-filter/quarantine/{item.pk}/").status_code == 404
    assert client.post(f"/spam-filter/quarantine/{item.pk}/release/").status_code == 404
    assert client.post(f"/spam-filter/quarantine/{item.pk}/delete/").status_code == 404
    response = client.post(
        "/spam-filter/quarantine/bulk/", {"action": "delete", "ids": [item.pk], "confirm": "yes"}
    )
    assert response.status_code == 302
    assert "Cheap watches" not in client.get("/spam-filter/quarantine/").content.decode()
    assert QuarantinedMessage.objects.filter(pk=item.pk).exists()
    assert not Message.objects.exists()


# --- who may read and act: the quarantine's own permissions ---------------------------------


def _holder(make_principal, tenant, name: str, permissions: list[str]):
    """An account in `tenant` whose only role is a custom one granting `permissions`."""
    role = Principal.objects.create(
        name=f"{name}-role", type=PrincipalType.ROLE, tenant=tenant, enabled_permissions=permissions
    )
    account = make_principal(name=name, tenant=tenant, roles=())
    account.roles.add(role)
    return account


def test_the_builtin_admin_roles_hold_the_quarantine_permissions_and_users_their_own():
    quarantine_perms = {"quarantine-list", "quarantine-release", "quarantine-delete"}
    assert quarantine_perms <= BUILTIN_ROLES["admin"]
    assert quarantine_perms <= BUILTIN_ROLES["tenant-admin"]
    assert not quarantine_perms & BUILTIN_ROLES["user"]
    assert "manage-own-quarantine" in BUILTIN_ROLES["user"]


def test_a_principal_get_role_may_not_read_or_act_on_held_mail(
    client, api_client_for, make_principal, tenant_a, jane
):
    """A helpdesk role that may view (even edit) principals reads nobody's held mail:
    every quarantine page and API method is 403 naming the permission it lacks."""
    item = hold(jane)
    helpdesk = _holder(
        make_principal, tenant_a, "helpdesk", ["dashboard", "principal-get", "principal-update"]
    )
    client.force_login(helpdesk)
    for url in ("/spam-filter/quarantine/", f"/spam-filter/quarantine/{item.pk}/"):
        response = client.get(url)
        assert response.status_code == 403
        assert "You do not have the permission &#x27;quarantine-list&#x27;" in (
            response.content.decode()
        )
    assert client.post(f"/spam-filter/quarantine/{item.pk}/release/").status_code == 403
    assert client.post(f"/spam-filter/quarantine/{item.pk}/delete/").status_code == 403
    response = client.post(
        "/spam-filter/quarantine/bulk/", {"action": "delete", "ids": [item.pk], "confirm": "yes"}
    )
    assert response.status_code == 403
    assert "Quarantine" not in client.get("/").content.decode()
    api = api_client_for(helpdesk)
    for method, url, needed in [
        ("get", "/api/spam-filter/quarantine", "quarantine-list"),
        ("get", f"/api/spam-filter/quarantine/{item.pk}", "quarantine-list"),
        ("delete", f"/api/spam-filter/quarantine/{item.pk}", "quarantine-delete"),
        ("post", f"/api/spam-filter/quarantine/{item.pk}/release", "quarantine-release"),
        ("post", "/api/spam-filter/quarantine/release", "quarantine-release"),
        ("post", "/api/spam-filter/quarantine/delete", "quarantine-delete"),
    ]:
        response = getattr(api, method)(url, {"ids": [item.pk]}, format="json")
        assert response.status_code == 403, url
        assert response.json()["detail"] == (
            f"You do not have the permission '{needed}' needed for this."
        )
    assert QuarantinedMessage.objects.filter(pk=item.pk).exists()
    assert not Message.objects.exists()


def test_quarantine_list_alone_reads_but_may_not_act(client, make_principal, tenant_a, jane):
    item = hold(jane)
    reader = _holder(make_principal, tenant_a, "reader", ["dashboard", "quarantine-list"])
    client.force_login(reader)
    page = client.get("/spam-filter/quarantine/").content.decode()
    assert "Cheap watches" in page and 'id="bulk-release"' not in page
    page = client.get(f"/spam-filter/quarantine/{item.pk}/").content.decode()
    assert "Cheap watches" in page and 'id="release"' not in page
    response = client.post(f"/spam-filter/quarantine/{item.pk}/release/")
    assert response.status_code == 403
    assert "quarantine-release" in response.content.decode()
    response = client.post("/spam-filter/quarantine/bulk/", {"action": "delete", "ids": [item.pk]})
    assert response.status_code == 403
    assert "quarantine-delete" in response.content.decode()
    assert QuarantinedMessage.objects.filter(pk=item.pk).exists()


def test_release_alone_may_release_but_not_delete(api_client_for, make_principal, tenant_a, jane):
    first, second = hold(jane, "First"), hold(jane, "Second")
    releaser = _holder(make_principal, tenant_a, "releaser", ["quarantine-release"])
    api = api_client_for(releaser)
    assert api.get("/api/spam-filter/quarantine").status_code == 403
    response = api.post(f"/api/spam-filter/quarantine/{first.pk}/release")
    assert response.json() == {"data": {"done": 1, "failed": []}}
    assert api.delete(f"/api/spam-filter/quarantine/{second.pk}").status_code == 403
    assert list(QuarantinedMessage.objects.all()) == [second]


def test_a_plain_user_sees_and_acts_on_their_own_mailbox_quarantine_only(
    client, api_client_for, mailbox, tenant_a, jane
):
    """The built-in user role: jane's own mailbox quarantine, never joe's, nor the domain
    quarantine her copies go to when her settings say so."""
    joe = mailbox("joe", tenant_a)
    mine, also_mine = hold(jane, "Mine"), hold(jane, "Also mine")
    joes = hold(joe, "For Joe")
    MailboxSpamSetting.objects.create(
        mailbox=jane, tenant_id=jane.tenant_id, send_to_domain_quarantine=True
    )
    domains = hold(jane, "Domain held")
    assert domains.kind == QuarantinedMessage.DOMAIN
    client.force_login(jane)
    assert "Quarantine" in client.get("/").content.decode()
    page = client.get("/spam-filter/quarantine/").content.decode()
    assert "Mine" in page and "Also mine" in page
    assert "For Joe" not in page and "Domain held" not in page
    assert "held back from your mailbox" in page and 'id="bulk-release"' in page
    for other in (joes, domains):
        assert client.get(f"/spam-filter/quarantine/{other.pk}/").status_code == 404
        assert client.post(f"/spam-filter/quarantine/{other.pk}/release/").status_code == 404
        assert client.post(f"/spam-filter/quarantine/{other.pk}/delete/").status_code == 404
    assert 'id="release"' in client.get(f"/spam-filter/quarantine/{mine.pk}/").content.decode()
    response = client.post(f"/spam-filter/quarantine/{mine.pk}/release/")
    assert response.status_code == 302
    assert Message.objects.get(principal=jane).subject == "Mine"
    # "All matching" deletes her own and leaves the others' alone
    response = client.post(
        "/spam-filter/quarantine/bulk/", {"action": "delete", "scope": "all", "confirm": "yes"}
    )
    assert response.status_code == 302
    assert set(QuarantinedMessage.objects.all()) == {joes, domains}
    api = api_client_for(jane)
    assert api.get("/api/spam-filter/quarantine").json()["data"]["total"] == 0
    assert api.get(f"/api/spam-filter/quarantine/{joes.pk}").status_code == 404
    assert api.post(f"/api/spam-filter/quarantine/{joes.pk}/release").status_code == 404
    response = api.post(
        "/api/spam-filter/quarantine/delete", {"ids": [joes.pk, domains.pk]}, format="json"
    )
    assert response.json() == {"data": {"done": 0, "failed": []}}
    assert set(QuarantinedMessage.objects.all()) == {joes, domains}
    assert AuditEvent.objects.filter(
        action="spam-filter.quarantine-delete", object_id=str(also_mine.pk)
    ).exists()


def test_an_account_without_any_quarantine_permission_gets_403(
    client, make_principal, tenant_a, jane
):
    item = hold(jane)
    nobody = _holder(make_principal, tenant_a, "nobody", ["dashboard"])
    client.force_login(nobody)
    assert client.get("/spam-filter/quarantine/").status_code == 403
    assert client.post(f"/spam-filter/quarantine/{item.pk}/delete/").status_code == 403


def test_a_superadmin_sees_every_tenant(client, superadmin, jane, bob):
    hold(jane, "For Jane")
    hold(bob, "For Bob")
    client.force_login(superadmin)
    page = client.get("/spam-filter/quarantine/").content.decode()
    assert "For Jane" in page and "For Bob" in page and "tenant-b" in page


# --- the API -------------------------------------------------------------------------------


def test_the_api_lists_releases_and_deletes(api_a, jane):
    first = hold(jane, "First")
    second = hold(jane, "Second")
    third = hold(jane, "Third")
    response = api_a.get("/api/spam-filter/quarantine", {"limit": 2})
    assert response.status_code == 200
    body = response.json()["data"]
    assert body["total"] == 3
    assert [i["subject"] for i in body["items"]] == ["Third", "Second"]
    assert body["items"][0]["tags"] == {"MISSING_MID": 2.5, "BAYES_SPAM": 5.1}
    response = api_a.post(f"/api/spam-filter/quarantine/{first.pk}/release")
    assert response.json() == {"data": {"done": 1, "failed": []}}
    assert Message.objects.get(principal=jane).subject == "First"
    response = api_a.post(
        "/api/spam-filter/quarantine/delete", {"ids": [second.pk, third.pk]}, format="json"
    )
    assert response.json() == {"data": {"done": 2, "failed": []}}
    assert not QuarantinedMessage.objects.exists()


def test_the_api_filters_an_idn_mailbox_or_domain_in_either_form(api_a, mailbox, tenant_a):
    """Items hold addresses as stored (punycode): a filter typed in Unicode found none."""
    hold(mailbox("jane", tenant_a, "xn--bcher-kva.example"), "Für Jane")
    hold(mailbox("joe", tenant_a, "example.org"), "For Joe")
    for query in (
        "mailbox=Jane@Bücher.example",
        "mailbox=jane@xn--bcher-kva.example",
        "domain=BÜCHER.example.",
        "domain=xn--bcher-kva.example",
    ):
        response = api_a.get(f"/api/spam-filter/quarantine?{query}")
        assert response.status_code == 200, response.content
        assert [i["subject"] for i in response.json()["data"]["items"]] == ["Für Jane"], query


def test_the_api_refuses_bad_input_and_hides_other_tenants(api_a, api_b, jane):
    item = hold(jane)
    response = api_a.get("/api/spam-filter/quarantine", {"kind": "folder"})
    assert response.status_code == 400
    assert response.json()["detail"] == "Invalid value for field kind: must be mailbox or domain."
    response = api_a.get("/api/spam-filter/quarantine", {"to": ""})
    assert response.status_code == 400
    assert response.json()["detail"] == "Invalid value for field to: '' is not a date or date-time."
    response = api_a.post("/api/spam-filter/quarantine/release", {"ids": []}, format="json")
    assert response.status_code == 400
    assert api_b.get(f"/api/spam-filter/quarantine/{item.pk}").status_code == 404
    assert api_b.post(f"/api/spam-filter/quarantine/{item.pk}/release").status_code == 404
    assert api_b.delete(f"/api/spam-filter/quarantine/{item.pk}").status_code == 404
    response = api_b.post("/api/spam-filter/quarantine/delete", {"ids": [item.pk]}, format="json")
    assert response.json() == {"data": {"done": 0, "failed": []}}
    assert api_b.get("/api/spam-filter/quarantine").json()["data"]["total"] == 0
    assert QuarantinedMessage.objects.filter(pk=item.pk).exists()


# --- digest and purge (runs on the task base) ------------------------------------------------


def _run(task, task_name: str, django_capture_on_commit_callbacks) -> TaskRun:
    with django_capture_on_commit_callbacks(execute=False):
        runs = quarantine.quarantine_runs_start()
    [run] = [r for r in runs if r.task_name == task_name]
    task(str(run.pk))
    run.refresh_from_db()
    assert run.state == TaskRun.State.SUCCESS, run.message
    return run


def test_the_digest_reaches_each_owners_inbox_naming_the_new_items(
    jane, mailbox, tenant_a, django_capture_on_commit_callbacks
):
    boss = mailbox("boss", tenant_a)
    joe = mailbox("joe", tenant_a)
    MailboxSpamSetting.objects.create(
        mailbox=joe,
        tenant_id=tenant_a.pk,
        send_to_domain_quarantine=True,
        quarantine_owner="boss@example.test",
    )
    for_jane = hold(jane, "Cheap watches")
    for_joe = hold(joe, "Lottery win")
    assert (for_joe.kind, for_joe.owner) == ("domain", "boss@example.test")
    run = _run(quarantine_digest_task, quarantine.DIGEST_TASK, django_capture_on_commit_callbacks)
    assert run.message == "2 digest(s) for 2 item(s): 2 delivered, 0 queued, 0 undeliverable."

    [to_jane] = Message.objects.filter(principal=jane, folder__name="INBOX")
    text = blobs.read(to_jane.blob_hash).decode()
    assert to_jane.subject == "Quarantine digest: 1 new message"
    assert f"#{for_jane.pk} " in text and "Subject: Cheap watches" in text
    assert "Lottery win" not in text
    [to_boss] = Message.objects.filter(principal=boss, folder__name="INBOX")
    text = blobs.read(to_boss.blob_hash).decode()
    assert "Subject: Lottery win" in text and "To:      joe@example.test" in text
    assert not Message.objects.filter(principal=joe).exists()  # held, not delivered

    hold(jane, "Second offer")  # the next digest names only what is new
    TaskRun.objects.all().delete()
    _run(quarantine_digest_task, quarantine.DIGEST_TASK, django_capture_on_commit_callbacks)
    latest = Message.objects.filter(principal=jane).order_by("-uid").first()
    text = blobs.read(latest.blob_hash).decode()
    assert "Second offer" in text and "Cheap watches" not in text
    assert not Message.objects.filter(principal=boss).exclude(pk=to_boss.pk).exists()


def test_each_digest_item_links_to_its_quarantine_page(
    jane, settings, client, admin_a, django_capture_on_commit_callbacks
):
    settings.MAILADMIN_CONSOLE_URL = "https://mail.example.test"
    item = hold(jane, "Cheap watches")
    _run(quarantine_digest_task, quarantine.DIGEST_TASK, django_capture_on_commit_callbacks)
    [digest] = Message.objects.filter(principal=jane, folder__name="INBOX")
    text = blobs.read(digest.blob_hash).decode()
    link = f"https://mail.example.test/spam-filter/quarantine/{item.pk}/"
    assert f"  Open:    {link}\r\n" in text
    assert "Quarantine: https://mail.example.test/spam-filter/quarantine/\r\n" in text
    # The link leads to the item's page in the console.
    client.force_login(admin_a)
    response = client.get(link.removeprefix(settings.MAILADMIN_CONSOLE_URL))
    assert response.status_code == 200
    assert "Cheap watches" in response.content.decode()


def test_a_remote_owners_digest_goes_to_the_outbound_queue(
    jane, django_capture_on_commit_callbacks
):
    MailboxSpamSetting.objects.create(
        mailbox=jane,
        tenant_id=jane.tenant_id,
        send_to_domain_quarantine=True,
        quarantine_owner="it@provider.test",
    )
    hold(jane)
    run = _run(quarantine_digest_task, quarantine.DIGEST_TASK, django_capture_on_commit_callbacks)
    assert "1 queued" in run.message
    [queued] = QueuedMessage.objects.all()
    assert queued.return_path == ""
    assert list(queued.domains.values_list("recipients__address", flat=True)) == [
        "it@provider.test"
    ]
    assert b"Cheap watches" in blobs.read(queued.blob_hash)


def test_two_tenants_naming_one_owner_get_a_digest_each_in_their_own_queue(
    jane, bob, tenant_a, tenant_b, api_client_for, admin_b, django_capture_on_commit_callbacks
):
    """Tenant B may name any owner, tenant A's too: a digest never carries one tenant's
    items under another's name (a queued digest is its tenant's, raw bytes and all)."""
    for mailbox in (bob, jane):  # B's item is held first, so a shared digest was B's
        MailboxSpamSetting.objects.create(
            mailbox=mailbox,
            tenant_id=mailbox.tenant_id,
            send_to_domain_quarantine=True,
            quarantine_owner="it@provider.test",
        )
    hold(bob, "Bob's offer")
    hold(jane, "Jane's secret deal")
    run = _run(quarantine_digest_task, quarantine.DIGEST_TASK, django_capture_on_commit_callbacks)
    assert run.message == "2 digest(s) for 2 item(s): 0 delivered, 2 queued, 0 undeliverable."
    digests = {q.tenant_id: blobs.read(q.blob_hash) for q in QueuedMessage.objects.all()}
    assert set(digests) == {tenant_a.pk, tenant_b.pk}
    assert b"Bob's offer" in digests[tenant_b.pk] and b"Jane" not in digests[tenant_b.pk]
    assert b"Jane's secret deal" in digests[tenant_a.pk] and b"Bob" not in digests[tenant_a.pk]
    # What tenant B's admin reads of its queue: nothing of tenant A's.
    api_b = api_client_for(admin_b)
    [item] = api_b.get("/api/queue/messages").json()["data"]["items"]
    assert item["blob_hash"] == QueuedMessage.objects.get(tenant=tenant_b).blob_hash


def test_the_purge_removes_old_items_and_their_blob_refs(
    jane, settings, django_capture_on_commit_callbacks
):
    settings.MAILADMIN_QUARANTINE_RETENTION_DAYS = 30
    old = hold(jane, "Old offer", age_days=31)
    young = hold(jane, "New offer", age_days=29)
    run = _run(quarantine_purge_task, quarantine.PURGE_TASK, django_capture_on_commit_callbacks)
    assert run.message == "Deleted 1 quarantined message(s)."
    assert list(QuarantinedMessage.objects.all()) == [young]
    assert not QuarantinedMessage.objects.filter(blob_hash=old.blob_hash).exists()
    event = AuditEvent.objects.get(action="spam-filter.quarantine-purge")
    assert (event.actor_name, event.interface, event.changes["deleted"]) == ("system", "task", 1)


def test_retention_zero_keeps_everything(jane, settings):
    settings.MAILADMIN_QUARANTINE_RETENTION_DAYS = 0
    hold(jane, age_days=400)
    assert quarantine.quarantine_purge() == quarantine.PurgeOutcome(0, True)
    assert QuarantinedMessage.objects.count() == 1


def test_beat_starts_one_purge_and_one_digest_a_day(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as wakeups:
        first = quarantine_due_task()
        again = quarantine_due_task()
    assert first == again  # the day's runs, not twins
    runs = TaskRun.objects.filter(pk__in=first)
    assert {r.task_name for r in runs} == {quarantine.PURGE_TASK, quarantine.DIGEST_TASK}
    assert {r.actor_id for r in runs} == {None}
    assert len(wakeups) == 2


def test_the_navigation_marks_quarantine_as_the_current_page(client, admin_a):
    client.force_login(admin_a)
    page = client.get("/spam-filter/quarantine/").content.decode()
    nav = page[page.index('aria-label="Main"') :]
    nav = nav[: nav.index("</nav>")]
    assert nav.count('aria-current="page"') == 1
    current = nav[: nav.index('aria-current="page"')].rsplit("<a", 1)[1]
    assert 'href="/spam-filter/quarantine/"' in current


def test_the_admin_site_shows_items_read_only(client, superadmin, jane):
    item = hold(jane)
    client.force_login(superadmin)
    base = "/admin/spamfilter/quarantinedmessage/"
    page = client.get(base, {"q": "jane@example.test"})
    assert page.status_code == 200 and "Cheap watches" in page.content.decode()
    assert client.get(f"{base}{item.pk}/change/").status_code == 200
    assert client.post(f"{base}{item.pk}/delete/", {"post": "yes"}).status_code == 403
    assert QuarantinedMessage.objects.filter(pk=item.pk).exists()


def test_an_api_key_reaches_its_owners_own_quarantine_only(anon_api, admin_a, mailbox, jane):
    from apps.accounts.auth.api_keys import api_key_create

    joe = mailbox("joe", jane.tenant)
    hold(jane, "Mine")
    hold(joe, "For Joe")
    jane.enabled_permissions = ["api-key-create"]
    jane.save(update_fields=["enabled_permissions"])
    _, secret = api_key_create(actor=jane, name="jane-key", permissions=["manage-own-quarantine"])
    anon_api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    items = anon_api.get("/api/spam-filter/quarantine").json()["data"]["items"]
    assert [i["subject"] for i in items] == ["Mine"]
    # The tenant admin's key narrowed to its own quarantine does not see the tenant's.
    _, secret = api_key_create(
        actor=admin_a, name="admin-key", permissions=["manage-own-quarantine"]
    )
    anon_api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert anon_api.get("/api/spam-filter/quarantine").json()["data"]["total"] == 0
    _, secret = api_key_create(actor=admin_a, name="admin-all", permissions=["quarantine-list"])
    anon_api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert anon_api.get("/api/spam-filter/quarantine").json()["data"]["total"] == 2


def test_an_items_buttons_are_those_the_reader_may_use_on_it(
    client, make_principal, tenant_a, jane
):
    """quarantine-list reads the tenant's items; manage-own-quarantine acts on its own only."""
    janes = hold(jane, "For Jane")
    reader = _holder(
        make_principal,
        tenant_a,
        "reader",
        ["dashboard", "quarantine-list", "manage-own-quarantine"],
    )
    reader.emails.create(address="reader@example.test")
    [own] = quarantine.quarantine_store(
        mailboxes=[reader], data=_message("For reader"), sender="x@junk.test", score=9.0,
        tags={}, reasons=[],
    )  # fmt: skip
    client.force_login(reader)
    page = client.get(f"/spam-filter/quarantine/{janes.pk}/").content.decode()
    assert "For Jane" in page and 'id="release"' not in page and 'id="delete"' not in page
    assert client.post(f"/spam-filter/quarantine/{janes.pk}/release/").status_code == 404
    page = client.get(f"/spam-filter/quarantine/{own.pk}/").content.decode()
    assert 'id="release"' in page and 'id="delete"' in page
