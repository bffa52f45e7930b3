"""The submission listener over real sockets: AUTH PLAIN/LOGIN through the accounts
app's password check, STARTTLS before AUTH off loopback, sender ownership, rate limits,
and what a submitted message becomes in the queue (DKIM-signed, completed)."""

from __future__ import annotations

import base64
import smtplib

import pytest
from django.core.cache import cache

from apps.accounts.auth.app_passwords import app_password_add
from tests.conftest import TEST_PASSWORD
from tests.support.smtp_listeners import connect

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fresh_counters():
    cache.clear()  # rate counters live in the cache, which outlives a test's database


@pytest.fixture
def alice(make_principal, tenant_a):
    principal = make_principal(name="alice", tenant=tenant_a)
    principal.emails.create(address="alice@example.test", position=0)
    principal.emails.create(address="a.lias@example.test", position=1)
    return principal


@pytest.fixture
def submission(start_listeners):
    return start_listeners("submission")


def plain(login: str, password: str) -> str:
    return base64.b64encode(f"\0{login}\0{password}".encode()).decode()


def logged_in(listener, login: str = "alice", password: str = TEST_PASSWORD) -> smtplib.SMTP:
    client = connect(listener, "submission")
    client.login(login, password)
    return client


def test_it_offers_auth_only_after_starttls_when_tls_is_required(
    start_listeners, alice, client_tls
):
    listener = start_listeners("submission", auth_require_tls=True)
    with connect(listener, "submission") as client:
        assert client.has_extn("starttls")
        assert not client.has_extn("auth")
        assert client.docmd("AUTH", "PLAIN " + plain("alice", TEST_PASSWORD)) == (
            538,
            b"5.7.11 Encryption required for requested authentication mechanism",
        )
        assert client.mail("alice@example.test") == (530, b"5.7.0 Authentication required")
        client.starttls(context=client_tls)
        client.ehlo("client.test")
        assert client.esmtp_features["auth"] == " LOGIN PLAIN"
        assert client.login("alice", TEST_PASSWORD) == (235, b"2.7.0 Authentication successful")
        assert client.mail("alice@example.test") == (250, b"2.1.0 Sender OK")


def test_it_offers_auth_without_tls_on_a_loopback_bind(submission, alice):
    with connect(submission, "submission") as client:
        assert client.esmtp_features["auth"] == " LOGIN PLAIN"
        assert client.docmd("AUTH", "PLAIN " + plain("alice", TEST_PASSWORD)) == (
            235,
            b"2.7.0 Authentication successful",
        )


def test_it_refuses_mail_before_auth(submission, alice):
    with connect(submission, "submission") as client:
        assert client.mail("alice@example.test") == (530, b"5.7.0 Authentication required")


def test_it_refuses_a_wrong_password_with_535(submission, alice):
    with connect(submission, "submission") as client:
        with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
            client.login("alice", "wrong password")
        assert (refused.value.smtp_code, refused.value.smtp_error) == (
            535,
            b"5.7.8 Authentication credentials invalid",
        )
        assert client.mail("alice@example.test") == (530, b"5.7.0 Authentication required")


def test_it_logs_in_by_address_with_auth_login(submission, alice):
    with connect(submission, "submission") as client:
        client.user, client.password = "alice@example.test", TEST_PASSWORD
        assert client.auth("LOGIN", client.auth_login, initial_response_ok=False) == (
            235,
            b"2.7.0 Authentication successful",
        )


def test_it_takes_an_app_password_with_plain_and_login(submission, alice):
    _, app_password = app_password_add(actor=alice, name="phone")
    with connect(submission, "submission") as client:
        client.user, client.password = "alice", app_password
        assert client.auth("PLAIN", client.auth_plain) == (235, b"2.7.0 Authentication successful")
    with connect(submission, "submission") as client:
        client.user, client.password = "alice", app_password
        assert client.auth("LOGIN", client.auth_login) == (235, b"2.7.0 Authentication successful")


def test_it_refuses_the_account_password_alone_when_two_factor_is_on(submission, alice):
    alice.otp_enabled = True
    alice.save(update_fields=["otp_enabled"])
    _, app_password = app_password_add(actor=alice, name="laptop")
    with connect(submission, "submission") as client:
        with pytest.raises(smtplib.SMTPAuthenticationError):
            client.login("alice", TEST_PASSWORD)
        assert client.login("alice", app_password)[0] == 235


def test_it_locks_out_after_repeated_failures_like_the_console(submission, alice):
    for _ in range(5):
        with (
            connect(submission, "submission") as client,
            pytest.raises(smtplib.SMTPAuthenticationError),
        ):
            client.login("alice", "wrong password")
    with connect(submission, "submission") as client:
        code, reply = client.docmd("AUTH", "PLAIN " + plain("alice", TEST_PASSWORD))
    assert (code, reply) == (454, b"4.7.0 Too many failed logins. Try again in 15 minutes.")


def test_a_login_repeated_on_the_next_connection_costs_no_password_hash(
    submission, alice, hashings
):
    """Mail clients open a connection per message: the login is remembered for a while
    (as HTTP Basic's, through the same password check)."""
    _, app_password = app_password_add(actor=alice, name="phone")
    hashings.clear()
    for password in (TEST_PASSWORD, app_password, TEST_PASSWORD, app_password):
        with connect(submission, "submission") as client:
            assert client.login("alice", password) == (235, b"2.7.0 Authentication successful")
            assert client.mail("alice@example.test") == (250, b"2.1.0 Sender OK")
    assert hashings == ["verify", "verify"]
    for _ in range(2):
        with connect(submission, "submission") as client:
            code, _ = client.docmd("AUTH", "PLAIN " + plain("alice", "wrong password"))
            assert code == 535
    assert hashings == ["verify"] * 4  # a wrong password is checked, never remembered


def test_a_revoked_app_password_or_changed_password_is_refused_at_the_next_connection(
    submission, alice
):
    from apps.accounts.auth.app_passwords import app_password_remove

    _, app_password = app_password_add(actor=alice, name="phone")
    for password in (TEST_PASSWORD, app_password):
        logged_in(submission, password=password).quit()
    app_password_remove(actor=alice, name="phone")
    alice.set_password("a brand new password")
    alice.save(update_fields=["password"])
    for password in (TEST_PASSWORD, app_password):
        with connect(submission, "submission") as client:
            code, _ = client.docmd("AUTH", "PLAIN " + plain("alice", password))
            assert code == 535
    assert logged_in(submission, password="a brand new password").quit()[0] == 221


def test_a_remembered_login_is_still_locked_out(submission, alice):
    logged_in(submission).quit()
    for _ in range(5):
        with (
            connect(submission, "submission") as client,
            pytest.raises(smtplib.SMTPAuthenticationError),
        ):
            client.login("alice", "wrong password")
    with connect(submission, "submission") as client:
        code, reply = client.docmd("AUTH", "PLAIN " + plain("alice", TEST_PASSWORD))
    assert (code, reply) == (454, b"4.7.0 Too many failed logins. Try again in 15 minutes.")


def test_it_refuses_a_sender_address_the_account_does_not_own(
    submission, alice, make_principal, admin_b
):
    bob = make_principal(name="bob", tenant=alice.tenant)
    bob.emails.create(address="bob@example.test")
    admin_b.emails.create(address="admin@tenant-b.test")
    with logged_in(submission) as client:
        assert client.mail("bob@example.test") == (
            553,
            b"5.7.1 Sender address rejected: not owned by the authenticated user",
        )
        assert client.mail("admin@tenant-b.test")[0] == 553  # nor another tenant's
        assert client.mail("<>")[0] == 553
        assert client.mail("A.Lias@Example.TEST") == (250, b"2.1.0 Sender OK")


def test_it_limits_messages_per_account(submission, alice, settings):
    settings.MAILADMIN_SUBMISSION_RATE_ACCOUNT = 2
    with logged_in(submission) as client:
        for _ in range(2):
            assert client.mail("alice@example.test") == (250, b"2.1.0 Sender OK")
            client.rset()
        assert client.mail("alice@example.test") == (
            451,
            b"4.7.1 Too many messages from this account, try again later",
        )


def test_it_limits_messages_per_client_address(submission, alice, make_principal, settings):
    settings.MAILADMIN_SUBMISSION_RATE_IP = 2
    carol = make_principal(name="carol", tenant=alice.tenant)
    carol.emails.create(address="carol@example.test")
    with logged_in(submission) as client:
        assert client.mail("alice@example.test")[0] == 250
        client.rset()
        assert client.mail("alice@example.test")[0] == 250
    with logged_in(submission, "carol") as client:
        assert client.mail("carol@example.test") == (
            451,
            b"4.7.1 Too many messages from this address, try again later",
        )


def test_it_caps_the_recipients_of_one_message(submission, alice, settings):
    settings.MAILADMIN_SMTP_MAX_RECIPIENTS = 2
    with logged_in(submission) as client:
        client.mail("alice@example.test")
        assert client.rcpt("x@remote.test") == (250, b"2.1.5 Recipient OK")
        assert client.rcpt("y@remote.test") == (250, b"2.1.5 Recipient OK")
        assert client.rcpt("z@remote.test") == (452, b"4.5.3 Too many recipients")


def test_it_refuses_a_non_ascii_recipient_without_smtputf8(submission, alice):
    with logged_in(submission) as client:
        client.mail("alice@example.test")
        client.command_encoding = "utf-8"
        code, reply = client.docmd("RCPT", "TO:<jörg@remote.test>")
        assert (code, reply) == (553, b"5.6.7 Non-ASCII address needs SMTPUTF8")


# --- what a submitted message becomes ---------------------------------------------------


@pytest.fixture
def publish_key(alice, dns_server):
    """publish_key(domain, algorithm, selector): an active key, its record on live DNS."""
    from apps.domains import dkim, records
    from apps.domains.models import DkimKey

    def publish(domain, algorithm: str, selector: str) -> DkimKey:
        pair = dkim.generate(algorithm)
        dns_server.set_zone(
            records.dkim_name(domain.name, selector),
            {"TXT": [dkim.txt_record(pair.algorithm, pair.public_key)]},
        )
        return DkimKey.objects.create(
            domain=domain,
            tenant=domain.tenant,
            selector=selector,
            algorithm=pair.algorithm,
            private_key=pair.private_pem,
            public_key=pair.public_key,
            state=DkimKey.State.ACTIVE,
        )

    return publish


@pytest.fixture
def signing_domain(alice, publish_key):
    """example.test hosted with an active RSA key, published on the live DNS server."""
    from apps.accounts.models import Principal, PrincipalType

    domain = Principal.objects.create(
        name="example.test", type=PrincipalType.DOMAIN, tenant=alice.tenant
    )
    publish_key(domain, "rsa", "s2026")
    return domain


def queued():
    from apps.queue.models import QueuedMessage
    from apps.store import blobs

    [message] = QueuedMessage.objects.all()
    recipients = list(message.recipients.order_by("address").values_list("address", flat=True))
    return message, recipients, blobs.read(message.blob_hash)


SUBMITTED = (
    b"From: Alice <alice@example.test>\r\nTo: bob@remote.test\r\nSubject: signed\r\n\r\n"
    b"Hello Bob.\r\n"
)


def test_it_signs_and_queues_a_submitted_message_so_that_dkim_verifies(submission, signing_domain):
    import dkim as dkimpy

    from tests.unit.domains.test_dkim import _live_dnsfunc

    with logged_in(submission) as client:
        client.mail("alice@example.test")
        client.rcpt("bob@remote.test")
        client.rcpt("carol@other.test")
        code, reply = client.data(SUBMITTED)
    assert code == 250
    message, recipients, data = queued()
    assert recipients == ["bob@remote.test", "carol@other.test"]
    assert message.return_path == "alice@example.test"
    assert message.tenant_id == signing_domain.tenant_id
    assert data.startswith(b"DKIM-Signature: v=1; a=rsa-sha256;")
    assert b" d=example.test;" in data and b" s=s2026;" in data
    assert dkimpy.verify(data, dnsfunc=_live_dnsfunc) is True
    head = data.partition(b"\r\n\r\n")[0]
    assert b"\r\n\tby mx.test (mailadmin) with ESMTPA id " + reply[-12:] in head
    assert re_header(head, b"Message-ID") and re_header(head, b"Date")
    assert data.endswith(b"\r\n\r\nHello Bob.\r\n")


def re_header(head: bytes, name: bytes) -> bool:
    import re

    return re.search(rb"(?m)^" + name + rb": \S", head) is not None


def test_it_queues_unsigned_when_the_domain_has_no_active_key(submission, signing_domain):
    signing_domain.dkim_keys.update(state="retiring")
    with logged_in(submission) as client:
        client.sendmail("alice@example.test", ["bob@remote.test"], SUBMITTED)
    _, _, data = queued()
    assert data.startswith(b"Received: from client.test ([127.0.0.1])\r\n")
    assert b"DKIM-Signature" not in data


def test_it_keeps_the_message_id_and_date_the_client_gave(submission, signing_domain):
    given = b"Date: Sun, 29 Nov 2026 08:00:00 +0000\r\nMessage-ID: <given@example.test>\r\n"
    with logged_in(submission) as client:
        client.sendmail("alice@example.test", ["bob@remote.test"], given + SUBMITTED)
    _, _, data = queued()
    assert data.count(b"Message-ID:") == 1 and b"Message-ID: <given@example.test>" in data
    assert data.count(b"\nDate:") == 1


def test_it_signs_with_the_active_rsa_and_ed25519_keys_rsa_on_top(
    submission, signing_domain, publish_key
):
    import dkim as dkimpy

    from tests.unit.domains.test_dkim import _live_dnsfunc

    publish_key(signing_domain, "ed25519", "s2026e")
    with logged_in(submission) as client:
        client.sendmail("alice@example.test", ["bob@remote.test"], SUBMITTED)
    _, _, data = queued()
    assert data.startswith(b"DKIM-Signature: v=1; a=rsa-sha256;")
    assert data.count(b"DKIM-Signature:") == 2
    assert b"a=ed25519-sha256;" in data
    verifier = dkimpy.DKIM(data)
    assert verifier.verify(idx=0, dnsfunc=_live_dnsfunc) is True
    assert verifier.verify(idx=1, dnsfunc=_live_dnsfunc) is True


def test_it_answers_250_only_once_the_message_is_committed(submission, alice):
    """The session's message joins the group commit; while that commit cannot finish, the
    client waits for its reply, and the 250 comes with the message durable in the queue."""
    import threading

    from apps.queue.models import QueuedMessage
    from apps.store import blobs
    from tests.unit.queue.conftest import queue_writes_held

    replies: list[tuple[int, bytes]] = []
    with logged_in(submission) as client:
        client.mail("alice@example.test")
        client.rcpt("bob@remote.test")
        with queue_writes_held():
            sending = threading.Thread(target=lambda: replies.append(client.data(SUBMITTED)))
            sending.start()
            sending.join(1.5)
            assert sending.is_alive() and replies == []  # no reply while not committed
            assert QueuedMessage.objects.count() == 0
        sending.join(10)
    [(code, reply)] = replies
    assert code == 250 and reply.startswith(b"2.0.0 OK: queued as ")
    message, recipients, data = queued()
    assert recipients == ["bob@remote.test"]
    assert blobs.read(message.blob_hash) == data and data.endswith(b"Hello Bob.\r\n")
