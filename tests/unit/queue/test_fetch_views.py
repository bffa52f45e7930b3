"""The fetch job pages: the list, the New form (422 with the service's message beside
its field), the job page (save, Validate against a real loopback IMAP server, Fetch now,
Delete), the monitoring list with delete; tenant isolation and permissions."""

from __future__ import annotations

import uuid

import pytest

from apps.queue import fetch_services
from apps.queue.fetch_services import FetchValues
from apps.queue.models import FetchEntry, FetchJob
from mailadmin.core.models import TaskRun
from tests.support.mail_servers import BAD_LOGIN_IMAP

pytestmark = pytest.mark.django_db

FORM = {
    "mailbox": "jane@example.test",
    "protocol": "imap",
    "host": "127.0.0.1",
    "security": "none",
    "port": "1143",
    "username": "remote-user",
    "password": "remote-secret",
    "folders": "INBOX\nArchive",
    "active": "on",
    "interval_minutes": "15",
}


@pytest.fixture
def job(admin_a, mailboxes):
    return fetch_services.fetch_job_create(
        actor=admin_a,
        values=FetchValues(mailbox="jane@example.test", protocol="imap", host="127.0.0.1",
                           port=1143, security="none", username="remote-user",
                           password="remote-secret"),
    )  # fmt: skip


def test_the_new_form_creates_a_job_and_goes_to_its_page(client, admin_a, mailboxes):
    client.force_login(admin_a)
    assert client.get("/queue/fetch/new/").status_code == 200
    response = client.post("/queue/fetch/new/", FORM)
    job = FetchJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/queue/fetch/{job.uuid}/"
    assert (job.folders, job.password, job.port) == (["INBOX", "Archive"], "remote-secret", 1143)
    page = client.get(f"/queue/fetch/{job.uuid}/").content.decode()
    assert "remote-secret" not in page and "jane@example.test" in page
    # the settings form shows the job's values
    assert 'name="host" value="127.0.0.1"' in page and 'name="port" value="1143"' in page
    assert "INBOX\nArchive</textarea>" in page


def test_the_new_form_answers_422_with_the_message_beside_the_field(client, admin_a, mailboxes):
    client.force_login(admin_a)
    response = client.post(
        "/queue/fetch/new/", {**FORM, "host": "imap.remote.test"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 422
    body = response.content.decode()
    assert 'id="field-security"' in body
    assert "Plain-text connections are only allowed to loopback hosts" in body
    response = client.post("/queue/fetch/new/", {**FORM, "mailbox": "ghost@example.test"})
    assert response.status_code == 422
    assert "No mailbox here has the address ghost@example.test." in response.content.decode()
    assert not FetchJob.objects.exists()


def test_saving_keeps_the_password_when_left_empty(client, admin_a, job):
    client.force_login(admin_a)
    response = client.post(
        f"/queue/fetch/{job.uuid}/", {**FORM, "password": "", "interval_minutes": "30"}
    )
    assert response.status_code == 302
    job.refresh_from_db()
    assert (job.interval_minutes, job.password) == (30, "remote-secret")


def test_validate_shows_the_servers_error_in_place(client, admin_a, job, imap, remote):
    FetchJob.objects.filter(pk=job.pk).update(port=imap.port)
    client.force_login(admin_a)
    response = client.post(f"/queue/fetch/{job.uuid}/validate/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert (
        f"Logged in to 127.0.0.1:{imap.port} over IMAP; 1 folder(s)." in response.content.decode()
    )
    remote.password = "changed"
    response = client.post(f"/queue/fetch/{job.uuid}/validate/", HTTP_HX_REQUEST="true")
    assert f"Login failed: {BAD_LOGIN_IMAP}" in response.content.decode()


def test_fetch_now_shows_the_runs_progress(
    client, admin_a, job, django_capture_on_commit_callbacks
):
    client.force_login(admin_a)
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(f"/queue/fetch/{job.uuid}/run/", HTTP_HX_REQUEST="true")
    run = TaskRun.objects.get()
    assert response.status_code == 200 and f'id="task-{run.id}"' in response.content.decode()


def test_the_monitoring_list_filters_and_deletes(client, admin_a, job):
    stored = FetchEntry.objects.create(job=job, tenant=job.tenant, status="success",
                                       subject="Kept", reason="Stored in INBOX.")  # fmt: skip
    failed = FetchEntry.objects.create(job=job, tenant=job.tenant, status="failed",
                                       subject="Broken", reason="550 5.7.1 spam")  # fmt: skip
    client.force_login(admin_a)
    body = client.get("/queue/fetch/monitoring/?status=failed").content.decode()
    assert "Broken" in body and "Kept" not in body
    response = client.post(f"/queue/fetch/monitoring/{failed.pk}/delete/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert list(FetchEntry.objects.all()) == [stored]


def test_another_tenants_admin_gets_404(client, admin_b, job):
    entry = FetchEntry.objects.create(job=job, tenant=job.tenant, status="failed", subject="x")
    client.force_login(admin_b)
    assert "jane@example.test" not in client.get("/queue/fetch/").content.decode()
    assert client.get(f"/queue/fetch/{job.uuid}/").status_code == 404
    assert client.post(f"/queue/fetch/{job.uuid}/", FORM).status_code == 404
    assert client.post(f"/queue/fetch/{job.uuid}/validate/").status_code == 404
    assert client.post(f"/queue/fetch/{job.uuid}/run/").status_code == 404
    assert client.post(f"/queue/fetch/{job.uuid}/delete/").status_code == 404
    assert client.get(f"/queue/fetch/monitoring/?job={job.uuid}").status_code == 404
    assert client.post(f"/queue/fetch/monitoring/{entry.pk}/delete/").status_code == 404
    assert FetchJob.objects.filter(pk=job.pk).exists() and FetchEntry.objects.exists()


def test_an_ordinary_user_is_refused(client, user_a, job):
    client.force_login(user_a)
    assert client.get("/queue/fetch/").status_code == 403
    assert client.get(f"/queue/fetch/{job.uuid}/").status_code == 403


def test_delete_removes_the_job(client, admin_a, job):
    client.force_login(admin_a)
    response = client.post(f"/queue/fetch/{job.uuid}/delete/")
    assert response.status_code == 302 and response["Location"] == "/queue/fetch/"
    assert not FetchJob.objects.exists()


def test_the_list_page_shows_the_last_error(client, admin_a, job):
    FetchJob.objects.filter(pk=job.pk).update(last_status="error", last_error="Login failed: no")
    client.force_login(admin_a)
    body = client.get("/queue/fetch/").content.decode()
    assert "Login failed: no" in body and f"/queue/fetch/{job.uuid}/" in body


def test_the_admin_shows_jobs_without_the_password(client, superadmin, job):
    client.force_login(superadmin)
    for url in ("/admin/queue/fetchjob/", f"/admin/queue/fetchjob/{job.pk}/change/"):
        response = client.get(url)
        assert response.status_code == 200, url
        page = response.content.decode()
        assert "remote-secret" not in page and "gAAAAA" not in page


def test_the_lists_cost_the_same_with_many_jobs(
    client, admin_a, job, django_assert_max_num_queries
):
    for n in range(30):
        copy = FetchJob.objects.get(pk=job.pk)
        copy.pk, copy.uuid = None, uuid.uuid4()
        copy.save()
        FetchEntry.objects.create(job=copy, tenant=job.tenant, status="failed", subject=f"s{n}")
    client.force_login(admin_a)
    client.get("/queue/fetch/")  # the session's first use
    with django_assert_max_num_queries(8):
        assert client.get("/queue/fetch/").status_code == 200
    with django_assert_max_num_queries(8):
        assert client.get("/queue/fetch/monitoring/").status_code == 200
