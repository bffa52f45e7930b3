"""Verified outbound TLS over real peers on loopback: MTA-STS policies fetched over HTTPS
from a server whose certificate a private CA issued (trusted through
MAILADMIN_TLS_CA_FILE), MX hosts answering with that CA's certificates or a self-signed
one, and DANE TLSA records served by the test DNS server.

Not tested here (and not done): DNSSEC validation itself. The test DNS server sets the AD
bit for names a test marks authenticated, standing in for a validating resolver, which
is what the code trusts (as Postfix does)."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest

from apps.queue import delivery, tls_policy
from apps.queue.models import QueueDomain, StsPolicyCache
from apps.queue.services import enqueue
from apps.reports.models import OutboundTlsResult
from tests.support.smtp_sink import SmtpSink
from tests.support.tls_ca import Authority, PolicyServer
from tests.unit.queue.conftest import REMOTE, message

pytestmark = pytest.mark.django_db

POLICY = "version: STSv1\r\nmode: {mode}\r\nmx: {mx}\r\nmax_age: 86400\r\n"


# --- pure parts ---------------------------------------------------------------------------


def test_it_parses_a_policy_and_matches_mx_patterns():
    policy = tls_policy.parse_policy(
        "version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmax_age: 604800\n"
    )
    assert (policy.mode, policy.mx, policy.max_age) == (
        "enforce", ("mail.example.com", "*.example.net"), 604800)  # fmt: skip
    assert policy.matches("mail.example.com") and policy.matches("MAIL.EXAMPLE.COM.")
    assert policy.matches("mx1.example.net")
    assert not policy.matches("a.b.example.net")  # one label only (RFC 8461 4.1)
    assert not policy.matches("example.net") and not policy.matches("other.example.com")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("version: STSv2\nmode: enforce\nmx: a\nmax_age: 1\n", "version is not STSv1"),
        ("version: STSv1\nmode: strict\nmx: a\nmax_age: 1\n",
         "mode must be enforce, testing or none: 'strict'"),
        ("version: STSv1\nmode: enforce\nmx: a\nmax_age: 31557601\n",
         "max_age is not a number up to 31557600"),
        ("version: STSv1\nmode: enforce\nmax_age: 1\n", "no mx lines"),
        ("<html>", "not a key: value line: '<html>'"),
    ],
)  # fmt: skip
def test_it_refuses_an_invalid_policy_saying_why(text, reason):
    with pytest.raises(tls_policy.PolicyError) as caught:
        tls_policy.parse_policy(text)
    assert (caught.value.result_type, str(caught.value)) == ("sts-policy-invalid", reason)


def test_tlsa_matching_covers_selectors_and_matching_types(tmp_path):
    issued = Authority(tmp_path).issue("mx.remote.test")
    other = Authority(tmp_path).issue("mx.remote.test")
    der, spki = issued.der, issued.spki

    def rec(selector, mtype, data, usage=3):
        return (tls_policy.Tlsa(usage, selector, mtype, data),)

    for selector, data in ((0, der), (1, spki)):
        assert tls_policy.tlsa_match(der, rec(selector, 0, data))
        assert tls_policy.tlsa_match(der, rec(selector, 1, hashlib.sha256(data).digest()))
        assert tls_policy.tlsa_match(der, rec(selector, 2, hashlib.sha512(data).digest()))
        assert not tls_policy.tlsa_match(other.der, rec(selector, 1, hashlib.sha256(data).digest()))
    # DANE-TA (2) and PKIX (0, 1) are not supported: such records never match
    assert not tls_policy.tlsa_match(der, rec(1, 1, hashlib.sha256(spki).digest(), usage=2))


# --- end to end ---------------------------------------------------------------------------


@pytest.fixture
def ca(tmp_path, settings):
    authority = Authority(tmp_path)
    settings.MAILADMIN_TLS_CA_FILE = str(authority.cert_file)
    return authority


@pytest.fixture
def world(dns_server, settings):
    dns_server.set_zone(REMOTE, {"MX": [(10, "mx.remote.test.")]})
    dns_server.set_zone("mx.remote.test", {"A": ["127.0.0.1"]})
    return dns_server


@pytest.fixture
def policy_host(ca, world, settings):
    """mta-sts.remote.test on loopback with a certificate from `ca`; the TXT record."""
    server = PolicyServer(ca.issue("mta-sts.remote.test").server_context()).start()
    settings.MAILADMIN_MTA_STS_HTTPS_PORT = server.port
    world.set_zone("mta-sts.remote.test", {"A": ["127.0.0.1"]})
    world.set_zone("_mta-sts.remote.test", {"TXT": ["v=STSv1; id=20261130"]})
    yield server
    server.stop()


@pytest.fixture
def sinks(settings):
    started = []

    def start(context=None) -> SmtpSink:
        sink = SmtpSink(tls_context=context).start()
        settings.MAILADMIN_SMTP_REMOTE_PORT = sink.port
        started.append(sink)
        return sink

    yield start
    for sink in started:
        sink.stop()


def send():
    queued = enqueue(return_path="", recipients=["a@remote.test"], data=message())
    entry = QueueDomain.objects.get(message=queued)
    delivery.deliver(entry.pk, drain=False)
    entry.refresh_from_db()
    return entry


def outcome() -> OutboundTlsResult:
    return OutboundTlsResult.objects.exclude(mx_host="").get()


def test_sts_enforce_delivers_over_verified_tls(policy_host, ca, sinks):
    policy_host.body = POLICY.format(mode="enforce", mx="mx.remote.test")
    sink = sinks(ca.issue("mx.remote.test").server_context())
    entry = send()
    assert entry.status == "delivered" and entry.tls is True
    assert sink.wait_for(1)[0].tls
    result = outcome()
    assert (result.success, result.policy_type, result.policy_string) == (
        True, "sts",
        ["version: STSv1", "mode: enforce", "mx: mx.remote.test", "max_age: 86400"],
    )  # fmt: skip
    cached = StsPolicyCache.objects.get(domain="remote.test")
    assert (cached.policy_id, cached.mode, cached.mx) == ("20261130", "enforce", ["mx.remote.test"])
    assert cached.expires - cached.fetched == timedelta(seconds=86400)
    assert policy_host.requests == ["mta-sts.remote.test/.well-known/mta-sts.txt"]


def test_sts_enforce_defers_an_mx_with_an_untrusted_certificate(
    policy_host, sinks, tmp_path, settings
):
    policy_host.body = POLICY.format(mode="enforce", mx="mx.remote.test")
    stranger = Authority(tmp_path, "not trusted").issue("mx.remote.test")
    sink = sinks(stranger.server_context())
    entry = send()
    assert entry.status == "scheduled" and entry.retry_num == 1  # retried later
    assert entry.last_error == (
        f"Connection failed: mx.remote.test[127.0.0.1]:{sink.port}: MTA-STS: "
        "mx.remote.test: unable to get local issuer certificate"
    )
    assert sink.messages == []
    result = outcome()
    assert (result.success, result.result_type, result.policy_type) == (
        False, "certificate-not-trusted", "sts")  # fmt: skip


@pytest.mark.parametrize(
    ("names", "expired", "result_type", "reason"),
    [
        (("other.remote.test",), False, "certificate-host-mismatch",
         "Hostname mismatch, certificate is not valid for 'mx.remote.test'."),
        (("mx.remote.test",), True, "certificate-expired", "certificate has expired"),
    ],
)  # fmt: skip
def test_sts_enforce_defers_a_wrong_name_or_an_expired_certificate(
    policy_host, ca, sinks, names, expired, result_type, reason
):
    policy_host.body = POLICY.format(mode="enforce", mx="mx.remote.test")
    sink = sinks(ca.issue(*names, expired=expired).server_context())
    entry = send()
    assert entry.status == "scheduled"
    assert entry.last_error.endswith(f"MTA-STS: mx.remote.test: {reason}")
    assert sink.messages == []
    assert outcome().result_type == result_type


def test_sts_enforce_defers_an_mx_without_starttls(policy_host, sinks):
    policy_host.body = POLICY.format(mode="enforce", mx="mx.remote.test")
    sink = sinks()  # no STARTTLS
    entry = send()
    assert entry.last_error == (
        f"Connection failed: mx.remote.test[127.0.0.1]:{sink.port}: MTA-STS: "
        "mx.remote.test does not offer STARTTLS"
    )
    assert outcome().result_type == "starttls-not-supported"


def test_sts_enforce_skips_an_mx_the_policy_does_not_name(policy_host, ca, sinks):
    policy_host.body = POLICY.format(mode="enforce", mx="mx.elsewhere.test")
    sink = sinks(ca.issue("mx.remote.test").server_context())
    entry = send()
    assert entry.status == "scheduled"
    assert entry.last_error == (
        "Connection failed: mx.remote.test: MTA-STS: mx.remote.test is not an MX host of the "
        "domain's MTA-STS policy"
    )
    assert sink.messages == [] and sink.handler.connections == 0
    assert outcome().result_type == "validation-failure"


def test_sts_testing_delivers_anyway_and_reports_the_failure(policy_host, sinks, tmp_path):
    policy_host.body = POLICY.format(mode="testing", mx="mx.remote.test")
    sink = sinks(Authority(tmp_path, "not trusted").issue("mx.remote.test").server_context())
    entry = send()
    assert entry.status == "delivered" and entry.tls is True  # opportunistic TLS
    assert sink.wait_for(1)[0].tls
    result = outcome()
    assert (result.success, result.result_type, result.policy_type) == (
        False, "certificate-not-trusted", "sts")  # fmt: skip


def test_a_cached_policy_is_used_until_the_id_changes_and_survives_a_removed_record(
    policy_host, ca, sinks, world
):
    policy_host.body = POLICY.format(mode="enforce", mx="mx.remote.test")
    sinks(ca.issue("mx.remote.test").server_context())
    send()
    tls_policy.clear_caches()  # the in-process minute is over: DNS is asked again
    send()
    assert len(policy_host.requests) == 1  # same id: the cached policy
    world.set_zone("_mta-sts.remote.test", {"TXT": ["v=STSv1; id=20261201"]})
    policy_host.body = POLICY.format(mode="enforce", mx="mx.elsewhere.test")
    tls_policy.clear_caches()
    assert send().status == "scheduled"  # the new policy names another MX
    assert len(policy_host.requests) == 2
    world.set_zone("_mta-sts.remote.test", {})  # an attacker strips the record
    tls_policy.clear_caches()
    assert send().status == "scheduled"  # still enforced until max_age runs out
    assert len(policy_host.requests) == 2


def test_a_policy_that_cannot_be_fetched_is_reported_and_mail_flows(policy_host, ca, sinks):
    policy_host.status = 404
    sink = sinks(ca.issue("mx.remote.test").server_context())
    assert send().status == "delivered"
    assert sink.wait_for(1)
    failure = OutboundTlsResult.objects.get(mx_host="")
    assert (failure.result_type, failure.policy_type, failure.additional_info) == (
        "sts-policy-fetch-error", "sts", "HTTP 404 from mta-sts.remote.test")  # fmt: skip
    assert not StsPolicyCache.objects.exists()


def test_a_policy_host_with_an_untrusted_certificate_is_sts_webpki_invalid(
    world, sinks, tmp_path, ca, settings
):
    server = PolicyServer(Authority(tmp_path, "x").issue("mta-sts.remote.test").server_context())
    server.start()
    try:
        settings.MAILADMIN_MTA_STS_HTTPS_PORT = server.port
        world.set_zone("mta-sts.remote.test", {"A": ["127.0.0.1"]})
        world.set_zone("_mta-sts.remote.test", {"TXT": ["v=STSv1; id=1"]})
        sinks()
        assert send().status == "delivered"
    finally:
        server.stop()
    failure = OutboundTlsResult.objects.get(mx_host="")
    assert failure.result_type == "sts-webpki-invalid"


# --- DANE ----------------------------------------------------------------------------------


def tlsa_zone(world, sink, data: bytes, *, authenticated: bool = True) -> str:
    name = f"_{sink.port}._tcp.mx.remote.test"
    world.set_zone(name, {"TLSA": [(3, 1, 1, hashlib.sha256(data).hexdigest())]})
    if authenticated:
        world.authenticated.add(name)
    return name


def test_dane_delivers_when_the_certificate_matches_the_tlsa_record(world, sinks, tmp_path):
    issued = Authority(tmp_path, "nobody trusts this").issue("mx.remote.test")
    sink = sinks(issued.server_context())
    tlsa_zone(world, sink, issued.spki)
    entry = send()
    assert entry.status == "delivered" and sink.wait_for(1)[0].tls
    result = outcome()
    assert (result.success, result.policy_type, result.policy_string) == (
        True, "tlsa", [f"3 1 1 {hashlib.sha256(issued.spki).hexdigest()}"])  # fmt: skip


def test_dane_defers_when_the_certificate_matches_no_tlsa_record(world, sinks, tmp_path):
    issued = Authority(tmp_path).issue("mx.remote.test")
    sink = sinks(issued.server_context())
    tlsa_zone(world, sink, b"some other key")
    entry = send()
    assert entry.status == "scheduled"
    assert entry.last_error == (
        f"Connection failed: mx.remote.test[127.0.0.1]:{sink.port}: DANE: the certificate of "
        "mx.remote.test matches none of its TLSA records"
    )
    assert sink.messages == []
    assert (outcome().result_type, outcome().policy_type) == ("tlsa-invalid", "tlsa")


def test_dane_requires_starttls(world, sinks):
    sink = sinks()
    tlsa_zone(world, sink, b"key")
    entry = send()
    assert entry.status == "scheduled" and sink.messages == []
    assert outcome().result_type == "starttls-not-supported"


def test_unauthenticated_tlsa_records_are_ignored(world, sinks, tmp_path):
    issued = Authority(tmp_path).issue("mx.remote.test")
    sink = sinks(issued.server_context())
    tlsa_zone(world, sink, b"some other key", authenticated=False)
    assert send().status == "delivered"  # opportunistic TLS, as without records
    assert sink.wait_for(1)[0].tls
    assert outcome().policy_type == "no-policy-found"


def test_dane_takes_precedence_over_mta_sts(policy_host, sinks, tmp_path, world):
    """The MX's certificate is not WebPKI-valid, so MTA-STS alone would defer; its TLSA
    record matches, and DANE wins (RFC 8461 2)."""
    policy_host.body = POLICY.format(mode="enforce", mx="mx.remote.test")
    issued = Authority(tmp_path, "private").issue("mx.remote.test")
    sink = sinks(issued.server_context())
    tlsa_zone(world, sink, issued.spki)
    assert send().status == "delivered"
    assert outcome().policy_type == "tlsa"


def test_verified_tls_can_be_switched_off(policy_host, sinks, tmp_path, settings):
    settings.MAILADMIN_QUEUE_TLS_POLICIES = False
    policy_host.body = POLICY.format(mode="enforce", mx="mx.remote.test")
    sinks(Authority(tmp_path, "private").issue("mx.remote.test").server_context())
    assert send().status == "delivered"
    assert policy_host.requests == []


def test_a_fetch_failure_is_reported_once_per_lookup_not_per_message(policy_host, ca, sinks):
    policy_host.status = 500
    sink = sinks(ca.issue("mx.remote.test").server_context())
    send()
    send()
    assert len(sink.wait_for(2)) == 2
    assert OutboundTlsResult.objects.filter(mx_host="").count() == 1
    # Both messages went over one pooled connection: one session for TLS-RPT (RFC 8460).
    assert OutboundTlsResult.objects.exclude(mx_host="").count() == 1
