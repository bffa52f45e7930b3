"""The base console: login gate, dashboard counts, navigation, task progress fragments."""

import json
import uuid

import pytest
from django.contrib import messages
from django.http import HttpResponse
from django.test import RequestFactory

from mailadmin.core.middleware import HtmxMessagesMiddleware
from mailadmin.core.models import TaskRun

pytestmark = pytest.mark.django_db


def test_it_sends_anonymous_visitors_to_the_login_page(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/"
    page = client.get("/login/")
    assert page.status_code == 200
    assert b'id="id_username"' in page.content


def test_it_counts_only_the_tenants_own_principals(client, admin_a, user_a, admin_b):
    client.force_login(admin_a)
    response = client.get("/")
    assert response.status_code == 200
    cards = dict(response.context["cards"])
    assert cards["Accounts"] == 2  # admin-a and user-a, not admin-b
    assert "Tenants" not in cards


def test_it_shows_tenants_to_a_superadmin(client, superadmin, tenant_a, tenant_b):
    client.force_login(superadmin)
    cards = dict(client.get("/").context["cards"])
    assert cards["Tenants"] == 2


def test_it_links_only_to_pages_the_user_may_see(client, user_a, admin_a):
    client.force_login(user_a)
    labels = [item["label"] for item in client.get("/").context["navigation"]]
    assert labels == ["Dashboard", "Spam filter", "Quarantine", "Store"]  # their own
    client.force_login(admin_a)
    labels = [item["label"] for item in client.get("/").context["navigation"]]
    assert "Accounts" in labels and "Settings" not in labels


def test_it_answers_403_naming_the_permission(client, user_a):
    client.force_login(user_a)
    response = client.get("/settings/")
    assert response.status_code == 403
    assert b"settings-list" in response.content


def test_it_says_plainly_what_is_not_built(rf, superadmin):
    """Every section is built now; the placeholder stays for the next one."""
    from django.contrib.sessions.backends.db import SessionStore

    from mailadmin.core.views import not_built

    request = rf.get("/next/")
    request.user, request.session = superadmin, SessionStore()
    response = not_built("Next", "What comes next.", "dashboard")(request)
    assert response.status_code == 200
    assert b"Not built yet." in response.content


def _run(actor, **fields):
    """A run of the actor's tenant (its kind unique: one unfinished run per kind)."""
    return TaskRun.objects.create(
        kind=f"probe:{uuid.uuid4()}",
        title="Probe",
        actor=actor,
        tenant_id=actor.tenant_id,
        **fields,
    )


def test_it_returns_the_fragment_that_keeps_polling_while_running(client, admin_a):
    run = _run(admin_a, state=TaskRun.State.RUNNING, done=1, total=4, message="Database: ok")
    client.force_login(admin_a)
    response = client.get(f"/tasks/{run.id}/", headers={"HX-Request": "true"})
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<div class="task-progress"')
    assert 'hx-trigger="every 1s"' in html
    assert 'value="25"' in html
    assert "1 / 4" in html


def test_it_stops_polling_once_the_run_finished(client, admin_a):
    run = _run(admin_a, state=TaskRun.State.SUCCESS, done=4, total=4, message="All checks passed.")
    client.force_login(admin_a)
    html = client.get(f"/tasks/{run.id}/", headers={"HX-Request": "true"}).content.decode()
    assert "hx-trigger" not in html
    assert 'data-state="success"' in html


def test_it_hides_another_tenants_task(client, admin_a, admin_b):
    run = _run(admin_a)
    client.force_login(admin_b)
    assert client.get(f"/tasks/{run.id}/").status_code == 404


def test_it_starts_a_self_check_from_the_page(
    client, superadmin, django_capture_on_commit_callbacks
):
    client.force_login(superadmin)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post("/telemetry/self-check/", headers={"HX-Request": "true"})
    assert response.status_code == 200
    run = TaskRun.objects.get()
    assert f'id="task-{run.id}"' in response.content.decode()
    assert len(callbacks) == 1


def test_it_refuses_to_start_a_task_without_permission(client, user_a):
    client.force_login(user_a)
    response = client.post("/telemetry/self-check/")
    assert response.status_code == 403
    assert b"troubleshoot" in response.content
    assert not TaskRun.objects.exists()


def test_it_forwards_messages_to_htmx_as_an_event(rf: RequestFactory, admin_a, client):
    from django.contrib.messages.storage.fallback import FallbackStorage

    def view(request):
        messages.success(request, "Saved.")
        response = HttpResponse("ok")
        response["HX-Trigger"] = "principalsChanged"
        return response

    request = rf.post("/", headers={"HX-Request": "true"})
    request.htmx = True
    request.session = client.session
    request._messages = FallbackStorage(request)
    response = HtmxMessagesMiddleware(view)(request)
    assert json.loads(response["HX-Trigger"]) == {
        "principalsChanged": None,
        "messages": [{"level": "success", "message": "Saved."}],
    }


def test_it_links_the_own_account_pages_from_the_user_menu(client, user_a, admin_a):
    client.force_login(user_a)
    html = client.get("/").content.decode()
    assert 'href="/account/security/"' in html
    assert 'href="/account/app-passwords/"' in html
    assert 'href="/account/api-keys/"' not in html  # a plain user may not hold keys
    client.force_login(admin_a)
    assert 'href="/account/api-keys/"' in client.get("/").content.decode()


def test_it_shows_a_plain_user_only_their_own_runs(client, admin_a, user_a):
    admins = _run(admin_a, actor_name="admin-a")
    own = _run(user_a, actor_name="user-a")
    client.force_login(user_a)
    assert client.get(f"/tasks/{admins.id}/").status_code == 404
    assert client.get(f"/tasks/{own.id}/").status_code == 200
    assert [run.id for run in client.get("/").context["runs"]] == [own.id]


def test_it_lists_runs_people_started_not_the_schedules(client, admin_a):
    own = _run(admin_a, actor_name="admin-a")
    TaskRun.objects.create(kind="dns-check:1", title="Scheduled DNS check", tenant=admin_a.tenant)
    client.force_login(admin_a)
    assert [run.id for run in client.get("/").context["runs"]] == [own.id]
