"""The fetch jobs API (specs/mailbox-fetch-api.txt): configurations by uuid, validation
against a real loopback IMAP server, "Fetch now", monitoring; exact validation messages,
permissions, and tenant isolation (another tenant's job or entry is 404)."""

from __future__ import annotations

import pytest

from apps.accounts.models import PrincipalEmail
from apps.queue.models import FetchEntry, FetchJob
from mailadmin.core.models import AuditEvent, TaskRun
from tests.support.mail_servers import BAD_LOGIN_IMAP

pytestmark = pytest.mark.django_db

URL = "/api/fetch/mailboxes"


def body(**changes):
    values = {
        "active": True,
        "mailbox": "jane@example.test",
        "host": "127.0.0.1",
        "type": "imap",
        "port": 1143,
        "useSsl": False,
        "security": "none",
        "username": "remote-user",
        "password": "remote-secret",
        "folders": ["INBOX", "Archive"],
        "deleteMailsOnServer": False,
    }
    values.update(changes)
    return {k: v for k, v in values.items() if v is not ...}


def create(api, **changes) -> dict:
    response = api.post(URL, body(**changes), format="json")
    assert response.status_code == 200, response.json()
    return response.json()["data"]


def test_it_creates_a_configuration_in_the_specs_shape_without_the_password(api_a, mailboxes):
    data = create(api_a)
    job = FetchJob.objects.get()
    assert data == {
        "uuid": str(job.uuid),
        "active": True,
        "mailbox": "jane@example.test",
        "host": "127.0.0.1",
        "type": "imap",
        "port": 1143,
        "useSsl": False,
        "security": "none",
        "username": "remote-user",
        "folders": ["INBOX", "Archive"],
        "deleteMailsOnServer": False,
        "interval": 15,
        "nextRun": job.next_run_at.isoformat(),
        "lastRun": None,
        "lastStatus": "never",
        "lastError": "",
        "lastFetched": 0,
        "lastFailed": 0,
        "createdAt": job.created_at.isoformat(),
    }
    assert job.mailbox == mailboxes["jane"] and job.password == "remote-secret"
    assert api_a.get(f"{URL}/{job.uuid}").json()["data"] == data
    event = AuditEvent.objects.get(action="fetch_job.create")
    assert event.object_id == str(job.uuid) and "remote-secret" not in str(event.changes)


def test_defaults_implicit_tls_and_its_port(api_a, mailboxes):
    data = create(api_a, host="imap.remote.test", useSsl=..., security=..., port=...,
                  folders=...)  # fmt: skip
    assert (data["useSsl"], data["security"], data["port"], data["folders"]) == (
        True, "ssl", 993, ["INBOX"],
    )  # fmt: skip
    pop = create(api_a, host="pop.remote.test", type="pop3", useSsl=False, security=...,
                 port=..., folders=None)  # fmt: skip
    assert (pop["security"], pop["port"], pop["folders"]) == ("starttls", 110, None)


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"mailbox": ...}, "mailbox", "Missing required field: mailbox"),
        ({"password": ...}, "password", "Missing required field: password"),
        ({"type": "smtp"}, "type",
         "Invalid value for field type: 'smtp' is not one of: imap, pop3."),
        ({"host": "not a host"}, "host",
         "Invalid value for field host: 'not a host' is not a host name or IP address."),
        ({"port": 70000}, "port",
         "Invalid value for field port: Ensure this value is less than or equal to 65535."),
        ({"port": "143"}, "port", "Invalid value for field port: A valid integer is required."),
        ({"mailbox": "nobody@example.test"}, "mailbox",
         "No mailbox here has the address nobody@example.test."),
        ({"mailbox": "not-an-address"}, "mailbox",
         "Invalid value for field mailbox: 'not-an-address' is not a valid email address."),
        ({"host": "imap.remote.test"}, "useSsl",
         "Plain-text connections are only allowed to loopback hosts (127.0.0.1, ::1, "
         "localhost): use implicit TLS (useSsl) or STARTTLS."),
        ({"useSsl": True}, "useSsl",
         "useSsl and security disagree: useSsl true with security none"),
        ({"type": "pop3"}, "folders",
         "Invalid value for field folders: POP3 has one mailbox and no folders; folders apply "
         "to IMAP only."),
        ({"folders": ["INBOX", ""]}, "folders",
         "Invalid value for field folders: '' is not a folder name."),
        ({"interval": 0}, "interval",
         "Invalid value for field interval: Ensure this value is greater than or equal to 1."),
        ({"clientId": "x"}, "clientId",
         "Unsupported field: clientId (OAuth client credentials, mail archiving and other "
         "destinations are not offered; mail is delivered into the local mailbox)"),
        ({"extra": 1}, "extra", "Unrecognized field: extra"),
        ({"deleteMailsOnServer": "yes"}, "deleteMailsOnServer",
         "Invalid value for field deleteMailsOnServer: Must be a valid boolean."),
    ],
)  # fmt: skip
def test_bad_input_is_a_400_naming_the_field(api_a, mailboxes, changes, field, message):
    response = api_a.post(URL, body(**changes), format="json")
    assert response.status_code == 400
    problem = response.json()
    assert problem["detail"] == message
    assert problem["errors"] == [{"field": field, "message": message}]
    assert not FetchJob.objects.exists()


def test_an_address_of_another_tenant_is_not_found(api_a, mailboxes, make_principal, tenant_b):
    other = make_principal(name="bob", tenant=tenant_b)
    PrincipalEmail.objects.create(principal=other, address="bob@other.test")
    response = api_a.post(URL, body(mailbox="bob@other.test"), format="json")
    assert response.json()["detail"] == "No mailbox here has the address bob@other.test."


def test_update_changes_only_what_is_given_and_keeps_the_password(api_a, mailboxes):
    data = create(api_a)
    response = api_a.put(f"{URL}/{data['uuid']}", {"active": False, "interval": 60}, format="json")
    assert response.status_code == 200
    updated = response.json()["data"]
    assert (updated["active"], updated["interval"], updated["host"]) == (False, 60, "127.0.0.1")
    assert FetchJob.objects.get().password == "remote-secret"
    patched = api_a.patch(f"{URL}/{data['uuid']}", {"password": "new"}, format="json")
    assert patched.status_code == 200 and "password" not in patched.json()["data"]
    assert FetchJob.objects.get().password == "new"


def test_validate_answers_what_it_found_or_the_servers_error(api_a, mailboxes, imap, remote):
    data = create(api_a, port=imap.port, folders=["INBOX"])
    response = api_a.post(f"{URL}/{data['uuid']}/validate")
    assert response.status_code == 200
    assert response.json()["data"] == {
        "ok": True,
        "message": f"Logged in to 127.0.0.1:{imap.port} over IMAP; 1 folder(s).",
        "folders": ["INBOX"],
        "missingFolders": [],
        "destination": "jane@example.test receives the fetched mail.",
    }
    remote.password = "other"
    failed = api_a.post(f"{URL}/{data['uuid']}/validate").json()["data"]
    assert (failed["ok"], failed["message"]) == (False, f"Login failed: {BAD_LOGIN_IMAP}")


def test_fetch_now_starts_one_run(api_a, mailboxes, django_capture_on_commit_callbacks):
    data = create(api_a)
    with django_capture_on_commit_callbacks(execute=False):
        first = api_a.post(f"{URL}/{data['uuid']}/run")
        second = api_a.post(f"{URL}/{data['uuid']}/run")
    assert first.status_code == 202
    assert first.json()["data"]["taskId"] == second.json()["data"]["taskId"]
    run = TaskRun.objects.get()
    assert run.kind == f"queue.fetch:{data['uuid']}" and run.actor.name == "admin-a"


def entry(job: FetchJob, status: str, subject: str) -> FetchEntry:
    return FetchEntry.objects.create(
        job=job, tenant_id=job.tenant_id, status=status, reason="why", subject=subject
    )


def test_monitoring_lists_failed_and_successful_and_deletes(api_a, mailboxes):
    job = FetchJob.objects.get(uuid=create(api_a)["uuid"])
    ok, bad = entry(job, "success", "fine"), entry(job, "failed", "broken")
    failed = api_a.get("/api/fetch/monitoring/failed").json()["data"]
    assert failed["total"] == 1 and failed["items"][0]["subject"] == "broken"
    assert failed["items"][0]["mailbox"] == str(job.uuid)
    successful = api_a.get(f"/api/fetch/monitoring/successful?mailbox={job.uuid}").json()["data"]
    assert [i["id"] for i in successful["items"]] == [ok.pk]
    assert api_a.delete(f"/api/fetch/monitoring/{bad.pk}").json() == {"data": None}
    assert list(FetchEntry.objects.values_list("pk", flat=True)) == [ok.pk]
    assert api_a.get("/api/fetch/monitoring/failed?page=0").status_code == 400


def test_another_tenants_admin_gets_404_everywhere(api_a, api_b, mailboxes):
    data = create(api_a)
    job = FetchJob.objects.get()
    bad = entry(job, "failed", "secret subject")
    uuid = data["uuid"]
    assert api_b.get(URL).json()["data"]["total"] == 0
    assert api_b.get(f"{URL}/{uuid}").status_code == 404
    assert api_b.put(f"{URL}/{uuid}", {"active": False}, format="json").status_code == 404
    assert api_b.delete(f"{URL}/{uuid}").status_code == 404
    assert api_b.post(f"{URL}/{uuid}/validate").status_code == 404
    assert api_b.post(f"{URL}/{uuid}/run").status_code == 404
    assert api_b.get("/api/fetch/monitoring/failed").json()["data"]["total"] == 0
    assert api_b.get(f"/api/fetch/monitoring/failed?mailbox={uuid}").status_code == 404
    assert api_b.delete(f"/api/fetch/monitoring/{bad.pk}").status_code == 404
    assert FetchJob.objects.get().active and FetchEntry.objects.count() == 1


def test_a_user_without_fetch_permissions_is_refused(api_client_for, user_a, api_a, mailboxes):
    uuid = create(api_a)["uuid"]
    api = api_client_for(user_a)
    response = api.get(URL)
    assert response.status_code == 403
    assert response.json()["detail"] == (
        "You do not have the permission 'mailbox-fetch-list' needed for this."
    )
    assert api.post(URL, body(), format="json").status_code == 403
    assert api.delete(f"{URL}/{uuid}").status_code == 403


def test_delete_removes_the_job_and_its_entries(api_a, mailboxes):
    job = FetchJob.objects.get(uuid=create(api_a)["uuid"])
    entry(job, "success", "x")
    assert api_a.delete(f"{URL}/{job.uuid}").json() == {"data": None}
    assert not FetchJob.objects.exists() and not FetchEntry.objects.exists()
    assert api_a.get(f"{URL}/{job.uuid}").status_code == 404
    assert api_a.get(f"{URL}/not-a-uuid").json()["detail"] == "Fetch job not found"


def test_the_list_apis_cost_the_same_with_many_jobs(
    api_a, mailboxes, django_assert_max_num_queries
):
    for _ in range(30):
        job = FetchJob.objects.get(uuid=create(api_a)["uuid"])
        entry(job, "failed", "x")
    with django_assert_max_num_queries(6):
        assert api_a.get(URL).json()["data"]["total"] == 30
    with django_assert_max_num_queries(6):
        assert api_a.get("/api/fetch/monitoring/failed").json()["data"]["total"] == 30


def test_switching_to_pop3_drops_the_folders_and_takes_its_port(api_a, mailboxes):
    uuid = create(api_a)["uuid"]
    data = api_a.patch(f"{URL}/{uuid}", {"type": "pop3"}, format="json").json()["data"]
    assert (data["type"], data["folders"], data["port"]) == ("pop3", None, 110)
    back = api_a.patch(f"{URL}/{uuid}", {"type": "imap"}, format="json").json()["data"]
    assert (back["folders"], back["port"]) == (["INBOX"], 143)


def test_mailbox_info_lists_each_configurations_state(api_a, api_b, mailboxes):
    uuid = create(api_a)["uuid"]
    FetchJob.objects.filter(uuid=uuid).update(last_status="error", last_error="Login failed: x")
    [info] = api_a.get("/api/fetch/monitoring/info").json()["data"]["items"]
    assert {k: info[k] for k in ("uuid", "mailbox", "running", "lastStatus", "lastError")} == {
        "uuid": uuid,
        "mailbox": "jane@example.test",
        "running": False,
        "lastStatus": "error",
        "lastError": "Login failed: x",
    }
    assert api_b.get("/api/fetch/monitoring/info").json()["data"]["total"] == 0


def test_a_job_moved_to_another_tenant_takes_its_history_along(
    api_root, api_a, mailboxes, make_principal, tenant_b
):
    uuid = create(api_a)["uuid"]
    entry(FetchJob.objects.get(uuid=uuid), "failed", "secret subject")
    bob = make_principal(name="bob", tenant=tenant_b)
    PrincipalEmail.objects.create(principal=bob, address="bob@other.test")
    moved = api_root.patch(f"{URL}/{uuid}", {"mailbox": "bob@other.test"}, format="json")
    assert moved.status_code == 200
    assert api_a.get("/api/fetch/monitoring/failed").json()["data"]["total"] == 0
    assert FetchEntry.objects.get().tenant == tenant_b
