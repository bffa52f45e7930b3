"""The Store page (maintenance with live progress) and a mailbox's maintenance: purge,
UID reset, deleted messages and their restore."""

from __future__ import annotations

import pytest
from django.test import Client

from apps.store import maintenance, services
from apps.store.models import DeletedMessage, Folder, Message
from mailadmin.core.models import TaskRun
from tests.unit.store.conftest import message

pytestmark = pytest.mark.django_db


def console(principal) -> Client:
    client = Client()
    client.force_login(principal)
    return client


@pytest.fixture
def jane(make_mailbox):
    return make_mailbox("jane")


@pytest.fixture
def bob(make_mailbox, tenant_b, domain_b):
    return make_mailbox("bob", domain="b.example", tenant=tenant_b)


def test_a_superadmin_sees_every_operation(superadmin):
    page = console(superadmin).get("/store/").content.decode()
    for op in ("purge-accounts", "purge-blob", "purge-data", "purge-in-memory", "reindex"):
        assert f'id="start-{op}"' in page


def test_a_tenant_admin_sees_only_the_tenants_operations(admin_a):
    page = console(admin_a).get("/store/").content.decode()
    assert 'id="start-purge-accounts"' in page and 'id="start-reindex"' in page
    for op in ("purge-blob", "purge-data", "purge-in-memory"):
        assert f'id="start-{op}"' not in page


def test_starting_shows_the_runs_live_progress(superadmin, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        response = console(superadmin).post(
            "/store/maintenance/purge-blob/", HTTP_HX_REQUEST="true"
        )
    run = TaskRun.objects.get()
    assert run.task_name == maintenance.PURGE_BLOB_TASK
    page = response.content.decode()
    assert f'id="task-{run.pk}"' in page and f'hx-get="/tasks/{run.pk}/' in page
    # The page shows it afterwards, still polling.
    assert f'id="task-{run.pk}"' in console(superadmin).get("/store/").content.decode()


def test_a_tenant_admin_may_not_start_a_server_wide_purge(admin_a):
    assert console(admin_a).post("/store/maintenance/purge-blob/").status_code == 403
    assert console(admin_a).post("/store/maintenance/nothing/").status_code == 404
    assert not TaskRun.objects.exists()


def test_a_mailbox_page_offers_its_maintenance(admin_a, jane, django_capture_on_commit_callbacks):
    page = console(admin_a).get(f"/store/mailboxes/{jane.pk}/").content.decode()
    assert 'id="purge-account"' in page and 'id="reset-uids"' in page
    with django_capture_on_commit_callbacks(execute=False):
        response = console(admin_a).post(
            f"/store/mailboxes/{jane.pk}/purge/", HTTP_HX_REQUEST="true"
        )
    assert response.status_code == 200
    assert TaskRun.objects.get().arguments == {"account_id": jane.pk}


def test_it_resets_uids_from_the_mailbox_page(admin_a, jane):
    services.deliver(jane, message())
    before = Folder.objects.get(principal=jane, name="INBOX").uidvalidity
    response = console(admin_a).post(f"/store/mailboxes/{jane.pk}/uids/", follow=True)
    assert "New UIDVALIDITY for 4 folder(s); 1 message(s) renumbered." in response.content.decode()
    assert Folder.objects.get(principal=jane, name="INBOX").uidvalidity != before


def test_it_lists_and_restores_deleted_messages(admin_a, jane):
    services.deliver(jane, message("come back"), flags=["\\Deleted"])
    maintenance.account_purge(jane.pk)
    row = DeletedMessage.objects.get()

    page = console(admin_a).get(f"/store/mailboxes/{jane.pk}/deleted/").content.decode()
    assert "come back" in page and f'value="{row.pk}"' in page

    response = console(admin_a).post(
        f"/store/mailboxes/{jane.pk}/deleted/", {"restore": [str(row.pk)]}, follow=True
    )
    assert "1 message(s) restored." in response.content.decode()
    assert Message.objects.get().subject == "come back"


def test_another_tenants_mailbox_maintenance_is_not_found(admin_a, bob):
    client = console(admin_a)
    assert client.get(f"/store/mailboxes/{bob.pk}/deleted/").status_code == 404
    assert client.post(f"/store/mailboxes/{bob.pk}/deleted/", {"restore": ["1"]}).status_code == 404
    assert client.post(f"/store/mailboxes/{bob.pk}/purge/").status_code == 404
    assert client.post(f"/store/mailboxes/{bob.pk}/uids/").status_code == 404
    assert not TaskRun.objects.exists()
