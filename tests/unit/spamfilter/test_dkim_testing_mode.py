"""RFC 6376 3.6.1: a key record with t=y is a Signer in testing mode, and "Verifiers MUST
NOT treat messages from Signers in testing mode differently from unsigned email, even
should the signature fail to verify". The result is reported (marked), never scored nor
counted for DMARC alignment. A failing t=y signature scored DKIM_REJECT and a passing one
was an aligned DKIM pass."""

from __future__ import annotations

import pytest

from apps.spamfilter import auth, lookups
from apps.spamfilter.lookups import ScanLookups
from apps.spamfilter.services import scan
from tests.unit.spamfilter.test_auth_rfc_cases import DKIM_RECORD, _resinfos, _signed

pytestmark = pytest.mark.django_db

RESINFO_TESTING = " (testing mode)"


def _key(dns_server, record: str) -> None:
    dns_server.set_zone("s1._domainkey.example.org", {"TXT": [record]})
    dns_server.set_zone("_dmarc.example.org", {"TXT": ["v=DMARC1; p=reject"]})
    lookups.cache_clear()


def _scan(message: bytes):
    # the envelope sender has no SPF record: only DKIM can authenticate example.org
    return scan(
        message=message,
        remote_ip="192.0.2.7",
        ehlo_domain="mx.sender.test",
        env_from="bounce@sender.test",
        env_rcpt_to=["a@b.test"],
    )


TESTING = DKIM_RECORD.replace("k=rsa;", "k=rsa; t=y;")


def test_a_testing_key_is_read_as_testing_and_a_production_key_is_not(dns_server):
    _key(dns_server, TESTING)
    [result] = auth.dkim_check(ScanLookups(), _signed())
    assert (result.result, result.testing) == ("pass", True)
    _key(dns_server, DKIM_RECORD.replace("k=rsa;", "k=rsa; t = s : Y ;"))
    [result] = auth.dkim_check(ScanLookups(), _signed(identity=b"joe@example.org"))
    assert (result.result, result.testing) == ("pass", True)
    _key(dns_server, DKIM_RECORD.replace("k=rsa;", "k=rsa; t=s;"))
    [result] = auth.dkim_check(ScanLookups(), _signed())
    assert (result.result, result.testing) == ("pass", False)


def test_a_passing_testing_signature_is_scored_as_unsigned_and_does_not_align(dns_server):
    _key(dns_server, DKIM_RECORD)
    verdict = _scan(_signed())
    assert {"DKIM_ALLOW", "DMARC_POLICY_ALLOW"} <= set(verdict.tags)

    _key(dns_server, TESTING)
    verdict = _scan(_signed())
    tags = set(verdict.tags)
    assert "DKIM_ALLOW" not in tags and "DMARC_POLICY_ALLOW" not in tags
    assert {"DKIM_NA", "DMARC_POLICY_REJECT"} <= tags
    header = verdict.authentication_results
    assert "dkim=pass header.d=example.org header.s=s1 header.a=rsa-sha256 (testing mode)" in (
        header.replace("\r\n\t", " ")
    )
    assert "dmarc=fail header.from=example.org policy.dmarc=reject" in header


def test_a_failing_testing_signature_is_not_dkim_reject(dns_server):
    tampered = _signed() + b"P.S. added on the way\r\n"
    _key(dns_server, DKIM_RECORD)
    assert "DKIM_REJECT" in _scan(tampered).tags

    _key(dns_server, TESTING)
    verdict = _scan(tampered)
    assert "DKIM_REJECT" not in verdict.tags
    assert "DKIM_NA" in verdict.tags
    [result] = [p for p in _resinfos(verdict.authentication_results) if p.startswith("dkim=")]
    assert result.startswith("dkim=fail reason=")
    assert result.endswith(RESINFO_TESTING)


def test_a_production_signature_beside_a_testing_one_is_scored_as_ever(dns_server):
    import dkim

    from tests.unit.spamfilter.test_auth_rfc_cases import DKIM_KEY, DKIM_MESSAGE

    production = dkim.sign(
        DKIM_MESSAGE, b"s2", b"example.org", DKIM_KEY, include_headers=[b"from", b"to"]
    )
    _key(dns_server, TESTING)
    dns_server.set_zone("s2._domainkey.example.org", {"TXT": [DKIM_RECORD]})
    verdict = _scan(production + _signed())
    assert {"DKIM_ALLOW", "DMARC_POLICY_ALLOW"} <= set(verdict.tags)
    assert "DKIM_NA" not in verdict.tags
    assert verdict.authentication_results.count(RESINFO_TESTING) == 1


def test_the_header_says_testing_mode_within_the_rfc8601_grammar():
    from tests.unit.spamfilter.test_auth_rfc_cases import RESINFO

    results = auth.AuthResults(
        spf=auth.SpfResult("none", ""),
        helo_spf=None,
        dkim=[
            auth.DkimResult("fail", "example.org", "s1", "rsa-sha256", "bad", testing=True),
            auth.DkimResult("pass", "example.org", "s2", "rsa-sha256", testing=True),
        ],
        arc=auth.ArcResult("none"),
        dmarc=auth.DmarcResult("none"),
        iprev=auth.IprevResult(""),
    )
    parts = _resinfos(results.header("mail.example.net"))
    assert parts[:2] == [
        'dkim=fail reason="bad" header.d=example.org header.s=s1 header.a=rsa-sha256'
        + RESINFO_TESTING,
        "dkim=pass header.d=example.org header.s=s2 header.a=rsa-sha256" + RESINFO_TESTING,
    ]
    for part in parts:
        assert RESINFO.match(part), part


def test_dmarc_does_not_align_with_a_testing_pass(dns_server):
    dns_server.set_zone("_dmarc.example.org", {"TXT": ["v=DMARC1; p=reject"]})
    fail = auth.SpfResult("none", "sender.test")
    testing = [auth.DkimResult("pass", "example.org", "s1", testing=True)]
    result = auth.dmarc_check(
        ScanLookups(), from_domain="example.org", spf=fail, dkim_results=testing
    )
    assert (result.result, result.dkim_aligned) == ("fail", False)
    counted = [auth.DkimResult("pass", "example.org", "s1")]
    result = auth.dmarc_check(
        ScanLookups(), from_domain="example.org", spf=fail, dkim_results=counted
    )
    assert (result.result, result.dkim_aligned) == ("pass", True)


def test_a_testing_pass_does_not_authenticate_a_sender_for_the_safe_list():
    from apps.spamfilter.sender_lists import unauthenticated

    def results(testing: bool):
        return auth.AuthResults(
            spf=auth.SpfResult("none", ""),
            helo_spf=None,
            dkim=[auth.DkimResult("pass", "bank.test", "s1", testing=testing)],
            arc=auth.ArcResult("none"),
            dmarc=auth.DmarcResult("none", "bank.test"),
            iprev=auth.IprevResult(""),
        )

    assert unauthenticated(results(False), ["ceo@bank.test"]) == {}
    assert unauthenticated(results(True), ["ceo@bank.test"]) == {
        "ceo@bank.test": "ceo@bank.test is not authenticated for bank.test "
        "(dmarc=none, spf=none, dkim=pass d=bank.test (testing mode))"
    }


def test_the_troubleshooter_reports_a_testing_pass_without_calling_it_a_dkim_pass():
    from apps.spamfilter.api import troubleshoot_data

    results = auth.AuthResults(
        spf=auth.SpfResult("none", ""),
        helo_spf=None,
        dkim=[auth.DkimResult("pass", "example.org", "s1", "rsa-sha256", testing=True)],
        arc=auth.ArcResult("none"),
        dmarc=auth.DmarcResult("none"),
        iprev=auth.IprevResult(""),
    )
    data = troubleshoot_data(results, 0.01)
    assert data["dkimResults"] == [
        {
            "type": "pass",
            "domain": "example.org",
            "selector": "s1",
            "details": "the key is in testing mode (t=y): judged as unsigned",
        }
    ]
    assert data["dkimPass"] is False
    results.dkim[0].testing = False
    data = troubleshoot_data(results, 0.01)
    assert data["dkimResults"][0]["details"] is None and data["dkimPass"] is True
