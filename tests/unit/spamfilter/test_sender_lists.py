"""The scan's look-up of its recipients' block and safe lists: by envelope sender, From
address, their domains and parent domains, and the connecting IP (CIDR, IPv6), one query
however many recipients."""

from __future__ import annotations

import pytest

from apps.spamfilter.models import SenderListEntry
from apps.spamfilter.sender_lists import sender_status
from tests.unit.spamfilter.test_scan import spec_scan

pytestmark = pytest.mark.django_db


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
            senders=["bounce@example.net", "jane@example.org"],
            remote_ip="8.8.8.8",
        )
    assert status == ({boxes[0].pk: "block"} if listed else {})


def test_a_parent_domain_covers_its_subdomains(boxes):
    _listed(boxes[1], "safelist", "example.net")
    status = sender_status(mailbox_ids=[boxes[1].pk], senders=["a@mx.mail.example.net"],
                           remote_ip="")  # fmt: skip
    assert status == {boxes[1].pk: "safe"}


def test_ipv6_networks(boxes):
    _listed(boxes[2], "ipsafelist", "2001:db8::/32")
    status = sender_status(mailbox_ids=[boxes[2].pk], senders=[], remote_ip="2001:db8::25")
    assert status == {boxes[2].pk: "safe"}
    assert sender_status(mailbox_ids=[boxes[2].pk], senders=[], remote_ip="2001:db9::1") == {}


def test_safe_beats_block_and_only_the_recipients_count(boxes):
    _listed(boxes[0], "blacklist", "example.net")
    _listed(boxes[0], "safelist", "bounce@example.net")
    _listed(boxes[3], "blacklist", "example.net")  # not a recipient
    status = sender_status(mailbox_ids=[boxes[0].pk, boxes[1].pk], senders=["bounce@example.net"],
                           remote_ip="8.8.8.8")  # fmt: skip
    assert status == {boxes[0].pk: "safe"}


def test_the_scan_reports_the_recipients_lists(spec_dns, boxes):
    _listed(boxes[0], "ipblacklist", "8.8.8.8")
    _listed(boxes[1], "safelist", "example.org")
    verdict = spec_scan(recipient_mailboxes=[boxes[0].pk, boxes[1].pk, boxes[2].pk])
    assert verdict.sender_lists == {boxes[0].pk: "block", boxes[1].pk: "safe"}
    assert spec_scan().sender_lists == {}
