"""A domain's DNS check end to end: the run function against the loopback DNS server."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.domains.checks import (
    domain_dns_check_run,
    domain_dns_check_start,
    domains_due,
    run_kind,
)
from apps.domains.models import DnsCheckResult, DomainProfile
from apps.domains.services import expected_records
from apps.domains.tasks import domains_dns_check_due_task
from mailadmin.core.models import TaskRun
from mailadmin.errors import NotFound, PermissionDenied

pytestmark = pytest.mark.django_db

HOST = "mx.example.test"


@pytest.fixture(autouse=True)
def _hostname(settings):
    settings.MAILADMIN_HOSTNAME = HOST


def publish(dns_server, records, *, skip=(), replace=None):
    """Serve every record as expected, except names in `skip`; `replace` maps a (type, name)
    to the values served instead."""
    zones: dict = {}
    for record in records:
        key = (record["type"], record["name"])
        if record["name"] in skip:
            continue
        zone = zones.setdefault(record["name"], {})
        content = record["content"]
        if record["type"] == "MX":
            value = (int(content.split()[0]), content.split()[1])
        elif record["type"] == "SRV":
            priority, weight, port, target = content.split()
            value = (int(priority), int(weight), int(port), target)
        else:
            value = content
        zone.setdefault(record["type"], []).append(value)
        if replace and key in replace:
            zone[record["type"]] = replace[key]
    for name, zone in zones.items():
        dns_server.set_zone(name, zone)


def _run(actor, domain):
    run = TaskRun.objects.create(
        kind=run_kind(domain.pk), title="DNS check", actor=actor, tenant_id=actor.tenant_id
    )
    domain_dns_check_run(domain_id=domain.pk, run_id=str(run.id))
    run.refresh_from_db()
    return run


def test_it_finds_every_record_of_a_well_published_domain(admin_a, domain_a, dns_server):
    records = expected_records(domain=domain_a)
    publish(dns_server, records)
    run = _run(admin_a, domain_a)
    assert run.state == TaskRun.State.SUCCESS
    assert (run.done, run.total) == (len(records), len(records))
    assert run.message == f"{len(records)} of {len(records)} records found"
    rows = run.result["rows"]
    assert rows[0] == {"name": "MX a.example.", "ok": True, "detail": "found"}
    assert all(row["ok"] for row in rows)
    profile = DomainProfile.objects.get(domain=domain_a)
    assert profile.dns_status == DomainProfile.Status.OK
    assert profile.dns_checked_at is not None
    assert profile.verified_at is not None
    results = DnsCheckResult.objects.filter(domain=domain_a)
    assert results.count() == len(records)
    assert {r.status for r in results} == {"ok"}
    assert all(r.tenant_id == domain_a.tenant_id for r in results)


def test_it_fails_a_domain_whose_mx_points_elsewhere(admin_a, domain_a, dns_server):
    records = expected_records(domain=domain_a)
    publish(dns_server, records, replace={("MX", "a.example."): [(10, "elsewhere.test.")]})
    run = _run(admin_a, domain_a)
    assert run.state == TaskRun.State.FAILURE
    assert run.message == f"{len(records) - 1} of {len(records)} records found"
    mx = DnsCheckResult.objects.get(domain=domain_a, record_type="MX")
    assert (mx.status, mx.found, mx.expected) == ("mismatch", "10 elsewhere.test.", f"10 {HOST}.")
    assert DomainProfile.objects.get(domain=domain_a).dns_status == "failing"
    assert {"name": "MX a.example.", "ok": False, "detail": f"no MX points to {HOST}."} in (
        run.result["rows"]
    )


def test_it_calls_a_domain_missing_only_optional_records_partial(admin_a, domain_a, dns_server):
    records = expected_records(domain=domain_a)
    publish(dns_server, records, skip={"autoconfig.a.example."})
    run = _run(admin_a, domain_a)
    assert run.state == TaskRun.State.SUCCESS
    assert DomainProfile.objects.get(domain=domain_a).dns_status == "partial"
    missing = DnsCheckResult.objects.get(domain=domain_a, name="autoconfig.a.example.")
    assert (missing.status, missing.required) == ("missing", False)


def test_it_replaces_the_previous_results_and_leaves_unverified_alone(
    admin_a, domain_a, dns_server
):
    records = expected_records(domain=domain_a)
    publish(dns_server, records)
    _run(admin_a, domain_a)
    dns_server.zones.clear()  # everything gone: NXDOMAIN
    _run(admin_a, domain_a)
    results = DnsCheckResult.objects.filter(domain=domain_a)
    assert results.count() == len(records)
    assert {r.status for r in results} == {"missing"}
    profile = DomainProfile.objects.get(domain=domain_a)
    assert profile.dns_status == "failing"
    assert profile.verified_at is not None  # once verified, the domain stays verified


def test_it_does_not_verify_without_the_token(admin_a, domain_a, dns_server):
    publish(dns_server, expected_records(domain=domain_a))
    dns_server.set_zone("_mailadmin-verification.a.example", {"TXT": ["wrong"]})
    _run(admin_a, domain_a)
    assert DomainProfile.objects.get(domain=domain_a).verified_at is None


def test_it_runs_a_claimed_run_only_once(admin_a, domain_a, dns_server):
    run = _run(admin_a, domain_a)
    queries = len(dns_server.queries)
    assert domain_dns_check_run(domain_id=domain_a.pk, run_id=str(run.id)) is None
    assert len(dns_server.queries) == queries


def test_it_starts_a_run_after_commit_in_the_actors_tenant(
    admin_a, domain_a, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        run = domain_dns_check_start(actor=admin_a, domain=domain_a)
    assert len(callbacks) == 1
    assert (run.state, run.kind, run.title) == (
        "pending",
        f"dns-check:{domain_a.pk}",
        "DNS check of a.example",
    )
    assert run.tenant_id == admin_a.tenant_id


def test_it_hides_a_foreign_domain(admin_b, domain_a):
    with pytest.raises(NotFound):
        domain_dns_check_start(actor=admin_b, domain=domain_a)
    assert not TaskRun.objects.exists()


def test_it_needs_dns_check(user_a, domain_a):
    with pytest.raises(PermissionDenied) as exc:
        domain_dns_check_start(actor=user_a, domain=domain_a)
    assert "dns-check" in str(exc.value)


def test_it_lets_a_superadmin_check_any_domain(superadmin, domain_a):
    run = domain_dns_check_start(actor=superadmin, domain=domain_a.pk)
    assert run.kind == f"dns-check:{domain_a.pk}"


# --- the hourly schedule ---------------------------------------------------------------


def test_it_picks_exactly_the_domains_due_this_minute(make_domain, tenant_a, tenant_b, admin_a):
    domains = [
        make_domain(f"d{i}.example", tenant=tenant_a if i % 2 else tenant_b) for i in range(130)
    ]
    minute = domains[5].pk % 60
    expected = sorted(d.pk for d in domains if d.pk % 60 == minute)
    assert domains_due(minute=minute) == expected
    assert len(expected) in (2, 3)
    assert admin_a.pk not in domains_due(minute=admin_a.pk % 60)  # only domains


def test_it_enqueues_one_check_per_due_domain(make_domain, tenant_a, monkeypatch):
    domains = [make_domain(f"d{i}.example", tenant=tenant_a) for i in range(61)]
    sent = []
    monkeypatch.setattr(
        "apps.domains.tasks.domain_dns_check_task.delay", lambda *args: sent.append(args)
    )
    now = timezone.now()
    assert domains_dns_check_due_task() == len(sent)
    assert {args[1] for args in sent} == {d.pk for d in domains if d.pk % 60 == now.minute} or (
        timezone.now().minute != now.minute  # the minute turned while we ran
    )
    assert all(args[0] is None for args in sent)


def test_it_runs_a_scheduled_check_once_an_hour(domain_a, dns_server):
    publish(dns_server, expected_records(domain=domain_a))
    assert domain_dns_check_run(domain_id=domain_a.pk) == "ok"
    assert domain_dns_check_run(domain_id=domain_a.pk) is None  # a duplicate tick
    DomainProfile.objects.filter(domain=domain_a).update(
        dns_checked_at=timezone.now() - timedelta(hours=1)
    )
    assert domain_dns_check_run(domain_id=domain_a.pk) == "ok"
    assert not TaskRun.objects.exists()
