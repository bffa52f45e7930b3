"""A domain's DNS check end to end: started by the service, carried out by the task (on the
task base) against the loopback DNS server; and the hourly schedule."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.domains import services
from apps.domains.models import DnsCheckResult, DomainProfile
from apps.domains.selectors import domains_due, expected_records
from apps.domains.services import (
    domain_dns_check_all_start,
    domain_dns_check_start,
    domain_dns_checks_schedule,
)
from apps.domains.tasks import (
    domain_dns_check_all_task,
    domain_dns_check_task,
    domains_dns_check_due_task,
)
from mailadmin.audit import audit_context
from mailadmin.core.models import AuditEvent, TaskRun
from mailadmin.errors import NotFound, PermissionDenied

pytestmark = pytest.mark.django_db

HOST = "mx.example.test"
HOST_IP = "192.0.2.25"


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
        elif record["type"] == "TLSA":
            usage, selector, mtype, data = content.split()
            value = (int(usage), int(selector), int(mtype), data)
        else:
            value = content
        zone.setdefault(record["type"], []).append(value)
        if replace and key in replace:
            zone[record["type"]] = replace[key]
    zones[HOST + "."] = {"A": [HOST_IP]}  # this server: the address SPF must authorise
    for name, zone in zones.items():
        dns_server.set_zone(name, zone)


@pytest.fixture
def check_now(django_capture_on_commit_callbacks):
    """check_now(actor, domain) -> the finished run: started as the page starts it, carried
    out by the real task (its base included) in this process."""

    def run(actor, domain):
        with django_capture_on_commit_callbacks(execute=False):
            started = domain_dns_check_start(actor=actor, domain=domain)
        domain_dns_check_task(str(started.id))
        started.refresh_from_db()
        return started

    return run


def test_it_finds_every_record_of_a_well_published_domain(admin_a, domain_a, dns_server, check_now):
    records = expected_records(domain=domain_a)
    publish(dns_server, records)
    run = check_now(admin_a, domain_a)
    assert run.state == TaskRun.State.SUCCESS
    assert (run.done, run.total, run.attempts) == (len(records), len(records), 1)
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


def test_it_stores_the_token_the_page_showed_before_the_first_check(
    admin_a, domain_a, dns_server, check_now
):
    shown = expected_records(domain=domain_a)  # no profile yet: nothing was written
    assert not DomainProfile.objects.exists()
    publish(dns_server, shown)
    check_now(admin_a, domain_a)
    profile = DomainProfile.objects.get(domain=domain_a)
    assert f"mailadmin-verification={profile.verification_token}" in {r["content"] for r in shown}
    assert profile.verified_at is not None


def test_it_audits_the_check_as_its_starter_from_a_task(admin_a, domain_a, dns_server, check_now):
    publish(dns_server, expected_records(domain=domain_a))
    with audit_context("html", "192.0.2.7"):
        check_now(admin_a, domain_a)
    events = AuditEvent.objects.order_by("id")
    assert [(e.action, e.actor, e.interface, e.ip) for e in events] == [
        ("domainprofile.create", admin_a, "task", "192.0.2.7"),
        ("domain.dns_check", admin_a, "task", "192.0.2.7"),
    ]
    assert events[1].changes == {"dns_status": "ok", "verified": True}
    assert events[1].object_repr == "a.example"
    assert {e.tenant_id for e in events} == {domain_a.tenant_id}


def test_it_audits_only_checks_that_change_something(admin_a, domain_a, dns_server, check_now):
    publish(dns_server, expected_records(domain=domain_a))
    check_now(admin_a, domain_a)
    check_now(admin_a, domain_a)
    assert AuditEvent.objects.filter(action="domain.dns_check").count() == 1


def test_it_fails_a_domain_whose_mx_points_elsewhere(admin_a, domain_a, dns_server, check_now):
    records = expected_records(domain=domain_a)
    publish(dns_server, records, replace={("MX", "a.example."): [(10, "elsewhere.test.")]})
    run = check_now(admin_a, domain_a)
    assert run.state == TaskRun.State.FAILURE
    # "v=spf1 mx -all" follows the MX, so it no longer authorises this server either.
    assert run.message == f"{len(records) - 2} of {len(records)} records found"
    spf = DnsCheckResult.objects.get(domain=domain_a, record_type="TXT", name="a.example.")
    assert spf.status == "mismatch"
    assert spf.detail == (
        f"the SPF record does not authorise this server ({HOST_IP}): an SPF check gives fail"
    )
    mx = DnsCheckResult.objects.get(domain=domain_a, record_type="MX")
    assert (mx.status, mx.found, mx.expected) == ("mismatch", "10 elsewhere.test.", f"10 {HOST}.")
    assert DomainProfile.objects.get(domain=domain_a).dns_status == "failing"
    assert {"name": "MX a.example.", "ok": False, "detail": f"no MX points to {HOST}."} in (
        run.result["rows"]
    )


def test_it_calls_a_domain_missing_only_optional_records_partial(
    admin_a, domain_a, dns_server, check_now
):
    records = expected_records(domain=domain_a)
    publish(dns_server, records, skip={"autoconfig.a.example."})
    run = check_now(admin_a, domain_a)
    assert run.state == TaskRun.State.SUCCESS
    assert DomainProfile.objects.get(domain=domain_a).dns_status == "partial"
    missing = DnsCheckResult.objects.get(domain=domain_a, name="autoconfig.a.example.")
    assert (missing.status, missing.required) == ("missing", False)


def test_it_replaces_the_previous_results_and_leaves_unverified_alone(
    admin_a, domain_a, dns_server, check_now
):
    records = expected_records(domain=domain_a)
    publish(dns_server, records)
    check_now(admin_a, domain_a)
    dns_server.zones.clear()  # everything gone: NXDOMAIN
    check_now(admin_a, domain_a)
    results = DnsCheckResult.objects.filter(domain=domain_a)
    assert results.count() == len(records)
    assert {r.status for r in results} == {"missing"}
    profile = DomainProfile.objects.get(domain=domain_a)
    assert profile.dns_status == "failing"
    assert profile.verified_at is not None  # once verified, the domain stays verified


def test_it_does_not_verify_without_the_token(admin_a, domain_a, dns_server, check_now):
    publish(dns_server, expected_records(domain=domain_a))
    dns_server.set_zone("_mailadmin-verification.a.example", {"TXT": ["wrong"]})
    check_now(admin_a, domain_a)
    assert DomainProfile.objects.get(domain=domain_a).verified_at is None


def test_it_runs_a_claimed_run_only_once(admin_a, domain_a, dns_server, check_now):
    run = check_now(admin_a, domain_a)
    queries = len(dns_server.queries)
    domain_dns_check_task(str(run.id))  # a redelivered message
    assert len(dns_server.queries) == queries
    run.refresh_from_db()
    assert run.attempts == 1


def test_it_starts_a_run_after_commit_in_the_domains_tenant(
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
    assert (run.task_name, run.arguments) == ("domains.dns_check", {"domain_id": domain_a.pk})
    assert run.tenant_id == domain_a.tenant_id


def test_it_shows_the_check_under_way_instead_of_starting_a_second(
    admin_a, domain_a, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        first = domain_dns_check_start(actor=admin_a, domain=domain_a)
        second = domain_dns_check_start(actor=admin_a, domain=domain_a)
    assert first.pk == second.pk
    assert len(callbacks) == 1


def test_it_hides_a_foreign_domain(admin_b, domain_a):
    with pytest.raises(NotFound):
        domain_dns_check_start(actor=admin_b, domain=domain_a)
    assert not TaskRun.objects.exists()


def test_it_needs_dns_check(user_a, domain_a):
    with pytest.raises(PermissionDenied) as exc:
        domain_dns_check_start(actor=user_a, domain=domain_a)
    assert "dns-check" in str(exc.value)


def test_it_lets_a_superadmin_check_any_domain_in_its_tenant(superadmin, domain_a, admin_a):
    run = domain_dns_check_start(actor=superadmin, domain=domain_a)
    assert run.kind == f"dns-check:{domain_a.pk}"
    assert run.tenant_id == domain_a.tenant_id  # so the tenant's admin sees it on the page


def test_it_checks_the_starters_permission_again_when_the_run_starts(
    admin_a, domain_a, dns_server, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        run = domain_dns_check_start(actor=admin_a, domain=domain_a)
    admin_a.disabled_permissions = ["dns-check"]
    admin_a.save()
    domain_dns_check_task(str(run.id))
    run.refresh_from_db()
    assert (run.state, run.message) == (
        "failure",
        "You do not have the permission 'dns-check' needed for this.",
    )
    assert dns_server.queries == [] and not DnsCheckResult.objects.exists()


def test_it_fails_a_run_whose_domain_was_deleted(
    admin_a, domain_a, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        run = domain_dns_check_start(actor=admin_a, domain=domain_a)
    domain_a.delete()
    domain_dns_check_task(str(run.id))
    run.refresh_from_db()
    assert (run.state, run.message) == ("failure", "The domain no longer exists.")


# --- the hourly schedule ---------------------------------------------------------------


def test_it_picks_exactly_the_domains_due_this_minute(make_domain, tenant_a, tenant_b, admin_a):
    domains = [
        make_domain(f"d{i}.example", tenant=tenant_a if i % 2 else tenant_b) for i in range(130)
    ]
    minute = domains[5].pk % 60
    expected = sorted(d.pk for d in domains if d.pk % 60 == minute)
    now = timezone.now()
    due = [d.pk for d in domains_due(minute=minute, checked_before=now)]
    assert due == expected
    assert len(expected) in (2, 3)
    assert admin_a.pk not in [d.pk for d in domains_due(minute=admin_a.pk % 60, checked_before=now)]
    # a domain checked since is not due again
    DomainProfile.objects.create(domain=domains[5], tenant=tenant_b, dns_checked_at=now)
    assert domains[5].pk not in [d.pk for d in domains_due(minute=minute, checked_before=now)]


def test_it_starts_one_scheduled_run_per_due_domain(
    make_domain, tenant_a, django_capture_on_commit_callbacks
):
    domains = [make_domain(f"d{i}.example", tenant=tenant_a) for i in range(61)]
    minute = timezone.now().minute
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        started = domains_dns_check_due_task()
    if timezone.now().minute != minute:
        pytest.skip("the minute turned while the task ran")
    due = {d.pk for d in domains if d.pk % 60 == minute}
    assert started == len(due) == len(callbacks)
    runs = TaskRun.objects.all()
    assert {run.arguments["domain_id"] for run in runs} == due
    assert all(run.actor_id is None and run.actor_name == "" for run in runs)
    assert all(run.title.startswith("Scheduled DNS check of d") for run in runs)
    assert all(run.tenant_id == tenant_a.pk for run in runs)


def test_it_runs_a_scheduled_check_once_an_hour_as_the_system(
    domain_a, dns_server, django_capture_on_commit_callbacks
):
    publish(dns_server, expected_records(domain=domain_a))
    minute = domain_a.pk % 60

    def tick() -> list[TaskRun]:
        with django_capture_on_commit_callbacks(execute=False):
            domain_dns_checks_schedule(minute=minute)
        runs = list(TaskRun.objects.filter(state="pending"))
        for run in runs:
            domain_dns_check_task(str(run.id))
        return runs

    (run,) = tick()
    run.refresh_from_db()
    assert (run.state, run.actor_id) == ("success", None)
    assert tick() == []  # a duplicate tick: checked minutes ago
    DomainProfile.objects.filter(domain=domain_a).update(
        dns_checked_at=timezone.now() - timedelta(hours=1)
    )
    assert len(tick()) == 1
    event = AuditEvent.objects.get(action="domain.dns_check")
    assert (event.actor_name, event.interface) == ("system", "task")


def test_it_schedules_no_twin_of_a_check_under_way(
    admin_a, domain_a, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        by_hand = domain_dns_check_start(actor=admin_a, domain=domain_a)
        domain_dns_checks_schedule(minute=domain_a.pk % 60)
    assert list(TaskRun.objects.values_list("pk", flat=True)) == [by_hand.pk]


# --- acceptance: what each kind of zone turns into ------------------------------------------


def test_it_accepts_a_zone_right_in_another_way(admin_a, domain_a, dns_server, check_now):
    """SPF by ip4 behind an include, other case and order; records behind CNAMEs."""
    records = expected_records(domain=domain_a)
    publish(
        dns_server,
        records,
        replace={
            ("TXT", "a.example."): ["V=SPF1 -ip4:203.0.113.1 INCLUDE:spf.provider.test -ALL"],
            ("CNAME", "autoconfig.a.example."): ["cfg.provider.test."],
        },
    )
    dns_server.set_zone("spf.provider.test", {"TXT": [f"v=spf1 ip4:{HOST_IP} ~all"]})
    dns_server.set_zone("cfg.provider.test", {"CNAME": [HOST + "."]})
    dns_server.set_zone("_dmarc.a.example", {"CNAME": ["dmarc.provider.test."]})
    dns_server.set_zone(
        "dmarc.provider.test", {"TXT": ["v=DMARC1;rua=mailto:postmaster@a.example;p=reject"]}
    )
    run = check_now(admin_a, domain_a)
    assert run.state == TaskRun.State.SUCCESS, run.result["rows"]
    assert {r.status for r in DnsCheckResult.objects.filter(domain=domain_a)} == {"ok"}
    assert DomainProfile.objects.get(domain=domain_a).dns_status == "ok"


def test_it_keeps_the_status_when_the_resolver_fails(admin_a, domain_a, dns_server, check_now):
    records = expected_records(domain=domain_a)
    publish(dns_server, records)
    check_now(admin_a, domain_a)
    checked_at = DomainProfile.objects.get(domain=domain_a).dns_checked_at
    dns_server.set_zone("a.example", "SERVFAIL")
    run = check_now(admin_a, domain_a)
    assert run.state == TaskRun.State.FAILURE
    assert run.message == (
        f"Could not check: 2 of {len(records)} lookups failed (our resolver, not the domain's "
        "DNS); the domain keeps its status (All records found)"
    )
    profile = DomainProfile.objects.get(domain=domain_a)
    assert (profile.dns_status, profile.dns_checked_at) == ("ok", checked_at)
    mx = DnsCheckResult.objects.get(domain=domain_a, record_type="MX")
    assert mx.status == "error"
    assert "SERVFAIL" in mx.detail
    assert AuditEvent.objects.filter(action="domain.dns_check").count() == 1


def test_it_never_fails_a_domain_whose_server_is_silent(
    admin_a, domain_a, dns_server, check_now, settings
):
    settings.MAILADMIN_DNS_CHECK_DEADLINE = 1
    for record in expected_records(domain=domain_a):
        dns_server.set_zone(record["name"], "TIMEOUT")
    started = timezone.now()
    run = check_now(admin_a, domain_a)
    assert (timezone.now() - started).total_seconds() < 5
    assert run.message.startswith("Could not check: ")
    assert DomainProfile.objects.get(domain=domain_a).dns_status == "unknown"
    assert {r.status for r in DnsCheckResult.objects.filter(domain=domain_a)} == {"error"}


def test_it_fails_an_empty_zone_and_a_missing_domain(admin_a, domain_a, dns_server, check_now):
    dns_server.set_zone(HOST, {"A": [HOST_IP]})
    dns_server.set_zone("a.example", {})  # exists, publishes nothing
    check_now(admin_a, domain_a)
    results = {r.name + r.record_type: r for r in DnsCheckResult.objects.filter(domain=domain_a)}
    assert (results["a.example.MX"].status, results["a.example.MX"].detail) == (
        "missing",
        "no MX record at a.example.",
    )
    assert results["_dmarc.a.example.TXT"].detail == "_dmarc.a.example. does not exist (NXDOMAIN)"
    assert DomainProfile.objects.get(domain=domain_a).dns_status == "failing"


def test_it_fails_a_wrong_zone_with_reasons(admin_a, domain_a, dns_server, check_now):
    records = expected_records(domain=domain_a)
    publish(
        dns_server,
        records,
        replace={
            ("TXT", "a.example."): ["v=spf1 mx +all"],
            ("TXT", "_dmarc.a.example."): ["v=DMARC1; p=rejectt"],
        },
    )
    check_now(admin_a, domain_a)
    spf = DnsCheckResult.objects.get(domain=domain_a, name="a.example.", record_type="TXT")
    dmarc = DnsCheckResult.objects.get(domain=domain_a, name="_dmarc.a.example.")
    assert (spf.status, spf.found) == ("mismatch", "v=spf1 mx +all")
    assert spf.detail.startswith("the SPF record ends in +all")
    assert (dmarc.status, dmarc.detail) == (
        "mismatch",
        "invalid DMARC record: p=rejectt is not none, quarantine or reject",
    )
    assert DomainProfile.objects.get(domain=domain_a).dns_status == "failing"


# --- "Check all" ---------------------------------------------------------------------------


def test_it_checks_every_domain_of_the_tenant_and_none_other(
    admin_a,
    domain_a,
    domain_b,
    make_domain,
    tenant_a,
    dns_server,
    settings,
    django_capture_on_commit_callbacks,
):
    settings.MAILADMIN_DNS_CHECK_CONCURRENCY = 2
    second = make_domain("c.example", tenant=tenant_a)
    publish(dns_server, expected_records(domain=domain_a))
    with django_capture_on_commit_callbacks(execute=False):
        run = domain_dns_check_all_start(actor=admin_a)
        again = domain_dns_check_all_start(actor=admin_a)
    assert again.id == run.id  # one "Check all" at a time
    domain_dns_check_all_task(str(run.id))
    run.refresh_from_db()
    assert run.state == TaskRun.State.FAILURE  # c.example publishes nothing
    assert run.message == ("2 domains: 1 ok, 0 partial, 1 failing, 0 could not be checked")
    assert (run.done, run.total) == (2, 2)
    statuses = dict(DomainProfile.objects.values_list("domain__name", "dns_status"))
    assert statuses == {"a.example": "ok", "c.example": "failing"}
    assert not DnsCheckResult.objects.filter(domain=domain_b).exists()
    assert DnsCheckResult.objects.filter(domain=second).count() == len(
        expected_records(domain=second)
    )


def test_it_needs_dns_check_to_check_all(user_a):
    with pytest.raises(PermissionDenied):
        domain_dns_check_all_start(actor=user_a)


def test_it_checks_all_in_worker_processes_alike(
    admin_a, domain_a, make_domain, tenant_a, dns_server, settings, monkeypatch
):
    """Check all splits the domains over spawned worker processes (DNS only): the stored
    results are those of checking in the run's own process."""
    others = [make_domain(f"{label}.example", tenant=tenant_a) for label in ("c", "d")]
    publish(dns_server, expected_records(domain=domain_a))
    publish(dns_server, expected_records(domain=others[0]), skip={"_dmarc.c.example."})
    dns_server.set_zone("d.example", "SERVFAIL")

    def stored():
        return sorted(
            DnsCheckResult.objects.values_list("domain__name", "name", "status", "found", "detail")
        )

    outcome = services.domain_dns_check_all_run(actor=admin_a, progress=_Progress())
    in_process = stored()
    monkeypatch.setattr(services, "CHECK_ALL_PROCESS_MIN", 1)
    monkeypatch.setattr(services, "CHECK_ALL_BATCH", 2)  # two batches: one stored, one checked
    settings.MAILADMIN_DNS_CHECK_PROCESSES = 2
    DnsCheckResult.objects.all().delete()
    progress = _Progress()
    assert services.domain_dns_check_all_run(actor=admin_a, progress=progress) == outcome
    assert outcome.message == "3 domains: 1 ok, 0 partial, 1 failing, 1 could not be checked"
    assert (progress.total, progress.done) == (3, 3)
    assert stored() == in_process
    statuses = dict(DomainProfile.objects.values_list("domain__name", "dns_status"))
    assert statuses == {"a.example": "ok", "c.example": "failing", "d.example": "unknown"}
    mx = DnsCheckResult.objects.get(domain=others[1], record_type="MX")
    assert (mx.status, "SERVFAIL" in mx.detail) == ("error", True)


class _Progress:
    def begin(self, total):
        self.total = total

    def step(self, done, message=""):
        self.done = done


def test_it_stores_a_batch_of_checks_in_a_fixed_number_of_queries(
    admin_a, domain_a, make_domain, tenant_a, dns_server
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    publish(dns_server, expected_records(domain=domain_a))
    services.domain_dns_check_all_run(actor=admin_a, progress=_Progress())  # profiles made

    def queries() -> int:
        """Not counting the results' INSERTs: one on PostgreSQL, more on SQLite, which
        limits the parameters of one statement."""
        with CaptureQueriesContext(connection) as captured:
            services.domain_dns_check_all_run(actor=admin_a, progress=_Progress())
        return sum(not q["sql"].startswith("INSERT") for q in captured)

    few = queries()
    for label in ("c", "d", "e", "f"):
        domain = make_domain(f"{label}.example", tenant=tenant_a)
        publish(dns_server, expected_records(domain=domain))
    services.domain_dns_check_all_run(actor=admin_a, progress=_Progress())  # profiles, audits
    assert queries() == few
