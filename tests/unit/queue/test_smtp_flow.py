"""The issue's first acceptance test, end to end on loopback: a message submitted with
SMTP AUTH to a remote address, whose MX (on the test DNS server) is the test SMTP sink,
arrives there with a DKIM signature that dkimpy verifies against the published key."""

from __future__ import annotations

import dkim as dkimpy
import pytest
from django.core.cache import cache

from apps.accounts.models import Principal, PrincipalType
from apps.domains import dkim, records
from apps.domains.models import DkimKey
from apps.queue import delivery
from tests.conftest import TEST_PASSWORD
from tests.support.smtp_listeners import connect
from tests.unit.domains.test_dkim import _live_dnsfunc

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_submitted_message_reaches_the_remote_mx_dkim_signed(
    start_listeners, make_principal, tenant_a, dns_server, mx
):
    cache.clear()
    domain = Principal.objects.create(
        name="example.test", type=PrincipalType.DOMAIN, tenant=tenant_a
    )
    alice = make_principal(name="alice", tenant=tenant_a)
    alice.emails.create(address="alice@example.test")
    pair = dkim.generate(dkim.RSA)
    DkimKey.objects.create(
        domain=domain,
        tenant=tenant_a,
        selector="s1",
        algorithm=pair.algorithm,
        private_key=pair.private_pem,
        public_key=pair.public_key,
        state=DkimKey.State.ACTIVE,
    )
    dns_server.set_zone(
        records.dkim_name("example.test", "s1"),
        {"TXT": [dkim.txt_record(pair.algorithm, pair.public_key)]},
    )
    listener = start_listeners("submission")
    with connect(listener, "submission") as client:
        client.login("alice", TEST_PASSWORD)
        client.sendmail(
            "alice@example.test",
            ["rcpt@remote.test"],
            b"From: alice@example.test\r\nTo: rcpt@remote.test\r\nSubject: hi\r\n\r\nHello.\r\n",
        )
    delivery.deliver()
    [received] = mx.messages
    assert received.mail_from == "alice@example.test"
    assert received.rcpt_tos == ["rcpt@remote.test"]
    assert received.data.startswith(b"DKIM-Signature: v=1; a=rsa-sha256;")
    assert dkimpy.verify(received.data, dnsfunc=_live_dnsfunc) is True
