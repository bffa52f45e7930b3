"""Releasing a held message: once, to the right INBOX, Bayes ham trained once, and a
release that another request (a second click, a second API client) got to first says so
instead of answering "done 0" with no reason."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from apps.spamfilter import bayes, quarantine
from apps.spamfilter.models import QuarantinedMessage
from apps.store.models import Message
from tests.unit.spamfilter import test_quarantine
from tests.unit.spamfilter.test_quarantine import hold

jane, mailbox = test_quarantine.jane, test_quarantine.mailbox  # its fixtures
GONE = "no longer in the quarantine (released or deleted meanwhile)"


@pytest.mark.django_db(transaction=True)
def test_concurrent_releases_deliver_once_train_once_and_the_others_say_why(
    api_client_for, admin_a, jane
):
    item = hold(jane)
    scope = bayes.account_scope(jane.pk)
    ham_before = bayes.learned(scope)[1]
    answers: list[dict] = []
    start = threading.Barrier(3)

    def release() -> None:
        try:
            api = api_client_for(admin_a)
            start.wait()
            answers.append(api.post(f"/api/spam-filter/quarantine/{item.pk}/release").json())
        finally:
            connection.close()

    threads = [threading.Thread(target=release) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Message.objects.filter(principal=jane).count() == 1
    assert bayes.learned(scope)[1] == ham_before + 1
    done = [a for a in answers if a.get("data", {}).get("done") == 1]
    assert len(done) == 1
    for answer in answers:
        if answer not in done:  # lost the race: 404 if it came late, else the reason
            assert answer.get("status") == 404 or answer["data"] == {
                "done": 0,
                "failed": [f"#{item.pk}: {GONE}"],
            }, answer


@pytest.mark.django_db
def test_a_release_of_an_item_gone_meanwhile_names_it(admin_a, jane, monkeypatch):
    """What the loser of two concurrent releases sees: the item was in reach when its ids
    were read, and gone when its turn came."""
    item = hold(jane)
    items = quarantine.quarantine_visible(admin_a, quarantine.RELEASE).filter(pk=item.pk)
    ids = list(items.values_list("pk", flat=True))
    QuarantinedMessage.objects.filter(pk=item.pk).delete()
    monkeypatch.setattr(quarantine, "_in_reach", lambda *args: ids)
    result = quarantine.quarantine_release(actor=admin_a, items=items)
    assert (result.done, result.failed) == (0, [f"#{item.pk}: {GONE}"])
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_a_release_of_an_item_gone_before_its_reach_was_read_names_it(admin_a, jane):
    """The other window of the race: the item was read (quarantine_get), then released by
    another request before this one looked which items are in reach, so none are."""
    item = hold(jane)
    QuarantinedMessage.objects.filter(pk=item.pk).delete()
    result = quarantine.quarantine_release_item(actor=admin_a, item=item)
    assert (result.done, result.failed) == (0, [f"#{item.pk}: {GONE}"])
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_the_console_sends_a_second_click_back_to_the_list_with_the_reason(
    client, admin_a, jane, monkeypatch
):
    item = hold(jane)
    client.force_login(admin_a)
    real = quarantine.quarantine_release

    def second_click(*, actor, items):  # the first click's release commits in between
        real(actor=actor, items=items)
        return real(actor=actor, items=quarantine.QuarantinedMessage.objects.filter(pk=item.pk))

    monkeypatch.setattr(quarantine, "_in_reach", lambda actor, permission, items: [item.pk])
    monkeypatch.setattr(quarantine, "quarantine_release", second_click)
    response = client.post(f"/spam-filter/quarantine/{item.pk}/release/")
    assert response.status_code == 302
    assert response.url == "/spam-filter/quarantine/"
    page = client.get(response.url).content.decode()
    assert f"#{item.pk}: {GONE}" in page
    assert Message.objects.filter(principal=jane).count() == 1


class _Refused(Exception):
    pass


@pytest.mark.django_db(transaction=True)
def test_a_release_rolled_back_trains_nothing_and_its_retry_trains_once(admin_a, jane, monkeypatch):
    """Bayes lives in Redis, which the database transaction does not undo: a release whose
    transaction rolled back after training had trained ham, and its retry trained it again."""
    from django.db import transaction

    item = hold(jane)
    scope = bayes.account_scope(jane.pk)
    ham_before = bayes.learned(scope)[1]
    items = QuarantinedMessage.objects.filter(pk=item.pk)

    def refuse(*args, **kwargs):
        raise _Refused

    with monkeypatch.context() as patched:
        patched.setattr(quarantine, "_audit", refuse)  # fails after delivery and training
        with pytest.raises(_Refused):
            quarantine.quarantine_release(actor=admin_a, items=items)
    assert QuarantinedMessage.objects.filter(pk=item.pk).exists()
    assert not Message.objects.exists()
    assert bayes.learned(scope)[1] == ham_before

    # a caller's own transaction that rolls back after the release: nothing trained either
    with pytest.raises(_Refused), transaction.atomic():
        assert quarantine.quarantine_release(actor=admin_a, items=items).done == 1
        raise _Refused
    assert QuarantinedMessage.objects.filter(pk=item.pk).exists()
    assert bayes.learned(scope)[1] == ham_before

    assert quarantine.quarantine_release(actor=admin_a, items=items).done == 1
    assert Message.objects.filter(principal=jane).count() == 1
    assert bayes.learned(scope)[1] == ham_before + 1
