"""A deleted account's Bayes model goes with it, in the database and in Redis: models are
keyed by a scope string ("account:<id>"), so nothing cascades to them, and a model left
behind kept the mail it learned from (and would answer for a later account given the
same id on another database)."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.management import call_command

from apps.accounts.models import Principal
from apps.domains import mailbox_services
from apps.domains.services import domain_delete
from apps.spamfilter import bayes
from apps.spamfilter.message import parse
from apps.spamfilter.models import BayesModel, BayesToken
from apps.spamfilter.tasks import bayes_forget_deleted_run_task, bayes_forget_deleted_task
from mailadmin.core.models import TaskRun
from tests.unit.spamfilter.test_bayes import store  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db

SPAM = parse(b"Subject: buy now\r\n\r\ncheap pills, cheap watches")


def _trained(*accounts: Principal) -> list[str]:
    scopes = [bayes.account_scope(a.pk) for a in accounts]
    for scope in scopes:
        bayes.purge(scope)  # (Redis outlives each test's database, ids come again)
        bayes.learn(SPAM, spam=True, scope=scope)
        assert bayes.learned(scope) == (1, 0)
    return scopes


def _stored(scope: str, backend: str) -> bool:
    if backend == "redis":
        return bool(bayes.store().client.exists(bayes.RedisStore.key(scope)))
    return (
        BayesModel.objects.filter(scope=scope).exists()
        or BayesToken.objects.filter(scope=scope).exists()
    )


def test_deleting_an_account_over_the_api_purges_its_model(
    store,  # noqa: F811
    api_a,
    make_principal,
    tenant_a,
    django_capture_on_commit_callbacks,
):
    gone, kept = make_principal(tenant=tenant_a), make_principal(tenant=tenant_a)
    gone_scope, kept_scope = _trained(gone, kept)
    with django_capture_on_commit_callbacks(execute=True):
        assert api_a.delete(f"/api/principal/{gone.name}").status_code == 200
    assert not Principal.objects.filter(pk=gone.pk).exists()
    assert not _stored(gone_scope, store)
    assert bayes.learned(gone_scope) == (0, 0)
    assert bayes.learned(kept_scope) == (1, 0)  # the tenant's other account keeps its own


def test_deleting_an_account_in_the_console_purges_its_model(
    store,  # noqa: F811
    client,
    admin_a,
    user_a,
    django_capture_on_commit_callbacks,
):
    (scope,) = _trained(user_a)
    client.force_login(admin_a)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/accounts/{user_a.pk}/delete/")
    assert response.status_code == 302, response.content
    assert not _stored(scope, store)


def test_a_bulk_delete_in_the_admin_purges_each_accounts_model(
    store,  # noqa: F811
    client,
    superadmin,
    make_principal,
    tenant_a,
    django_capture_on_commit_callbacks,
):
    accounts = [make_principal(tenant=tenant_a) for _ in range(2)]
    scopes = _trained(*accounts)
    client.force_login(superadmin)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/accounts/principal/",
            {
                "action": "delete_selected",
                "_selected_action": [a.pk for a in accounts],
                "post": "yes",
            },
        )
    assert response.status_code == 302
    assert not Principal.objects.filter(pk__in=[a.pk for a in accounts]).exists()
    assert [_stored(scope, store) for scope in scopes] == [False, False]


def test_a_model_outlives_a_delete_that_was_refused_or_rolled_back(
    store,  # noqa: F811
    api_a,
    admin_a,
    django_capture_on_commit_callbacks,
):
    (scope,) = _trained(admin_a)
    with django_capture_on_commit_callbacks(execute=True):
        assert api_a.delete("/api/principal/admin-a").status_code == 400  # your own account
    assert bayes.learned(scope) == (1, 0)


def test_deleting_a_mailbox_or_its_domain_purges_the_models_of_its_accounts(
    store,  # noqa: F811
    admin_a,
    make_principal,
    tenant_a,
    django_capture_on_commit_callbacks,
):
    domain = make_principal(tenant=tenant_a, roles=(), name="a.example", type="domain", password="")
    values = {"display_name": "Jane Doe", "password": "Secret123!@#", "size": 100}
    jane, john = (
        mailbox_services.mailbox_create(actor=admin_a, domain=domain, name=n, values=values)
        for n in ("jane", "john")
    )
    jane_scope, john_scope = _trained(jane.principal, john.principal)
    with django_capture_on_commit_callbacks(execute=True):
        mailbox_services.mailbox_delete(actor=admin_a, mailbox=jane)
    assert (_stored(jane_scope, store), _stored(john_scope, store)) == (False, True)
    with django_capture_on_commit_callbacks(execute=True):
        domain_delete(actor=admin_a, domain=domain, confirm=True)
    assert not _stored(john_scope, store)


def test_deleting_a_tenant_purges_the_models_of_every_account_in_it(
    store,  # noqa: F811
    api_root,
    make_principal,
    tenant_a,
    tenant_b,
    django_capture_on_commit_callbacks,
):
    ours = [make_principal(tenant=tenant_a) for _ in range(3)]
    (theirs,) = _trained(make_principal(tenant=tenant_b))
    scopes = _trained(*ours)
    with django_capture_on_commit_callbacks(execute=True):
        assert api_root.delete("/api/principal/tenant-a").status_code == 200
    assert [_stored(scope, store) for scope in scopes] == [False] * 3
    assert bayes.learned(theirs) == (1, 0)


def test_a_store_that_fails_after_the_delete_is_logged_and_the_delete_stands(
    api_a, user_a, monkeypatch, caplog, django_capture_on_commit_callbacks
):
    def down(account_ids):
        raise ConnectionError("Redis is down")

    monkeypatch.setattr(bayes, "purge_accounts", down)
    with django_capture_on_commit_callbacks(execute=True):
        assert api_a.delete("/api/principal/user-a").status_code == 200
    assert not Principal.objects.filter(pk=user_a.pk).exists()
    assert "Redis is down" in caplog.text


def test_a_redis_that_is_down_after_the_delete_is_logged_and_the_delete_stands(
    api_a, user_a, settings, caplog, django_capture_on_commit_callbacks
):
    """The same with a real refusal: nothing listens on the port REDIS_URL names."""
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    with django_capture_on_commit_callbacks(execute=True):
        assert api_a.delete("/api/principal/user-a").status_code == 200
    assert not Principal.objects.filter(pk=user_a.pk).exists()
    assert "127.0.0.1:1" in caplog.text


def test_models_of_accounts_that_are_gone_are_forgotten_and_the_others_kept(
    store,  # noqa: F811
    make_principal,
    tenant_a,
    capsys,
):
    """A delete whose purge found the store down, or one made before deletes purged, left
    a model behind: the daily sweep (and its command) forget it."""
    bayes.forget_deleted_accounts()  # what earlier tests left in Redis (it outlives them)
    living = make_principal(tenant=tenant_a)
    gone = make_principal(tenant=tenant_a)
    gone_id = gone.pk
    Principal.objects.filter(pk=gone_id).delete()  # as before deletes purged
    living_scope, gone_scope = (bayes.account_scope(i) for i in (living.pk, gone_id))
    never = bayes.account_scope(gone_id + 10_000)  # an id no principal had here
    for scope in (living_scope, gone_scope, never, bayes.GLOBAL):
        bayes.purge(scope)
        bayes.learn(SPAM, spam=True, scope=scope)
    assert bayes.forget_deleted_accounts(batch=2) == 2  # in pages of two: three account models
    assert [_stored(s, store) for s in (living_scope, gone_scope, never)] == [True, False, False]
    assert bayes.learned(bayes.GLOBAL) == (1, 0)
    bayes.learn(SPAM, spam=True, scope=gone_scope)
    call_command("bayes_forget_deleted")
    assert capsys.readouterr().out == "Purged 1 Bayes model of deleted accounts.\n"
    assert not _stored(gone_scope, store) and _stored(living_scope, store)
    assert settings.CELERY_BEAT_SCHEDULE["spamfilter-bayes-forget-deleted"]["task"] == (
        bayes_forget_deleted_task.name
    )
    bayes.purge(living_scope)
    bayes.purge(bayes.GLOBAL)


def test_beat_sweeps_once_a_day_as_a_run_on_the_task_base(
    store,  # noqa: F811
    make_principal,
    tenant_a,
    django_capture_on_commit_callbacks,
):
    bayes.forget_deleted_accounts()  # what earlier tests left in Redis
    gone = make_principal(tenant=tenant_a)
    scope = bayes.account_scope(gone.pk)
    Principal.objects.filter(pk=gone.pk).delete()
    bayes.learn(SPAM, spam=True, scope=scope)
    with django_capture_on_commit_callbacks(execute=False) as wakeups:
        first, again = bayes_forget_deleted_task(), bayes_forget_deleted_task()
    assert first == again and len(wakeups) == 1  # the day's run, not a twin
    run = TaskRun.objects.get(pk=first)
    assert (run.task_name, run.actor_id) == ("spamfilter.bayes_forget_deleted_run", None)
    bayes_forget_deleted_run_task(first)
    run.refresh_from_db()
    assert run.state == TaskRun.State.SUCCESS, run.message
    assert run.message == "Purged 1 Bayes model(s) of deleted accounts."
    assert not _stored(scope, store)
