"""The scan's look-up of its recipients' block and safe lists: by envelope sender, From
address, their domains and parent domains, and the connecting IP (CIDR, IPv6), one query
however many recipients."""

from __future__ import annotations

import pytest

from apps.spamfilter import auth
from apps.spamfilter.models import MailboxSpamSetting, SenderListEntry
from apps.spamfilter.sender_lists import sender_status, unauthenticated
from tests.unit.spamfilter.test_scan import spec_scan

pytestmark = pytest.mark.django_db
SENDERS = ["bounce@example.net", "jane@example.org"]


@pytest.fixture
def boxes(make_principal, tenant_a, tenant_b):
    return [make_principal(name=f"box{i}", tenant=tenant_a if i < 3 else tenant_b)
            for i in range(4)]  # fmt: skip


@pytest.fixture
def spec_dns(dns_server):
    """As test_scan's: 8.8.8.8 has a confirmed PTR name, nothing else exists."""
    dns_server.set_zone("8.8.8.8.in-addr.arpa", {"PTR": ["dns.google."]})
    dns_server.set_zone("dns.google", {"A": ["8.8.8.8"]})
    return dns_server


def _listed(principal, list_name, value):
    SenderListEntry.objects.create(
        mailbox=principal, tenant_id=principal.tenant_id, list=list_name, value=value
    )


@pytest.mark.parametrize(
    ("list_name", "value", "listed"),
    [
        ("blacklist", "bounce@example.net", True),  # envelope sender
        ("blacklist", "jane@example.org", True),  # From address
        ("blacklist", "example.net", True),
        ("blacklist", "net", False),  # never a whole top-level domain by accident
        ("blacklist", "other.example.net", False),
        ("ipblacklist", "8.8.8.8", True),
        ("ipblacklist", "8.8.0.0/16", True),
        ("ipblacklist", "8.8.9.0/24", False),
        ("ipblacklist", "::ffff:0:0/96", False),  # another address family
    ],
)
def test_it_matches_address_domain_and_ip(
    boxes, list_name, value, listed, django_assert_num_queries
):
    _listed(boxes[0], list_name, value)
    with django_assert_num_queries(2):  # the lists, the settings
        status = sender_status(
            mailbox_ids=[b.pk for b in boxes],
            senders=SENDERS,
            remote_ip="8.8.8.8",
            authenticated=SENDERS,
        )
    assert status == ({boxes[0].pk: "block"} if listed else {})


def test_a_parent_domain_covers_its_subdomains(boxes):
    _listed(boxes[1], "safelist", "example.net")
    status = sender_status(mailbox_ids=[boxes[1].pk], senders=["a@mx.mail.example.net"],
                           remote_ip="", authenticated=["a@mx.mail.example.net"])  # fmt: skip
    assert status == {boxes[1].pk: "safe"}


def test_ipv6_networks(boxes):
    _listed(boxes[2], "ipsafelist", "2001:db8::/32")
    status = sender_status(mailbox_ids=[boxes[2].pk], senders=[], remote_ip="2001:db8::25",
                           authenticated=())  # fmt: skip
    assert status == {boxes[2].pk: "safe"}  # an IP entry needs no authentication
    status = sender_status(mailbox_ids=[boxes[2].pk], senders=[], remote_ip="2001:db9::1",
                           authenticated=())  # fmt: skip
    assert status == {}


def test_safe_beats_block_and_only_the_recipients_count(boxes):
    _listed(boxes[0], "blacklist", "example.net")
    _listed(boxes[0], "safelist", "bounce@example.net")
    _listed(boxes[3], "blacklist", "example.net")  # not a recipient
    status = sender_status(mailbox_ids=[boxes[0].pk, boxes[1].pk], senders=["bounce@example.net"],
                           remote_ip="8.8.8.8", authenticated=["bounce@example.net"])  # fmt: skip
    assert status == {boxes[0].pk: "safe"}


def test_an_unauthenticated_sender_is_not_safe(boxes):
    """Safe by address or domain needs the sender authenticated; a block entry does not
    (a forged blocked address is blocked all the same), and then it beats the safe one."""
    _listed(boxes[0], "safelist", "example.net")
    _listed(boxes[1], "safelist", "bounce@example.net")
    _listed(boxes[1], "blacklist", "example.net")
    _listed(boxes[2], "safelist", "example.net")
    MailboxSpamSetting.objects.create(mailbox=boxes[2], tenant_id=boxes[2].tenant_id,
                                      filter_level="exclusive")  # fmt: skip
    ids = [b.pk for b in boxes[:3]]
    status = sender_status(mailbox_ids=ids, senders=["bounce@example.net"], remote_ip="8.8.8.8",
                           authenticated=())  # fmt: skip
    assert status == {boxes[0].pk: "unverified", boxes[1].pk: "block", boxes[2].pk: "block"}
    status = sender_status(mailbox_ids=ids, senders=["bounce@example.net"], remote_ip="8.8.8.8",
                           authenticated=["bounce@example.net"])  # fmt: skip
    assert status == {boxes[0].pk: "safe", boxes[1].pk: "safe", boxes[2].pk: "safe"}


def test_only_the_authenticated_sender_s_keys_count(boxes):
    """The envelope sender is authenticated, the From address is not: a safe entry naming
    the From address alone is unverified."""
    _listed(boxes[0], "safelist", "ceo@bank.test")
    _listed(boxes[1], "safelist", "lists.test")
    senders = ["bounce@lists.test", "ceo@bank.test"]
    status = sender_status(mailbox_ids=[boxes[0].pk, boxes[1].pk], senders=senders,
                           remote_ip="", authenticated=["bounce@lists.test"])  # fmt: skip
    assert status == {boxes[0].pk: "unverified", boxes[1].pk: "safe"}


def _results(*, dmarc=("none", ""), spf=("none", ""), dkim=()):
    return auth.AuthResults(
        spf=auth.SpfResult(*spf),
        helo_spf=None,
        dkim=[auth.DkimResult(r, d) for r, d in dkim],
        arc=auth.ArcResult("none"),
        dmarc=auth.DmarcResult(*dmarc),
        iprev=auth.IprevResult(""),
    )


@pytest.mark.parametrize(
    ("results", "authenticated"),
    [
        (_results(dmarc=("pass", "bank.test")), True),
        (_results(spf=("pass", "bank.test")), True),
        (_results(spf=("pass", "bounce.bank.test")), True),  # relaxed alignment
        (_results(dkim=[("pass", "mail.bank.test")]), True),
        (_results(dmarc=("pass", "other.test")), False),
        (_results(spf=("pass", "evil.test"), dkim=[("pass", "evil.test")]), False),
        (_results(spf=("softfail", "bank.test"), dkim=[("fail", "bank.test")]), False),
        (_results(dkim=[("pass", "bank.test.evil.test")]), False),
        # The domain's DMARC record asks for strict DKIM alignment: a subdomain's is not.
        (
            _results(
                dmarc=("fail", "bank.test", "none", {"adkim": "s"}),
                dkim=[("pass", "mail.bank.test")],
            ),
            False,
        ),  # fmt: skip
        (
            _results(
                dmarc=("fail", "bank.test", "none", {"adkim": "s"}), dkim=[("pass", "bank.test")]
            ),
            True,
        ),  # fmt: skip
        (None, True),  # an authenticated submission: nothing to check
    ],
)
def test_who_is_authenticated(results, authenticated):
    why = unauthenticated(results, ["ceo@bank.test"])
    assert ("ceo@bank.test" not in why) is authenticated


def test_an_internationalised_sender_is_authenticated_by_its_a_label_results():
    """SMTPUTF8 mail: the results name the domain in A-labels (RFC 8616), the address
    in the message in Unicode; both are one domain."""
    results = _results(dmarc=("pass", "xn--e1afmkfd.xn--p1ai"))
    assert unauthenticated(results, ["joe@пример.рф", "joe@xn--e1afmkfd.xn--p1ai"]) == {}
    assert "joe@другой.рф" in unauthenticated(results, ["joe@другой.рф"])


def test_it_says_why_a_sender_is_not_authenticated():
    results = _results(dmarc=("fail", "bank.test"), spf=("pass", "evil.test"),
                       dkim=[("pass", "evil.test")])  # fmt: skip
    assert unauthenticated(results, ["ceo@bank.test", ""]) == {
        "ceo@bank.test": "ceo@bank.test is not authenticated for bank.test "
        "(dmarc=fail, spf=pass for evil.test, dkim=pass d=evil.test)"
    }


def test_the_scan_reports_the_recipients_lists(spec_dns, boxes):
    """The spec's message is not authenticated (no SPF, DKIM or DMARC for its domains): the
    IP entry holds, the domain safe entry is unverified and the verdict says why."""
    _listed(boxes[0], "ipblacklist", "8.8.8.8")
    _listed(boxes[1], "safelist", "example.org")
    verdict = spec_scan(recipient_mailboxes=[boxes[0].pk, boxes[1].pk, boxes[2].pk])
    assert verdict.sender_lists == {boxes[0].pk: "block", boxes[1].pk: "unverified"}
    assert verdict.sender_list_note == (
        "safe list not applied: bounce@example.net is not authenticated for example.net "
        "(dmarc=none, spf=none for example.net, dkim=none); jane@example.org is not "
        "authenticated for example.org (dmarc=none, spf=none for example.net, dkim=none)"
    )
    assert spec_scan().sender_lists == {}
