"""The whole record set (issue 9 item 4): report addresses that come back here, MTA-STS
(record, policy host, the policy served), TLS-RPT, SRV, TLSA of the configured certificate;
each checked on the live DNS fixture, and the zone file loading in named-checkzone."""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from apps.domains import records, selectors, services, zone
from apps.domains.models import DnsCheckResult, DomainProfile
from apps.domains.tasks import domain_dns_check_task
from tests.conftest import skip_or_fail
from tests.unit.domains.test_checks import HOST, HOST_IP, check_record
from tests.unit.domains.test_dns_task import publish

ZONE = "example.test"


def _record(type_: str, name: str, content: str) -> dict:
    return {"type": type_, "name": name, "content": content, "required": False, "purpose": ""}


@pytest.fixture
def check(dns_server):
    dns_server.set_zone(HOST, {"A": [HOST_IP]})

    def run(type_: str, name: str, content: str):
        return check_record(_record(type_, name, content))

    return run


@pytest.fixture
def certificate(tmp_path, settings):
    """A self-signed certificate configured as MAILADMIN_TLS_CERT_FILE; returns the TLSA
    3 1 1 data its key should publish (computed here independently)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mx.example.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    path = tmp_path / "cert.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    settings.MAILADMIN_TLS_CERT_FILE = str(path)
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).hexdigest()


# --- checks on the live DNS fixture ----------------------------------------------------

STS = "v=STSv1; id=abc123"


def test_it_accepts_the_mta_sts_record_with_our_policy_id(dns_server, check):
    dns_server.set_zone(f"_mta-sts.{ZONE}", {"TXT": ["v=STSv1;  id=abc123 ;"]})
    assert check("TXT", f"_mta-sts.{ZONE}.", STS) == ("ok", ["v=STSv1;  id=abc123 ;"], "")


def test_it_says_an_old_mta_sts_id_is_a_mismatch(dns_server, check):
    dns_server.set_zone(f"_mta-sts.{ZONE}", {"TXT": ["v=STSv1; id=old1"]})
    assert check("TXT", f"_mta-sts.{ZONE}.", STS) == (
        "mismatch",
        ["v=STSv1; id=old1"],
        "the policy id is old1, the policy served here has id abc123: senders keep using "
        "the policy they cached",
    )


def test_it_says_a_missing_or_doubled_mta_sts_record(dns_server, check):
    dns_server.set_zone(f"_mta-sts.{ZONE}", {"TXT": ["something else"]})
    assert check("TXT", f"_mta-sts.{ZONE}.", STS) == (
        "missing",
        ["something else"],
        "no MTA-STS record (v=STSv1)",
    )
    dns_server.set_zone(f"_mta-sts.{ZONE}", {"TXT": [STS, "v=STSv1; id=x"]})
    status, _, detail = check("TXT", f"_mta-sts.{ZONE}.", STS)
    assert (status, detail) == (
        "mismatch",
        "2 MTA-STS records; RFC 8461 allows one, so senders ignore MTA-STS",
    )
    status, _, detail = check("TXT", f"_mta-sts.nothing.{ZONE}.", STS)
    assert status == "missing" and "NXDOMAIN" in detail


def test_it_says_a_lookup_that_failed_is_an_error(dns_server, check):
    dns_server.set_zone(f"_mta-sts.{ZONE}", "SERVFAIL")
    status, found, detail = check("TXT", f"_mta-sts.{ZONE}.", STS)
    assert (status, found) == ("error", [])
    assert "SERVFAIL" in detail


def test_it_finds_the_mta_sts_policy_host_through_its_cname(dns_server, check):
    dns_server.set_zone(f"mta-sts.{ZONE}", {"CNAME": [f"{HOST}."]})
    assert check("CNAME", f"mta-sts.{ZONE}.", f"{HOST}.")[0] == "ok"
    dns_server.set_zone(f"mta-sts.{ZONE}", {"CNAME": ["elsewhere.test."]})
    assert check("CNAME", f"mta-sts.{ZONE}.", f"{HOST}.") == (
        "mismatch",
        ["elsewhere.test."],
        f"the CNAME does not point to {HOST}.",
    )


def test_it_compares_tls_rpt_by_its_tags(dns_server, check):
    expected = f"v=TLSRPTv1; rua=mailto:tls-reports@{ZONE}"
    dns_server.set_zone(
        f"_smtp._tls.{ZONE}", {"TXT": [f"v=TLSRPTv1;rua=mailto:tls-reports@{ZONE};"]}
    )
    assert check("TXT", f"_smtp._tls.{ZONE}.", expected)[0] == "ok"
    dns_server.set_zone(f"_smtp._tls.{ZONE}", {"TXT": ["v=TLSRPTv1; rua=mailto:x@other.test"]})
    assert check("TXT", f"_smtp._tls.{ZONE}.", expected) == (
        "mismatch",
        ["v=TLSRPTv1; rua=mailto:x@other.test"],
        "none of the 1 TXT records matches",
    )


def test_it_notes_dmarc_reports_that_do_not_come_back_here(dns_server, check):
    ours = (
        f"v=DMARC1; p=quarantine; rua=mailto:dmarc-reports@{ZONE}; ruf=mailto:dmarc-reports@{ZONE}"
    )
    here = f"v=DMARC1; p=reject; rua=mailto:DMARC-Reports@{ZONE}!10m,mailto:x@{ZONE}"
    dns_server.set_zone(f"_dmarc.{ZONE}", {"TXT": [here]})
    assert check("TXT", f"_dmarc.{ZONE}.", ours) == ("ok", [here], "")
    elsewhere = f"v=DMARC1; p=reject; rua=mailto:x@{ZONE}"
    dns_server.set_zone(f"_dmarc.{ZONE}", {"TXT": [elsewhere]})
    assert check("TXT", f"_dmarc.{ZONE}.", ours) == (
        "ok",
        [elsewhere],
        f"valid, but aggregate reports do not go to dmarc-reports@{ZONE}, so they will not "
        "appear under Reports",
    )


def test_it_checks_srv_records_including_not_offered_ones(dns_server, check):
    dns_server.set_zone(f"_jmap._tcp.{ZONE}", {"SRV": [(0, 1, 443, f"{HOST}.")]})
    assert check("SRV", f"_jmap._tcp.{ZONE}.", f"0 1 443 {HOST}.")[0] == "ok"
    dns_server.set_zone(f"_caldav._tcp.{ZONE}", {"SRV": [(0, 0, 0, ".")]})
    assert check("SRV", f"_caldav._tcp.{ZONE}.", "0 0 0 .")[0] == "ok"
    dns_server.set_zone(f"_carddav._tcp.{ZONE}", {"SRV": [(0, 1, 80, f"{HOST}.")]})
    assert check("SRV", f"_carddav._tcp.{ZONE}.", "0 0 0 .") == (
        "mismatch",
        [f"0 1 80 {HOST}."],
        "no SRV record for . port 0",
    )
    assert check("SRV", f"_autodiscover._tcp.{ZONE}.", f"0 1 443 {HOST}.")[0] == "missing"


def test_it_checks_tlsa_by_its_data_in_any_case(dns_server, check):
    data = "ab" * 32
    dns_server.set_zone(f"_25._tcp.{HOST}", {"TLSA": [(3, 1, 1, data)]})
    status, found, _ = check("TLSA", f"_25._tcp.{HOST}.", "3 1 1 " + data.upper())
    assert (status, found) == ("ok", ["3 1 1 " + data])
    dns_server.set_zone(f"_25._tcp.{HOST}", {"TLSA": [(3, 1, 1, "cd" * 32)]})
    status, _, detail = check("TLSA", f"_25._tcp.{HOST}.", "3 1 1 " + data)
    assert status == "mismatch"
    assert detail.startswith("no TLSA record matches this server's certificate key")
    status, _, detail = check("TLSA", f"_465._tcp.{HOST}.", "3 1 1 " + data)
    assert (status, detail) == ("missing", f"_465._tcp.{HOST}. does not exist (NXDOMAIN)")


# --- the record set from the settings --------------------------------------------------


def test_it_publishes_tlsa_only_for_a_configured_certificate(settings, domain_a, certificate):
    settings.MAILADMIN_HOSTNAME = "mx.example.test"
    tlsa = [r for r in selectors.expected_records(domain=domain_a) if r["type"] == "TLSA"]
    assert [(r["name"], r["content"]) for r in tlsa] == [
        ("_25._tcp.mx.example.test.", f"3 1 1 {certificate}")
    ]
    settings.MAILADMIN_TLS_CERT_FILE = None
    assert not [r for r in selectors.expected_records(domain=domain_a) if r["type"] == "TLSA"]
    settings.MAILADMIN_TLS_CERT_FILE = "/nonexistent/cert.pem"  # unreadable: no record
    assert not [r for r in selectors.expected_records(domain=domain_a) if r["type"] == "TLSA"]


def test_it_follows_the_report_and_mta_sts_settings(settings, domain_a):
    settings.MAILADMIN_DMARC_REPORT_LOCALPART = "rua"
    settings.MAILADMIN_MTA_STS_MODE = "enforce"
    by_name = {r["name"]: r["content"] for r in selectors.expected_records(domain=domain_a)}
    assert by_name["_dmarc.a.example."].endswith(
        "rua=mailto:rua@a.example; ruf=mailto:rua@a.example"
    )
    assert by_name["_mta-sts.a.example."] == (
        f"v=STSv1; id={records.mta_sts_id(selectors.mta_sts_policy())}"
    )
    assert "mode: enforce\r\n" in selectors.mta_sts_policy()


def _checkzone(text: str, origin: str, tmp_path) -> None:
    checkzone = shutil.which("named-checkzone") or "/usr/bin/named-checkzone"
    if not shutil.which(checkzone):
        skip_or_fail("named-checkzone missing (apt-get install bind9-utils)")
    path = tmp_path / f"{origin}.zone"
    path.write_text(text)
    result = subprocess.run(
        [checkzone, "-i", "local", origin, str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr + text
    assert "OK" in result.stdout
    assert "ignoring out-of-zone" not in result.stdout + result.stderr


@pytest.mark.parametrize("hostname", ["mail.a.example", "mx.example.test"])
def test_it_exports_the_whole_set_as_a_zone_bind_loads(
    settings, domain_a, certificate, tmp_path, hostname
):
    settings.MAILADMIN_HOSTNAME = hostname
    found = selectors.expected_records(domain=domain_a)
    text = zone.zone_file(
        domain="a.example", records=found, hostname=hostname, host_addresses=["192.0.2.25"]
    )
    _checkzone(text, "a.example", tmp_path)
    tlsa = f"_25._tcp.{hostname}.\t3600\tIN\tTLSA\t3 1 1 {certificate}"
    assert '_mta-sts.a.example.\t3600\tIN\tTXT\t"v=STSv1; id=' in text
    assert "_caldav._tcp.a.example.\t3600\tIN\tSRV\t0 0 0 ." in text
    if hostname.endswith(".a.example"):
        assert f"\n{tlsa}\n" in text
        assert "\nmail.a.example.\t3600\tIN\tA\t192.0.2.25\n" in text
    else:  # the MX host's zone holds it: shown, commented out
        assert f"\n; {tlsa}\n" in text


# --- the MTA-STS policy served for mta-sts.<domain> ------------------------------------


def test_it_serves_the_policy_to_anyone_for_a_hosted_domain(client, settings, domain_a):
    settings.MAILADMIN_HOSTNAME = "mx.example.test"
    settings.MAILADMIN_MTA_STS_MODE = "enforce"
    response = client.get("/.well-known/mta-sts.txt", HTTP_HOST="MTA-STS.a.example:443")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response.content == (
        b"version: STSv1\r\nmode: enforce\r\nmx: mx.example.test\r\nmax_age: 604800\r\n"
    )
    sts = next(
        r for r in selectors.expected_records(domain=domain_a) if r["name"].startswith("_mta-sts")
    )
    assert sts["content"] == f"v=STSv1; id={records.mta_sts_id(response.content.decode())}"


def test_it_serves_no_policy_for_other_hosts(client, domain_a):
    response = client.get("/.well-known/mta-sts.txt", HTTP_HOST="mta-sts.unknown.example")
    assert response.status_code == 404
    assert response.content == b"No MTA-STS policy for this domain.\n"
    response = client.post("/.well-known/mta-sts.txt", HTTP_HOST="mta-sts.a.example")
    assert response.status_code == 405
    # Not an mta-sts host: the request goes on (and the path is no page here).
    assert client.get("/.well-known/mta-sts.txt", HTTP_HOST="localhost").status_code == 404


# --- a whole domain, checked by the task ----------------------------------------------


def test_it_finds_the_whole_set_of_a_well_published_domain(
    admin_a, domain_a, dns_server, settings, certificate, django_capture_on_commit_callbacks
):
    settings.MAILADMIN_HOSTNAME = HOST
    expected = selectors.expected_records(domain=domain_a)
    assert {"TLSA", "SRV", "CNAME", "TXT", "MX"} == {r["type"] for r in expected}
    publish(dns_server, expected)
    with django_capture_on_commit_callbacks(execute=False):
        run = services.domain_dns_check_start(actor=admin_a, domain=domain_a)
    domain_dns_check_task(str(run.id))
    results = {(r.record_type, r.name): r for r in DnsCheckResult.objects.filter(domain=domain_a)}
    assert len(results) == len(expected)
    assert {r.status for r in results.values()} == {"ok"}, {
        k: r.detail for k, r in results.items() if r.status != "ok"
    }
    dns_server.set_zone(f"_mta-sts.{domain_a.name}", {"TXT": ["v=STSv1; id=old"]})
    dns_server.set_zone(f"_25._tcp.{HOST}", {"TLSA": [(3, 1, 1, "00" * 32)]})
    with django_capture_on_commit_callbacks(execute=False):
        run = services.domain_dns_check_start(actor=admin_a, domain=domain_a)
    domain_dns_check_task(str(run.id))
    wrong = DnsCheckResult.objects.filter(domain=domain_a).exclude(status="ok")
    assert sorted((r.record_type, r.status) for r in wrong) == [
        ("TLSA", "mismatch"),
        ("TXT", "mismatch"),
    ]
    assert DomainProfile.objects.get(domain=domain_a).dns_status == "partial"  # optional ones
