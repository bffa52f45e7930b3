"""A domain alias's own DNS records: what it must publish, the check of them (against the
loopback DNS server, with the domain's check and with Check all), the API that lists them
and the domain page that shows them; another tenant's alias stays invisible."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.domains import checks, services
from apps.domains.mailbox_services import (
    domain_alias_create,
    domain_alias_delete,
    mailbox_address_add,
    mailbox_create,
)
from apps.domains.models import DnsCheckResult, DomainProfile
from apps.domains.records import alias_records
from apps.domains.selectors import alias_expected_records, expected_records
from apps.domains.services import domain_dns_check_all_start
from apps.domains.tasks import domain_dns_check_all_task
from mailadmin.core.models import AuditEvent, TaskRun
from mailadmin.errors import ServiceError
from tests.conftest import skip_or_fail
from tests.unit.domains.test_check_api import NOT_FOUND
from tests.unit.domains.test_dns_task import HOST, HOST_IP, _Progress, check_now, publish

pytestmark = pytest.mark.django_db

__all__ = ["check_now"]  # the fixture, used here as in test_dns_task


@pytest.fixture(autouse=True)
def _hostname(settings):
    settings.MAILADMIN_HOSTNAME = HOST


@pytest.fixture
def alias_a(admin_a, domain_a):
    """a-alias.example, an alias of tenant A's a.example."""
    return domain_alias_create(actor=admin_a, domain=domain_a, alias="a-alias.example")


@pytest.fixture
def alias_b(admin_b, domain_b):
    """b-alias.example, an alias of tenant B's b.example."""
    return domain_alias_create(actor=admin_b, domain=domain_b, alias="b-alias.example")


def alias_set(alias) -> list[dict]:
    return alias_expected_records(alias_name=alias.alias, domain_name=alias.domain.name)


# --- the record set ----------------------------------------------------------------------


def test_it_says_what_an_alias_that_sends_no_mail_publishes():
    records = alias_records(alias="alias.example", domain="a.example", hostname="mx.example.test")
    assert [(r["type"], r["name"], r["content"], r["required"]) for r in records] == [
        ("MX", "alias.example.", "10 mx.example.test.", True),
        ("TXT", "alias.example.", "v=spf1 -all", True),
        ("TXT", "_dmarc.alias.example.", "v=DMARC1; p=reject", False),
    ]
    purposes = [r["purpose"] for r in records]
    assert purposes[0] == (
        "Directs mail for the alias to this server, which delivers it as mail to a.example."
    )
    assert purposes[1] == "SPF: the alias sends no mail, so no server may send as it."
    assert "reject" in purposes[2]


def test_it_lets_no_account_hold_an_alias_address_so_none_sends_from_one(
    admin_a, domain_a, alias_a
):
    """Why the alias's SPF is -all: submission takes only the sender's own addresses, and
    an address on an alias name cannot be one (it is no domain of the tenant)."""
    mailbox = mailbox_create(
        actor=admin_a,
        domain=domain_a,
        name="jane",
        values={"display_name": "Jane", "password": "Secret123!@#", "size": 100},
    )
    with pytest.raises(ServiceError) as refused:
        mailbox_address_add(actor=admin_a, mailbox=mailbox, address="jane@a-alias.example")
    assert refused.value.message == "The domain a-alias.example is not a domain of this tenant."
    assert list(mailbox.principal.emails.values_list("address", flat=True)) == ["jane@a.example"]


def test_it_never_puts_an_alias_into_the_domains_own_records(domain_a, alias_a):
    names = {r["name"] for r in expected_records(domain=domain_a)}
    assert not any("a-alias.example" in name for name in names)


# --- judging an alias's SPF ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("published", "status", "detail"),
    [
        (["v=spf1 -all"], "ok", "no server may send as alias.test"),
        (["V=SPF1   -ALL", "other text"], "ok", "no server may send as alias.test"),
        (["v=spf1 -ip4:192.0.2.9 -all exp=why.test"], "ok", "no server may send as alias.test"),
        (["v=spf1 -all mx"], "ok", "no server may send as alias.test"),  # never reached
        (
            ["v=spf1 mx -all"],
            "mismatch",
            "the SPF record authorises senders (mx); alias.test sends no mail: publish v=spf1 -all",
        ),
        (
            ["v=spf1 ~all"],
            "mismatch",
            "the SPF record ends in ~all, not -all: receivers may still accept forged mail; "
            "alias.test sends no mail: publish v=spf1 -all",
        ),
        (
            ["v=spf1 redirect=a.example"],
            "mismatch",
            "the SPF record hands the decision to a.example (redirect=a.example); "
            "alias.test sends no mail: publish v=spf1 -all",
        ),
        (
            ["v=spf1"],
            "mismatch",
            "the SPF record has no -all: forged mail gets neutral; alias.test sends no mail: "
            "publish v=spf1 -all",
        ),
        (["google-site-verification=x"], "missing", "no SPF record (v=spf1)"),
    ],
)
def test_it_judges_an_alias_spf_by_what_it_lets_send(dns_server, published, status, detail):
    from mailadmin.dns import make_async_resolver

    dns_server.set_zone("alias.test", {"TXT": published})
    record = alias_records(alias="alias.test", domain="a.example", hostname=HOST)[1]
    ((got, found, diagnostic),) = checks.run_sync(
        checks.check_domain(
            [record], resolver=make_async_resolver(), hostname=HOST, outbound_ips=[HOST_IP]
        )
    )
    assert (got, diagnostic) == (status, detail)
    assert found == published


# --- the domain's check -------------------------------------------------------------------


def test_it_checks_a_well_published_alias_with_its_domain(
    admin_a, domain_a, alias_a, dns_server, check_now
):
    own, extra = expected_records(domain=domain_a), alias_set(alias_a)
    publish(dns_server, own + extra)
    run = check_now(admin_a, domain_a)
    total = len(own) + len(extra)
    assert run.state == TaskRun.State.SUCCESS
    assert (run.done, run.total) == (total, total)
    assert run.message == f"{total} of {total} records found"
    assert run.result["rows"][len(own) :] == [
        {"name": "MX a-alias.example.", "ok": True, "detail": "found"},
        {
            "name": "TXT a-alias.example.",
            "ok": True,
            "detail": "no server may send as a-alias.example",
        },
        {"name": "TXT _dmarc.a-alias.example.", "ok": True, "detail": "found"},
    ]
    stored = DnsCheckResult.objects.filter(alias=alias_a).order_by("id")
    assert [(r.record_type, r.name, r.status) for r in stored] == [
        ("MX", "a-alias.example.", "ok"),
        ("TXT", "a-alias.example.", "ok"),
        ("TXT", "_dmarc.a-alias.example.", "ok"),
    ]
    assert {r.domain_id for r in stored} == {domain_a.pk}
    assert {r.tenant_id for r in stored} == {domain_a.tenant_id}
    assert DnsCheckResult.objects.filter(alias=None).count() == len(own)
    assert DomainProfile.objects.get(domain=domain_a).dns_status == "ok"


def test_it_fails_an_alias_whose_mx_points_elsewhere_and_has_no_spf(
    admin_a, domain_a, alias_a, dns_server, check_now
):
    own = expected_records(domain=domain_a)
    publish(dns_server, own)
    dns_server.set_zone("a-alias.example", {"MX": [(10, "mx.elsewhere.test.")]})
    run = check_now(admin_a, domain_a)
    assert run.state == TaskRun.State.FAILURE
    total = len(own) + 3
    assert run.message == f"{len(own)} of {total} records found"
    assert run.result["rows"][len(own) :] == [
        {"name": "MX a-alias.example.", "ok": False, "detail": f"no MX points to {HOST}."},
        {
            "name": "TXT a-alias.example.",
            "ok": False,
            "detail": "no TXT record at a-alias.example.",
        },
        {
            "name": "TXT _dmarc.a-alias.example.",
            "ok": False,
            "detail": "_dmarc.a-alias.example. does not exist (NXDOMAIN)",
        },
    ]
    mx = DnsCheckResult.objects.get(alias=alias_a, record_type="MX")
    assert (mx.status, mx.found, mx.required) == ("mismatch", "10 mx.elsewhere.test.", True)
    spf = DnsCheckResult.objects.get(alias=alias_a, name="a-alias.example.", record_type="TXT")
    assert (spf.status, spf.required) == ("missing", True)
    # the domain's own records are all right, but mail to the alias never arrives here
    assert DomainProfile.objects.get(domain=domain_a).dns_status == "failing"


def test_it_checks_aliases_in_check_all_with_one_query_per_batch(
    admin_a, domain_a, alias_a, make_domain, tenant_a, dns_server, monkeypatch
):
    others = [make_domain(f"{label}.example", tenant=tenant_a) for label in ("c", "d", "e")]
    for domain in (domain_a, *others):
        publish(dns_server, expected_records(domain=domain))
    publish(dns_server, alias_set(alias_a), replace={("TXT", "a-alias.example."): ["v=spf1 mx"]})
    monkeypatch.setattr(services, "CHECK_ALL_BATCH", 2)  # two batches
    with CaptureQueriesContext(connection) as captured:
        outcome = services.domain_dns_check_all_run(actor=admin_a, progress=_Progress())
    assert outcome.message == "4 domains: 3 ok, 0 partial, 1 failing, 0 could not be checked"
    aliases = [q["sql"] for q in captured if 'FROM "domains_domainalias"' in q["sql"]]
    # one read per batch; storing locks the checked aliases of the batch that has one
    # (FOR UPDATE where the database has it: SQLite locks the whole file instead)
    reads = [sql for sql in aliases if '"domain_id" IN' in sql]
    [lock] = [sql for sql in aliases if sql not in reads]
    assert len(reads) == 2
    assert ("FOR UPDATE" in lock) == connection.features.has_select_for_update
    spf = DnsCheckResult.objects.get(alias=alias_a, name="a-alias.example.", record_type="TXT")
    assert (spf.status, spf.detail) == (
        "mismatch",
        "the SPF record authorises senders (mx); a-alias.example sends no mail: "
        "publish v=spf1 -all",
    )
    statuses = dict(DomainProfile.objects.values_list("domain__name", "dns_status"))
    assert statuses == {
        "a.example": "failing",
        "c.example": "ok",
        "d.example": "ok",
        "e.example": "ok",
    }


def test_it_checks_aliases_in_check_all_as_a_run(
    admin_a, domain_a, alias_a, dns_server, django_capture_on_commit_callbacks
):
    publish(dns_server, expected_records(domain=domain_a) + alias_set(alias_a))
    with django_capture_on_commit_callbacks(execute=False):
        run = domain_dns_check_all_start(actor=admin_a)
    domain_dns_check_all_task(str(run.id))
    run.refresh_from_db()
    assert run.message == "1 domains: 1 ok, 0 partial, 0 failing, 0 could not be checked"
    assert DnsCheckResult.objects.filter(alias=alias_a, status="ok").count() == 3


def test_it_drops_an_alias_results_with_the_alias(
    admin_a, domain_a, alias_a, dns_server, check_now
):
    publish(dns_server, expected_records(domain=domain_a) + alias_set(alias_a))
    check_now(admin_a, domain_a)
    assert DnsCheckResult.objects.filter(alias=alias_a).count() == 3
    domain_alias_delete(actor=admin_a, alias=alias_a)
    assert not DnsCheckResult.objects.exclude(alias=None).exists()
    assert DnsCheckResult.objects.filter(domain=domain_a).count() == len(
        expected_records(domain=domain_a)
    )


@pytest.mark.parametrize(
    ("own_skipped", "after"),
    [
        ((), "ok"),  # failing only because of the alias
        (("_smtp._tls.a.example.",), "partial"),  # an optional record of its own is missing
        (("_dmarc.a.example.",), "failing"),  # a required record of its own is missing
    ],
)
def test_it_recomputes_the_domain_status_without_the_removed_alias(
    admin_a, domain_a, alias_a, dns_server, check_now, own_skipped, after
):
    publish(dns_server, expected_records(domain=domain_a), skip=own_skipped)
    dns_server.set_zone("a-alias.example", {"MX": [(10, "mx.elsewhere.test.")]})
    check_now(admin_a, domain_a)
    before = DomainProfile.objects.get(domain=domain_a)
    assert before.dns_status == "failing"
    dns_server.queries.clear()
    domain_alias_delete(actor=admin_a, alias=alias_a)
    profile = DomainProfile.objects.get(domain=domain_a)
    assert profile.dns_status == after
    assert profile.dns_checked_at == before.dns_checked_at  # no new check: no lookups
    assert dns_server.queries == []
    event = AuditEvent.objects.filter(action="domainalias.delete").get()
    changed = {"dns_status": after} if after != "failing" else {}
    assert event.changes == {"alias": "a-alias.example", "domain": "a.example", **changed}


def test_it_keeps_the_status_of_a_domain_never_checked_when_its_alias_goes(
    admin_a, domain_a, alias_a
):
    DomainProfile.objects.create(domain=domain_a, tenant=domain_a.tenant)
    domain_alias_delete(actor=admin_a, alias=alias_a)
    assert DomainProfile.objects.get(domain=domain_a).dns_status == "unknown"


def test_it_stores_the_check_of_a_domain_whose_alias_went_away_meanwhile(
    admin_a, domain_a, alias_a, dns_server, check_now, monkeypatch
):
    publish(dns_server, expected_records(domain=domain_a) + alias_set(alias_a))
    check_many = services._check_many

    def alias_removed_while_checking(*args, **kwargs):
        found = check_many(*args, **kwargs)
        domain_alias_delete(actor=admin_a, alias=alias_a)
        return found

    monkeypatch.setattr(services, "_check_many", alias_removed_while_checking)
    run = check_now(admin_a, domain_a)
    assert run.state == TaskRun.State.SUCCESS
    assert not DnsCheckResult.objects.exclude(alias=None).exists()
    assert DnsCheckResult.objects.filter(domain=domain_a).count() == len(
        expected_records(domain=domain_a)
    )


# --- GET /api/dns/records/{name} ----------------------------------------------------------


def test_it_lists_an_alias_records_by_its_name(api_a, alias_a):
    for name in ("a-alias.example", "A-Alias.Example."):
        response = api_a.get(f"/api/dns/records/{name}")
        assert response.status_code == 200, response.content
        assert response.json() == {
            "data": [
                {"type": "MX", "name": "a-alias.example.", "content": f"10 {HOST}."},
                {"type": "TXT", "name": "a-alias.example.", "content": '"v=spf1 -all"'},
                {
                    "type": "TXT",
                    "name": "_dmarc.a-alias.example.",
                    "content": '"v=DMARC1; p=reject"',
                },
            ]
        }


def test_it_offers_an_alias_its_own_zone_file(api_a, alias_a):
    response = api_a.get("/api/dns/records/a-alias.example?format=zone")
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="a-alias.example.zone"'
    text = response.content.decode()
    assert text.startswith("; DNS records for a-alias.example.")
    assert "$ORIGIN a-alias.example." in text
    assert f"a-alias.example.\t3600\tIN\tMX\t10 {HOST}." in text
    assert '_dmarc.a-alias.example.\t3600\tIN\tTXT\t"v=DMARC1; p=reject"' in text
    assert "a.example" not in text.replace("a-alias.example", "")


def test_it_writes_an_alias_zone_that_bind_loads(api_a, alias_a, tmp_path):
    text = api_a.get("/api/dns/records/a-alias.example?format=zone").content.decode()
    checkzone = shutil.which("named-checkzone") or "/usr/bin/named-checkzone"
    if not shutil.which(checkzone):
        skip_or_fail("named-checkzone missing (apt-get install bind9-utils)")
    path = tmp_path / "a-alias.example.zone"
    path.write_text(text)
    result = subprocess.run(
        [checkzone, "-i", "local", "a-alias.example", str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_it_hides_another_tenants_alias_like_an_unknown_domain(api_a, api_b, alias_b):
    for path in (
        "/api/dns/records/b-alias.example",
        "/api/dns/records/nowhere.example",
        "/api/dns/records/b-alias.example?format=zone",
    ):
        response = api_a.get(path)
        assert response.status_code == 404, path
        assert response.json() == NOT_FOUND
    assert api_b.get("/api/dns/records/b-alias.example").status_code == 200


def test_it_lets_a_superadmin_list_any_alias(api_root, alias_b):
    assert api_root.get("/api/dns/records/b-alias.example").status_code == 200


# --- the domain page ------------------------------------------------------------------------


def test_it_shows_each_alias_records_with_their_latest_check(
    console, admin_a, domain_a, alias_a, dns_server, check_now
):
    publish(dns_server, expected_records(domain=domain_a))
    dns_server.set_zone("a-alias.example", {"MX": [(10, "mx.elsewhere.test.")]})
    check_now(admin_a, domain_a)
    body = console(admin_a).get(f"/domains/{domain_a.pk}/").content.decode()
    assert 'id="alias-records"' in body
    assert f'id="dns-records-alias-{alias_a.pk}"' in body
    section = body[body.index('id="alias-records"') : body.index('id="dkim-keys"')]
    assert "a-alias.example" in section and "Required records missing or wrong" in section
    assert f'data-copy="10 {HOST}."' in section and 'data-copy="v=spf1 -all"' in section
    assert "10 mx.elsewhere.test." in section and f"no MX points to {HOST}." in section
    assert "no TXT record at a-alias.example." in section
    assert 'href="/api/dns/records/a-alias.example?format=zone"' in section
    # the domain's own table and zone stay the domain's
    own = body[body.index('id="dns-records"') : body.index('id="alias-records"')]
    assert "a-alias.example" not in own


def test_it_shows_an_alias_added_after_the_check_as_not_checked(
    console, admin_a, domain_a, alias_a
):
    body = console(admin_a).get(f"/domains/{domain_a.pk}/").content.decode()
    section = body[body.index('id="alias-records"') : body.index('id="dkim-keys"')]
    assert "Not checked yet" in section and section.count("Not checked</span>") == 3


def test_it_shows_no_alias_section_without_aliases(console, admin_a, domain_a, alias_b):
    body = console(admin_a).get(f"/domains/{domain_a.pk}/").content.decode()
    assert 'id="alias-records"' not in body
    assert "b-alias.example" not in body


def test_it_keeps_another_tenants_alias_records_off_the_page(
    console, admin_b, domain_a, alias_a, alias_b
):
    assert console(admin_b).get(f"/domains/{domain_a.pk}/").status_code == 404
    body = console(admin_b).get(f"/domains/{alias_b.domain_id}/").content.decode()
    assert "b-alias.example" in body and "a-alias.example" not in body


def test_it_shows_the_page_with_aliases_in_constant_queries(
    console, admin_a, domain_a, django_assert_max_num_queries
):
    DomainProfile.objects.create(domain=domain_a, tenant=domain_a.tenant)
    for label in ("one", "two", "three", "four", "five"):
        domain_alias_create(actor=admin_a, domain=domain_a, alias=f"{label}.example")
    client = console(admin_a)
    # as without aliases (test_domain_pages): the aliases are read once for the records
    # and the aliases section, their results with the domain's
    with django_assert_max_num_queries(12):
        body = client.get(f"/domains/{domain_a.pk}/").content.decode()
    assert body.count('class="dns-records"') == 6
    with django_assert_max_num_queries(12):
        assert client.get(f"/domains/{domain_a.pk}/records/").status_code == 200
