"""The inbound MX over real sockets: who it accepts mail for, what it refuses and how,
and what lands in the store (INBOX, UIDs, the Received line), with nothing stored when it
answers anything but 250."""

from __future__ import annotations

import re
import smtplib

import pytest

from apps.accounts.models import Principal, PrincipalType
from tests.support.smtp_listeners import connect

pytestmark = pytest.mark.django_db(transaction=True)

MESSAGE = b"From: sender@remote.test\r\nSubject: hello\r\n\r\nHello Jane.\r\n"


@pytest.fixture(autouse=True)
def _blob_dir(settings, tmp_path):
    settings.MAILADMIN_BLOB_DIR = tmp_path / "blobs"


@pytest.fixture(autouse=True)
def _unfiltered(settings):
    """The listener's own behaviour, byte for byte; the spam filter's part in the MX path
    is tested in test_smtp_filtering.py."""
    settings.MAILADMIN_SPAM_FILTER = False


@pytest.fixture
def domain(tenant_a):
    return Principal.objects.create(name="example.test", type=PrincipalType.DOMAIN, tenant=tenant_a)


@pytest.fixture
def jane(make_principal, tenant_a, domain):
    principal = make_principal(name="jane", tenant=tenant_a)
    principal.emails.create(address="jane@example.test")
    return principal


def inbox(principal):
    from apps.store.models import Message

    return list(Message.objects.filter(principal=principal, folder__name="INBOX").order_by("uid"))


def stored_bytes(message) -> bytes:
    from apps.store import blobs

    return blobs.read(message.blob_hash)


def queued_as(reply: bytes) -> str:
    match = re.fullmatch(rb"2\.0\.0 OK: queued as ([0-9A-F]{12})", reply)
    assert match, reply
    return match.group(1).decode()


def test_it_refuses_an_unknown_recipient_of_a_hosted_domain(inbound, jane):
    with connect(inbound) as client:
        client.mail("sender@remote.test")
        assert client.rcpt("nobody@example.test") == (
            550,
            b"5.1.1 Recipient address rejected: User unknown",
        )


def test_it_refuses_to_relay_for_a_domain_not_hosted_here(inbound, jane):
    with connect(inbound) as client:
        client.mail("sender@remote.test")
        assert client.rcpt("someone@elsewhere.test") == (550, b"5.7.1 Relaying denied")
        assert client.rcpt("no-domain") == (501, b"5.1.3 Bad recipient address syntax")


def test_it_stores_a_message_in_the_inbox_with_uid_1_and_a_received_line(inbound, jane):
    with connect(inbound) as client:
        client.mail("sender@remote.test")
        assert client.rcpt("Jane@Example.TEST") == (250, b"2.1.5 Recipient OK")
        code, reply = client.data(MESSAGE)
    assert code == 250
    queue_id = queued_as(reply)
    [message] = inbox(jane)
    assert message.uid == 1
    data = stored_bytes(message)
    head, _, rest = data.partition(b";")
    assert head == (
        b"Received: from client.test ([127.0.0.1])\r\n"
        b"\tby mx.test (mailadmin) with ESMTP id " + queue_id.encode() + b"\r\n"
        b"\tfor <Jane@Example.TEST>"
    )
    assert re.match(rb" \w{3}, \d{2} \w{3} \d{4} \d\d:\d\d:\d\d \+0000\r\n", rest)
    assert data.endswith(b"\r\n" + MESSAGE)
    assert message.subject == "hello"


def test_it_gives_the_next_message_the_next_uid(inbound, jane):
    with connect(inbound) as client:
        for _ in range(2):
            client.sendmail("sender@remote.test", ["jane@example.test"], MESSAGE)
    assert [m.uid for m in inbox(jane)] == [1, 2]


def test_it_notes_tls_in_the_received_line(inbound, jane, client_tls):
    with connect(inbound) as client:
        client.starttls(context=client_tls)
        client.ehlo("client.test")
        client.sendmail("sender@remote.test", ["jane@example.test"], MESSAGE)
        version, (cipher, _, bits) = client.sock.version(), client.sock.cipher()
    data = stored_bytes(inbox(jane)[0])
    assert data.startswith(
        b"Received: from client.test ([127.0.0.1])\r\n"
        + f"\t(using {version} with cipher {cipher} ({bits} bits))\r\n".encode()
        + b"\tby mx.test (mailadmin) with ESMTPS id "
    )


def test_it_takes_a_bounce_with_the_null_sender(inbound, jane):
    with connect(inbound) as client:
        assert client.mail("<>") == (250, b"2.1.0 Sender OK")
        client.rcpt("jane@example.test")
        assert client.data(MESSAGE)[0] == 250
    assert len(inbox(jane)) == 1


def test_it_refuses_a_message_over_the_size_limit_after_data(inbound, jane, settings):
    settings.MAILADMIN_MAX_MESSAGE_SIZE = 1000
    with connect(inbound) as client:
        client.mail("sender@remote.test")
        client.rcpt("jane@example.test")
        code, reply = client.data(MESSAGE + b"x" * 1000 + b"\r\n")
        assert (code, reply) == (552, b"5.3.4 Message size exceeds fixed maximum message size")
        assert client.noop() == (250, b"OK")
    assert inbox(jane) == []


def test_it_refuses_a_recipient_whose_mailbox_is_full(inbound, jane):
    jane.quota = 1000
    jane.save(update_fields=["quota"])
    with connect(inbound) as client:
        client.mail("sender@remote.test", ["SIZE=1001"])
        assert client.rcpt("jane@example.test") == (452, b"4.2.2 Mailbox full")
        client.rset()
        client.mail("sender@remote.test", ["SIZE=500"])
        assert client.rcpt("jane@example.test") == (250, b"2.1.5 Recipient OK")
        assert client.data(MESSAGE + b"y" * 900 + b"\r\n")[0] == 250  # now over quota
        client.mail("sender@remote.test")  # no SIZE: any byte is too many
        assert client.rcpt("jane@example.test") == (452, b"4.2.2 Mailbox full")
    assert len(inbox(jane)) == 1


def test_it_expands_a_list_to_each_members_inbox(inbound, jane, make_principal, tenant_a):
    john = make_principal(name="john", tenant=tenant_a)
    team = Principal.objects.create(name="team", type=PrincipalType.LIST, tenant=tenant_a)
    team.emails.create(address="team@example.test")
    jane.member_of.add(team)
    john.member_of.add(team)
    with connect(inbound) as client:
        client.sendmail("sender@remote.test", ["team@example.test", "jane@example.test"], MESSAGE)
    assert [m.uid for m in inbox(jane)] == [1]  # one copy, though reached twice
    assert [m.uid for m in inbox(john)] == [1]
    assert inbox(jane)[0].blob_hash == inbox(john)[0].blob_hash


def test_it_accepts_smtputf8_addresses_and_8bit_bodies(inbound, make_principal, tenant_a, domain):
    jorg = make_principal(name="jorg", tenant=tenant_a)
    jorg.emails.create(address="jörg@example.test")
    body = "From: a@remote.test\r\nSubject: Grüße\r\n\r\nSchöne Grüße\r\n".encode()
    with connect(inbound) as client:
        client.command_encoding = "utf-8"
        assert client.mail("sénder@remote.test", ["SMTPUTF8"]) == (250, b"2.1.0 Sender OK")
        assert client.rcpt("jörg@example.test") == (250, b"2.1.5 Recipient OK")
        code, _ = client.data(body)
        assert code == 250
    data = stored_bytes(inbox(jorg)[0])
    assert b"with UTF8SMTP id" in data
    assert "for <jörg@example.test>;".encode() in data
    assert data.endswith(b"\r\n" + body)


def test_it_refuses_a_non_ascii_address_without_smtputf8(inbound, jane):
    with connect(inbound) as client:
        client.command_encoding = "utf-8"
        assert client.mail("sénder@remote.test") == (553, b"5.6.7 Non-ASCII address needs SMTPUTF8")


def test_it_refuses_an_overlong_line_and_an_oversized_header(inbound, jane, settings):
    settings.MAILADMIN_SMTP_MAX_HEADER_SIZE = 2000
    with connect(inbound) as client:
        client.mail("sender@remote.test")
        client.rcpt("jane@example.test")
        code, reply = client.data(b"Subject: long\r\n\r\n" + b"z" * 1200 + b"\r\n")
        assert (code, reply) == (
            500,
            b"5.5.2 Line too long (RFC 5321 4.5.3.1.6: at most 998 characters and CRLF)",
        )
        client.mail("sender@remote.test")
        client.rcpt("jane@example.test")
        headers = b"".join(b"X-Filler-%d: %s\r\n" % (i, b"h" * 60) for i in range(40))
        code, reply = client.data(headers + b"\r\nbody\r\n")
        assert (code, reply) == (552, b"5.3.4 Message header too large")
    assert inbox(jane) == []


def test_it_refuses_an_address_with_a_control_character(inbound, jane):
    """A NUL in MAIL FROM was accepted (and could not be stored on PostgreSQL)."""
    with connect(inbound) as client:
        for address in ("a\x00b@remote.test", "a\x1b@remote.test"):
            assert client.docmd("MAIL", f"FROM:<{address}>") == (553, b"5.1.3 Malformed address")
        client.mail("sender@remote.test")
        assert client.docmd("RCPT", "TO:<jane\x00@example.test>") == (
            553,
            b"5.1.3 Malformed address",
        )
        assert client.rcpt("jane@example.test") == (250, b"2.1.5 Recipient OK")
        assert client.data(MESSAGE)[0] == 250
    assert [m.uid for m in inbox(jane)] == [1]


def test_it_refuses_a_looping_message(inbound, jane):
    looping = b"Received: from a by b; Mon, 30 Nov 2026 10:00:00 +0000\r\n" * 50 + MESSAGE
    with connect(inbound) as client:
        client.mail("sender@remote.test")
        client.rcpt("jane@example.test")
        assert client.data(looping) == (554, b"5.4.6 Too many hops (mail loop?)")
    assert inbox(jane) == []


def test_it_answers_451_and_stores_nothing_when_the_store_fails(inbound, jane, settings, tmp_path):
    in_the_way = tmp_path / "a-file"
    in_the_way.write_text("not a directory")
    settings.MAILADMIN_BLOB_DIR = in_the_way / "blobs"  # writing a blob fails
    with connect(inbound) as client:
        client.mail("sender@remote.test")
        client.rcpt("jane@example.test")
        assert client.data(MESSAGE) == (451, b"4.3.0 Temporary server error, try again later")
        settings.MAILADMIN_BLOB_DIR = tmp_path / "blobs"
        client.mail("sender@remote.test")
        client.rcpt("jane@example.test")
        assert client.data(MESSAGE)[0] == 250
    assert [m.uid for m in inbox(jane)] == [1]


def test_it_keeps_the_session_after_a_refused_recipient(inbound, jane):
    with connect(inbound) as client:
        client.mail("sender@remote.test")
        assert client.rcpt("nobody@example.test")[0] == 550
        assert client.rcpt("jane@example.test")[0] == 250
        assert client.data(MESSAGE)[0] == 250
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            client.sendmail("x@remote.test", ["nobody@example.test"], MESSAGE)
    assert len(inbox(jane)) == 1


def test_it_queues_a_copy_for_a_lists_external_members(inbound, jane, tenant_a):
    from apps.queue.models import QueuedMessage
    from apps.store import blobs

    team = Principal.objects.create(
        name="team",
        type=PrincipalType.LIST,
        tenant=tenant_a,
        external_members=["Ext@Remote.test", "other@remote.test"],
    )
    team.emails.create(address="team@example.test")
    jane.member_of.add(team)
    with connect(inbound) as client:
        client.sendmail("sender@origin.test", ["team@example.test"], MESSAGE)
    [stored] = inbox(jane)
    [forwarded] = QueuedMessage.objects.all()
    # SRS: rewritten into the list's domain (test_srs.py has the details)
    assert forwarded.return_path.startswith("SRS0=")
    assert forwarded.return_path.endswith("=origin.test=sender@example.test")
    assert forwarded.tenant_id == tenant_a.pk
    addresses = sorted(forwarded.recipients.values_list("address", flat=True))
    assert addresses == ["ext@remote.test", "other@remote.test"]
    assert blobs.read(forwarded.blob_hash) == stored_bytes(stored)


def test_it_leaves_a_full_member_out_of_list_mail_and_refuses_when_all_are_full(
    inbound, jane, make_principal, tenant_a
):
    john = make_principal(name="john", tenant=tenant_a)
    team = Principal.objects.create(name="team", type=PrincipalType.LIST, tenant=tenant_a)
    team.emails.create(address="team@example.test")
    jane.member_of.add(team)
    john.member_of.add(team)
    Principal.objects.filter(pk=jane.pk).update(quota=250)
    with connect(inbound) as client:  # sendmail declares SIZE=, which RCPT judges by
        client.sendmail("sender@remote.test", ["team@example.test"], MESSAGE)  # both
        client.sendmail("sender@remote.test", ["team@example.test"], MESSAGE)  # jane full
        Principal.objects.filter(pk__in=[jane.pk, john.pk]).update(quota=100)
        client.mail("sender@remote.test")
        assert client.rcpt("team@example.test") == (452, b"4.2.2 Mailbox full")
    assert [m.uid for m in inbox(jane)] == [1]
    assert [m.uid for m in inbox(john)] == [1, 2]


def test_it_sends_the_sender_a_failure_dsn_naming_a_full_member(
    inbound, jane, make_principal, tenant_a, mx
):
    """RFC 3464: the second message reaches john; jane (full) is named in a DSN to the
    remote sender, with the list as the original recipient; a bounce gets no DSN."""
    from apps.queue import delivery
    from apps.queue.models import QueuedMessage, QueueDomain

    john = make_principal(name="john", tenant=tenant_a)
    john.emails.create(address="john@example.test")
    team = Principal.objects.create(name="team", type=PrincipalType.LIST, tenant=tenant_a)
    team.emails.create(address="team@example.test")
    jane.member_of.add(team)
    john.member_of.add(team)
    Principal.objects.filter(pk=jane.pk).update(quota=10)
    with connect(inbound) as client:
        client.sendmail("sender@remote.test", ["team@example.test"], MESSAGE)
        client.sendmail("", ["team@example.test"], MESSAGE)  # a bounce: no DSN for it
    assert inbox(jane) == []
    assert [m.uid for m in inbox(john)] == [1, 2]
    [bounce] = QueuedMessage.objects.all()
    assert bounce.return_path == ""
    assert list(bounce.recipients.values_list("address", flat=True)) == ["sender@remote.test"]
    delivery.deliver(QueueDomain.objects.get(message=bounce).pk, drain=False)
    [received] = mx.wait_for(1)
    report = received.message
    assert report.get_content_type() == "multipart/report"
    human, status, headers = report.iter_parts()
    assert human.get_content().endswith(
        "<jane@example.test>: Mailbox full: the message would exceed the quota of "
        "<jane@example.test> (a member of <team@example.test>)\r\n"
    )
    fields = status.as_bytes().decode()
    assert "Final-Recipient: rfc822; jane@example.test\n" in fields
    assert "Original-Recipient: rfc822; team@example.test\n" in fields
    assert "Action: failed\nStatus: 5.2.2\n" in fields
    assert "john@example.test" not in fields
    assert "Subject: hello" in headers.as_string()


def test_it_resolves_a_list_in_constant_queries(
    jane, make_principal, tenant_a, django_assert_max_num_queries
):
    from apps.queue.smtp.inbound import route_recipient

    team = Principal.objects.create(name="team", type=PrincipalType.LIST, tenant=tenant_a)
    team.emails.create(address="team@example.test")
    for n in range(20):
        member = make_principal(name=f"member{n}", tenant=tenant_a, quota=10**6)
        member.member_of.add(team)
    with django_assert_max_num_queries(5):
        refusal, route = route_recipient("team@example.test", 1000)
    assert refusal is None and len(route.mailboxes) == 20


def test_it_keeps_no_copy_when_one_of_several_deliveries_fails(
    inbound, jane, make_principal, tenant_a
):
    john = make_principal(name="john", tenant=tenant_a)
    team = Principal.objects.create(name="team", type=PrincipalType.LIST, tenant=tenant_a)
    team.emails.create(address="team@example.test")
    jane.member_of.add(team)
    john.member_of.add(team)
    with connect(inbound) as client:
        client.mail("sender@remote.test")
        assert client.rcpt("team@example.test")[0] == 250
        john.delete()  # between RCPT and DATA: his copy cannot be stored
        assert client.data(MESSAGE) == (451, b"4.3.0 Temporary server error, try again later")
        client.sendmail("sender@remote.test", ["team@example.test"], MESSAGE)  # the retry
    assert [m.uid for m in inbox(jane)] == [1]  # once, and the failed try left no UID gap


def test_it_ingests_mail_to_a_domains_report_address_as_reports(inbound, jane, domain):
    from apps.reports.models import IngestFailure

    with connect(inbound) as client:
        client.mail("reporter@remote.test")
        assert client.rcpt("dmarc-reports@example.test") == (250, b"2.1.5 Recipient OK")
        assert client.data(MESSAGE)[0] == 250  # no report inside: kept as a failed ingest
    assert IngestFailure.objects.filter(tenant=domain.tenant).count() == 1


def test_the_full_members_of_two_tenants_lists_get_a_dsn_each_in_their_own_queue(
    inbound, jane, make_principal, tenant_a, tenant_b
):
    """One message to tenant A's list and tenant B's, a full member in each: the DSN
    queued under A (its raw bytes in A's console) names nobody of B's, and B's its own."""
    from apps.queue.models import QueuedMessage
    from apps.store import blobs

    Principal.objects.create(name="b.test", type=PrincipalType.DOMAIN, tenant=tenant_b)
    bob = make_principal(name="bob", tenant=tenant_b)
    bob.emails.create(address="bob-private@b.test")
    lists = {}
    for tenant, member, address in ((tenant_a, jane, "team@example.test"),
                                    (tenant_b, bob, "crew@b.test")):  # fmt: skip
        lists[tenant.pk] = Principal.objects.create(
            name=address.partition("@")[0], type=PrincipalType.LIST, tenant=tenant
        )
        lists[tenant.pk].emails.create(address=address)
        member.member_of.add(lists[tenant.pk])
        other = make_principal(name=f"other-{tenant.name}", tenant=tenant)
        other.member_of.add(lists[tenant.pk])
    Principal.objects.filter(pk__in=[jane.pk, bob.pk]).update(quota=10)
    with connect(inbound) as client:
        client.sendmail("sender@remote.test", ["team@example.test", "crew@b.test"], MESSAGE)
    dsns = {q.tenant_id: blobs.read(q.blob_hash) for q in QueuedMessage.objects.all()}
    assert set(dsns) == {tenant_a.pk, tenant_b.pk}
    assert b"jane@example.test" in dsns[tenant_a.pk] and b"b.test" not in dsns[tenant_a.pk]
    assert b"bob-private@b.test" in dsns[tenant_b.pk]
    assert b"jane@example.test" not in dsns[tenant_b.pk]
