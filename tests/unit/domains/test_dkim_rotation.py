"""The DKIM life cycle (issue 9 item 3): pending -> active only once DNS shows the record
(by a DNS check or the scheduled rotation task, on the live DNS fixture) -> retiring ->
retired after the grace period; one signing key per domain and algorithm; the selector the
SMTP submission code signs with; line endings of signed messages."""

from __future__ import annotations

from datetime import timedelta

import dns.exception
import dns.resolver
import pytest
from django.conf import settings as django_settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.domains import dkim, records, services
from apps.domains.models import DkimKey
from apps.domains.selectors import expected_records, signing_keys
from apps.domains.tasks import dkim_rotation_due_task, dkim_rotation_task, domain_dns_check_task
from mailadmin.core.models import AuditEvent, TaskRun
from mailadmin.dns import make_resolver
from mailadmin.errors import NotFound, PermissionDenied, ValidationFailed
from tests.unit.domains.test_dns_task import HOST, publish

pytestmark = pytest.mark.django_db

MESSAGE = (
    b"From: Ann <ann@a.example>\nTo: bob@b.example\nSubject: rotation\n"
    b"Date: Mon, 30 Nov 2026 10:00:00 +0000\nMessage-ID: <r1@a.example>\n\nHello,\nBob.\n"
)


@pytest.fixture(autouse=True)
def _hostname(settings):
    settings.MAILADMIN_HOSTNAME = HOST


def _dnsfunc(name: bytes, timeout: int = 5) -> bytes | None:
    try:
        answer = make_resolver().resolve(name.decode("ascii"), "TXT")
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.exception.Timeout):
        return None
    return b"".join(answer[0].strings)


def _publish_key(dns_server, key: DkimKey) -> None:
    dns_server.set_zone(
        records.dkim_name(key.domain.name, key.selector),
        {"TXT": [dkim.txt_record(key.algorithm, key.public_key)]},
    )


@pytest.fixture
def rotate_now(django_capture_on_commit_callbacks):
    """rotate_now() -> the finished run: beat's tick, carried out by the real task."""

    def run() -> TaskRun:
        with django_capture_on_commit_callbacks(execute=False):
            run_id = dkim_rotation_due_task()
        dkim_rotation_task(run_id)
        return TaskRun.objects.get(pk=run_id)

    return run


@pytest.fixture
def check_dns(django_capture_on_commit_callbacks):
    """check_dns(actor, domain): the DNS check of the domain page, run by the real task."""

    def run(actor, domain) -> None:
        with django_capture_on_commit_callbacks(execute=False):
            started = services.domain_dns_check_start(actor=actor, domain=domain)
        domain_dns_check_task(str(started.id))

    return run


def _state(key: DkimKey) -> str:
    return DkimKey.objects.get(pk=key.pk).state


def test_it_publishes_a_new_key_but_signs_only_once_dns_has_it(
    admin_a, domain_a, dns_server, rotate_now
):
    key = services.dkim_key_create(actor=admin_a, domain=domain_a, algorithm="ed25519")
    assert key.state == "pending"
    dkim_row = next(r for r in expected_records(domain=domain_a) if "_domainkey" in r["name"])
    assert (dkim_row["name"], dkim_row["required"]) == (
        records.dkim_name("a.example", key.selector),
        False,
    )
    assert signing_keys("a.example") == []

    run = rotate_now()  # not in DNS yet
    assert (run.state, _state(key)) == ("success", "pending")
    assert run.message == (
        "0 keys now signing, 1 waiting for their DNS record, 0 could not be looked up, 0 retired"
    )

    _publish_key(dns_server, key)
    run = rotate_now()
    assert run.message.startswith("1 keys now signing")
    assert _state(key) == "active"
    (signer,) = signing_keys("A.EXAMPLE")
    assert signer.pk == key.pk
    header = dkim.sign(MESSAGE, domain="a.example", selector=signer.selector, key=signer)
    assert dkim.verify(header + MESSAGE, dnsfunc=_dnsfunc) is True
    event = AuditEvent.objects.get(action="dkim.activate")
    assert (event.actor_name, event.interface, event.tenant_id) == (
        "system",
        "task",
        domain_a.tenant_id,
    )


@pytest.mark.parametrize("algorithm", ["rsa", "ed25519"])
def test_it_rotates_signing_to_the_new_key_and_retires_the_old(
    admin_a, domain_a, dns_server, rotate_now, algorithm
):
    old = services.dkim_key_create(actor=admin_a, domain=domain_a, algorithm=algorithm)
    _publish_key(dns_server, old)
    rotate_now()
    new = services.dkim_key_rotate(actor=admin_a, key=old)
    assert (new.state, new.algorithm, _state(old)) == ("pending", algorithm, "active")
    assert [k.pk for k in signing_keys("a.example")] == [old.pk]  # not before DNS has it

    _publish_key(dns_server, new)
    rotate_now()
    assert (_state(new), _state(old)) == ("active", "retiring")
    assert [k.pk for k in signing_keys("a.example")] == [new.pk]
    names = {r["name"] for r in expected_records(domain=domain_a)}
    assert records.dkim_name("a.example", old.selector) in names  # still published
    signer = signing_keys("a.example")[0]
    header = dkim.sign(MESSAGE, domain="a.example", selector=signer.selector, key=signer)
    assert f"s={new.selector};".encode() in header.replace(b"\n ", b" ")
    assert dkim.verify(header + MESSAGE, dnsfunc=_dnsfunc) is True


def test_it_activates_a_key_when_a_dns_check_finds_its_record(
    admin_a, domain_a, dns_server, check_dns
):
    key = services.dkim_key_create(actor=admin_a, domain=domain_a, algorithm="rsa")
    publish(
        dns_server,
        expected_records(domain=domain_a),
        skip={records.dkim_name("a.example", key.selector)},
    )
    check_dns(admin_a, domain_a)
    assert _state(key) == "pending"
    publish(dns_server, expected_records(domain=domain_a))
    check_dns(admin_a, domain_a)
    assert _state(key) == "active"
    event = AuditEvent.objects.get(action="dkim.activate")
    assert event.actor == admin_a


def test_it_keeps_a_key_pending_when_the_lookup_fails(admin_a, domain_a, dns_server, rotate_now):
    key = services.dkim_key_create(actor=admin_a, domain=domain_a, algorithm="rsa")
    dns_server.set_zone(records.dkim_name("a.example", key.selector), "SERVFAIL")
    run = rotate_now()
    assert (run.state, _state(key)) == ("failure", "pending")
    assert "1 could not be looked up" in run.message


def test_it_withdraws_a_retiring_key_after_the_grace_period(
    admin_a, domain_a, dns_server, rotate_now, settings
):
    settings.MAILADMIN_DKIM_RETIRE_GRACE_DAYS = 7
    key = services.dkim_key_create(actor=admin_a, domain=domain_a, algorithm="rsa")
    _publish_key(dns_server, key)
    rotate_now()
    services.dkim_key_retire(actor=admin_a, key=key)
    assert _state(key) == "retiring"
    assert signing_keys("a.example") == []
    DkimKey.objects.filter(pk=key.pk).update(
        state_changed_at=timezone.now() - timedelta(days=6, hours=23)
    )
    rotate_now()
    assert _state(key) == "retiring"
    DkimKey.objects.filter(pk=key.pk).update(
        state_changed_at=timezone.now() - timedelta(days=7, minutes=1)
    )
    run = rotate_now()
    assert run.result["retired"] == [key.pk]
    retired = DkimKey.objects.get(pk=key.pk)
    assert (retired.state, retired.private_key) == ("retired", "")
    assert not [r for r in expected_records(domain=domain_a) if "_domainkey" in r["name"]]
    with pytest.raises(ValueError, match="retired"):
        dkim.sign(MESSAGE, domain="a.example", selector=retired.selector, key=retired)


def test_it_withdraws_a_retired_pending_key_at_once(admin_a, domain_a):
    key = services.dkim_key_create(actor=admin_a, domain=domain_a, algorithm="ed25519")
    services.dkim_key_retire(actor=admin_a, key=key)
    retired = DkimKey.objects.get(pk=key.pk)
    assert (retired.state, retired.private_key) == ("retired", "")
    with pytest.raises(ValidationFailed, match="already retired"):
        services.dkim_key_retire(actor=admin_a, key=key)


def test_it_rotates_only_an_active_key_and_one_at_a_time(admin_a, domain_a, dns_server, rotate_now):
    key = services.dkim_key_create(actor=admin_a, domain=domain_a, algorithm="rsa")
    with pytest.raises(ValidationFailed, match="Only an active key is rotated"):
        services.dkim_key_rotate(actor=admin_a, key=key)
    _publish_key(dns_server, key)
    rotate_now()
    new = services.dkim_key_rotate(actor=admin_a, key=key)
    with pytest.raises(ValidationFailed, match=f"The new key {new.selector} is already waiting"):
        services.dkim_key_rotate(actor=admin_a, key=key)


def test_it_allows_one_signing_key_per_domain_and_algorithm(admin_a, domain_a):
    first = services.dkim_key_create(actor=admin_a, domain=domain_a, algorithm="rsa")
    second = services.dkim_key_create(actor=admin_a, domain=domain_a, algorithm="rsa")
    other = services.dkim_key_create(actor=admin_a, domain=domain_a, algorithm="ed25519")
    DkimKey.objects.filter(pk__in=[first.pk, other.pk]).update(state="active")
    with pytest.raises(IntegrityError), transaction.atomic():
        DkimKey.objects.filter(pk=second.pk).update(state="active")
    assert sorted(k.algorithm for k in signing_keys("a.example")) == ["ed25519", "rsa"]


def test_it_keeps_other_tenants_keys_out_of_reach(admin_a, admin_b, user_a, domain_a):
    key = services.dkim_key_create(actor=admin_a, domain=domain_a, algorithm="rsa")
    with pytest.raises(NotFound):
        services.dkim_key_retire(actor=admin_b, key=key)
    with pytest.raises(NotFound):
        services.dkim_key_rotate(actor=admin_b, key=key)
    with pytest.raises(PermissionDenied):
        services.dkim_key_retire(actor=user_a, key=key)
    assert _state(key) == "pending"


def test_it_signs_for_the_senders_domain_only(admin_a, admin_b, domain_a, domain_b):
    a = services.dkim_key_create(actor=admin_a, domain=domain_a, algorithm="rsa")
    b = services.dkim_key_create(actor=admin_b, domain=domain_b, algorithm="rsa")
    DkimKey.objects.filter(pk__in=[a.pk, b.pk]).update(state="active")
    assert [k.pk for k in signing_keys("a.example")] == [a.pk]
    assert [k.pk for k in signing_keys("b.example")] == [b.pk]
    assert signing_keys("unknown.example") == []
    assert signing_keys("not a domain") == []


def test_it_schedules_the_rotation_on_celery_beat():
    entry = django_settings.CELERY_BEAT_SCHEDULE["domains-dkim-rotation"]
    assert entry["task"] == "domains.dkim_rotation_due"
    assert django_settings.CELERY_TASK_ROUTES["domains.dkim_rotation"] == {"queue": "dns"}


# --- line endings -------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["rsa", "ed25519"])
@pytest.mark.parametrize("ending", [b"\r\n", b"\n"])
def test_it_signs_in_the_line_endings_of_the_message(dns_server, algorithm, ending):
    pair = dkim.generate(algorithm)
    dns_server.set_zone(
        records.dkim_name("a.example", "le"), {"TXT": [dkim.txt_record(algorithm, pair.public_key)]}
    )
    message = MESSAGE.replace(b"\n", ending)
    header = dkim.sign(message, domain="a.example", selector="le", key=pair)
    signed = header + message
    assert header.endswith(ending)
    if ending == b"\n":
        assert b"\r" not in signed
    else:
        assert signed.count(b"\n") == signed.count(b"\r\n")
    assert len(header.splitlines()) > 1  # folded, in the same line ending
    assert dkim.verify(signed, dnsfunc=_dnsfunc) is True
