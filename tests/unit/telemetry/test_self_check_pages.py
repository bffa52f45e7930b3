"""The self-check page and API: superadmins only, and their runs listed to no one else."""

import pytest

from apps.telemetry.services import self_check_start
from mailadmin.core.models import TaskRun

pytestmark = pytest.mark.django_db

SUPERADMINS_ONLY = (
    "The self-check is for superadmins only: it shows the database, listener "
    "addresses and resolver of the server."
)


@pytest.fixture
def console(client):
    def login(principal):
        client.force_login(principal)
        return client

    return login


@pytest.fixture
def self_check_run(superadmin, django_capture_on_commit_callbacks) -> TaskRun:
    with django_capture_on_commit_callbacks(execute=False):
        run = self_check_start(actor=superadmin)
    TaskRun.objects.filter(pk=run.pk).update(
        state="success", message="All checks passed.", result={"rows": []}
    )
    return run


def test_it_shows_the_self_check_page_to_a_superadmin(console, superadmin, self_check_run):
    body = console(superadmin).get("/telemetry/self-check/").content.decode()
    assert 'id="start-self-check"' in body
    assert f'id="task-{self_check_run.id}"' in body
    index = console(superadmin).get("/telemetry/").content.decode()
    assert 'href="/telemetry/self-check/"' in index


def test_it_starts_a_self_check_for_a_superadmin(
    console, superadmin, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = console(superadmin).post("/telemetry/self-check/", HTTP_HX_REQUEST="true")
    run = TaskRun.objects.get()
    assert response.status_code == 200
    assert (
        response.content.decode()
        .lstrip()
        .startswith(f'<div class="task-progress" id="task-{run.id}"')
    )
    assert len(callbacks) == 1


def test_it_refuses_the_page_to_a_tenant_admin(console, admin_a, self_check_run):
    client = console(admin_a)
    for response in (client.get("/telemetry/self-check/"), client.post("/telemetry/self-check/")):
        assert response.status_code == 403
        assert SUPERADMINS_ONLY in response.content.decode()
    assert TaskRun.objects.count() == 1
    assert "self-check" not in client.get("/telemetry/").content.decode()


def test_it_refuses_the_api_to_a_tenant_admin(api_a):
    response = api_a.post("/api/telemetry/self-check")
    assert response.status_code == 403
    assert response.json() == {
        "type": "about:blank",
        "status": 403,
        "title": "Forbidden",
        "detail": SUPERADMINS_ONLY,
    }
    assert not TaskRun.objects.exists()


def test_it_starts_through_the_api_for_a_superadmin(api_root, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        response = api_root.post("/api/telemetry/self-check")
    assert response.status_code == 200
    assert response.json() == {"data": str(TaskRun.objects.get().id)}


def test_it_lists_self_check_runs_to_no_tenant(console, api_a, admin_a, api_root, self_check_run):
    assert api_a.get(f"/api/task/{self_check_run.id}").status_code == 404
    assert console(admin_a).get(f"/tasks/{self_check_run.id}/").status_code == 404
    assert "Self-check" not in console(admin_a).get("/").content.decode()
    assert api_root.get(f"/api/task/{self_check_run.id}").json()["data"]["state"] == "success"
