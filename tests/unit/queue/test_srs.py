"""SRS (apps.queue.srs): postsrsd's own vectors, then the MX end to end over real sockets:
a forwarded copy leaves with an SRS return path, a bounce to it goes back to the sender,
and a forged or expired SRS address is refused at RCPT with the reason."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from apps.accounts.models import Principal, PrincipalType
from apps.queue import delivery, srs
from apps.queue.models import QueuedMessage, QueueDomain
from tests.support.smtp_listeners import connect

# postsrsd's test suite: secret "tops3cr3t", domain example.com, 2020-01-01 00:01:00 UTC.
NOW = datetime(2020, 1, 1, 0, 1, tzinfo=UTC).timestamp()
SECRET = "tops3cr3t"
MESSAGE = b"From: sender@origin.test\r\nSubject: hello\r\n\r\nHello.\r\n"


def fwd(address: str) -> str:
    return srs.forward(address, domain="example.com", secret=SECRET, now=NOW)


def rev(address: str) -> str:
    return srs.reverse(address, secrets=[SECRET], now=NOW, max_age_days=31)


@pytest.mark.parametrize(
    ("sender", "rewritten"),
    [
        ("test@example.com", "test@example.com"),  # our own domain: left alone
        ("test@otherdomain.com", "SRS0=vmyz=2W=otherdomain.com=test@example.com"),
        ("SRS0=opaque+string@otherdomain.com",
         "SRS1=chaI=otherdomain.com==opaque+string@example.com"),
        ("SRS1=X=thirddomain.com==opaque+string@otherdomain.com",
         "SRS1=JIBX=thirddomain.com==opaque+string@example.com"),
    ],
)  # fmt: skip
def test_it_forwards_as_postsrsd_does(sender, rewritten):
    assert fwd(sender) == rewritten


@pytest.mark.parametrize(
    ("address", "original"),
    [
        ("SRS0=XjO9=2V=otherdomain.com=test@example.com", "test@otherdomain.com"),
        ("SRS1=JIBX=thirddomain.com==opaque+string@example.com",
         "SRS0=opaque+string@thirddomain.com"),
        ("srs0=xjo9=2v=otherdomain.com=test@example.com", "test@otherdomain.com"),
        ("SRS0=XJO9=2V=OTHERDOMAIN.COM=TEST@EXAMPLE.COM", "TEST@OTHERDOMAIN.COM"),
    ],
)  # fmt: skip
def test_it_reverses_as_postsrsd_does(address, original):
    assert rev(address) == original


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("SRS0=te87=T7=otherdomain.com=test@example.com", "timestamp out of date"),
        ("SRS0=VcIb=7N=otherdomain.com=test@example.com", "timestamp out of date"),
        ("SRS0=FAKE=2V=otherdomain.com=test@example.com", "hash invalid"),
        ("SRS0=@example.com", "no hash in SRS0 address"),
        ("SRS0=XjO9@example.com", "no timestamp in SRS0 address"),
        ("SRS0=XjO9=2V@example.com", "no host in SRS0 address"),
        ("SRS0=XjO9=2V=otherdomain.com@example.com", "no user in SRS0 address"),
        ("SRS1=FAKE=thirddomain.com==opaque+string@example.com", "hash invalid"),
        ("test@example.com", "not an SRS address"),
    ],
)
def test_it_refuses_to_reverse_a_bad_address_saying_why(address, reason):
    with pytest.raises(srs.SrsError) as caught:
        rev(address)
    assert str(caught.value) == reason


def test_an_older_secret_still_reverses_what_it_signed():
    old = srs.forward("a@b.test", domain="example.com", secret="old", now=NOW)
    assert srs.reverse(old, secrets=["new", "old"], now=NOW) == "a@b.test"
    with pytest.raises(srs.SrsError, match="hash invalid"):
        srs.reverse(old, secrets=["new"], now=NOW)


def test_an_address_expires_after_max_age_days():
    address = fwd("a@b.test")
    assert srs.reverse(address, secrets=[SECRET], now=NOW + 21 * 86400, max_age_days=21)
    with pytest.raises(srs.SrsError, match="timestamp out of date"):
        srs.reverse(address, secrets=[SECRET], now=NOW + 22 * 86400, max_age_days=21)


# --- through the MX -----------------------------------------------------------------------


@pytest.fixture
def forwarder(db, settings, tenant_a, make_principal, tmp_path):
    """example.test is hosted; fwd@example.test is a list with one external member and
    jane@example.test is an account."""
    settings.MAILADMIN_BLOB_DIR = tmp_path / "blobs"
    settings.MAILADMIN_SPAM_FILTER = False
    settings.MAILADMIN_SRS_SECRET = "s3cret,older"
    settings.MAILADMIN_SRS_DOMAIN = ""
    Principal.objects.create(name="example.test", type=PrincipalType.DOMAIN, tenant=tenant_a)
    jane = make_principal(name="jane", tenant=tenant_a)
    jane.emails.create(address="jane@example.test")
    team = Principal.objects.create(
        name="fwd", type=PrincipalType.LIST, tenant=tenant_a, external_members=["far@remote.test"]
    )
    team.emails.create(address="fwd@example.test")
    return jane


pytestmark_mx = pytest.mark.django_db(transaction=True)


@pytestmark_mx
def test_a_forwarded_copy_leaves_with_an_srs_return_path(start_listeners, forwarder, tenant_a):
    inbound = start_listeners("inbound")
    with connect(inbound) as client:
        client.sendmail("alice@origin.test", ["fwd@example.test"], MESSAGE)
    [queued] = QueuedMessage.objects.all()
    local, _, domain = queued.return_path.partition("@")
    assert domain == "example.test"  # the forwarding address's domain: SPF passes there
    stamp = srs.timestamp(time.time())
    now = time.time()
    assert queued.return_path == srs.forward(
        "alice@origin.test", domain="example.test", secret="s3cret", now=now
    )
    assert local.startswith("SRS0=") and local.endswith(f"={stamp}=origin.test=alice")
    assert list(queued.recipients.values_list("address", flat=True)) == ["far@remote.test"]


@pytestmark_mx
def test_a_sender_of_a_hosted_domain_is_not_rewritten(start_listeners, forwarder):
    inbound = start_listeners("inbound")
    with connect(inbound) as client:
        client.sendmail("jane@example.test", ["fwd@example.test"], MESSAGE)
    assert QueuedMessage.objects.get().return_path == "jane@example.test"


@pytestmark_mx
def test_srs_can_be_switched_off(start_listeners, forwarder, settings):
    settings.MAILADMIN_SRS = False
    inbound = start_listeners("inbound")
    with connect(inbound) as client:
        client.sendmail("alice@origin.test", ["fwd@example.test"], MESSAGE)
    assert QueuedMessage.objects.get().return_path == "alice@origin.test"


@pytestmark_mx
def test_a_bounce_to_an_srs_address_goes_back_to_the_remote_sender(start_listeners, forwarder):
    address = srs.rewrite_sender("alice@origin.test", forwarding_domain="example.test")
    inbound = start_listeners("inbound")
    with connect(inbound) as client:
        client.sendmail("", [address], b"Subject: Undelivered Mail\r\n\r\nbounce\r\n")
    [queued] = QueuedMessage.objects.all()
    assert queued.return_path == ""  # still a bounce
    assert list(queued.recipients.values_list("address", flat=True)) == ["alice@origin.test"]


@pytestmark_mx
def test_a_bounce_to_an_srs_address_of_a_local_sender_lands_in_its_inbox(
    start_listeners, forwarder, settings
):
    # an address signed with the older secret, standing for a hosted sender
    local = srs.forward("jane@example.test", domain="x.test", secret="older", now=time.time())
    address = local.rpartition("@")[0] + "@example.test"
    inbound = start_listeners("inbound")
    with connect(inbound) as client:
        client.sendmail("", [address], b"Subject: Undelivered Mail\r\n\r\nbounce\r\n")
    from apps.store.models import Message

    assert Message.objects.filter(principal=forwarder, folder__name="INBOX").count() == 1
    assert not QueuedMessage.objects.exists()


@pytestmark_mx
def test_it_refuses_forged_and_expired_srs_addresses_at_rcpt(start_listeners, forwarder):
    good = srs.rewrite_sender("alice@origin.test", forwarding_domain="example.test")
    forged = good.replace("SRS0=", "SRS0=x", 1)
    old = srs.forward(
        "alice@origin.test", domain="example.test", secret="s3cret", now=time.time() - 30 * 86400
    )
    inbound = start_listeners("inbound")
    with connect(inbound) as client:
        client.mail("")
        assert client.rcpt(forged) == (550, b"5.1.1 Invalid SRS address: hash invalid")
        assert client.rcpt(old) == (550, b"5.1.1 Invalid SRS address: timestamp out of date")
        assert client.rcpt("SRS0=abcd@example.test") == (
            550, b"5.1.1 Invalid SRS address: no timestamp in SRS0 address")  # fmt: skip
        assert client.rcpt(good)[0] == 250


@pytestmark_mx
def test_a_failure_dsn_of_a_forwarded_copy_goes_to_the_original_sender(
    start_listeners, forwarder, mx
):
    """The forwarded copy fails at the far end (550): the queue's DSN to the SRS return
    path goes straight to the sender it stands for, naming the member."""
    mx.handler.rcpt_replies["far@remote.test"] = "550 5.1.1 <far@remote.test>: no such user"
    inbound = start_listeners("inbound")
    with connect(inbound) as client:
        client.sendmail("sender@remote.test", ["fwd@example.test", "jane@example.test"], MESSAGE)
    forwarded = QueuedMessage.objects.get()
    assert srs.is_srs(forwarded.return_path)
    delivery.deliver(QueueDomain.objects.get(message=forwarded).pk, drain=False)
    bounce = QueuedMessage.objects.exclude(pk=forwarded.pk).get()
    assert list(bounce.recipients.values_list("address", flat=True)) == ["sender@remote.test"]
    delivery.deliver(QueueDomain.objects.get(message=bounce).pk, drain=False)
    [received] = mx.wait_for(1)
    assert received.mail_from == "<>" and received.rcpt_tos == ["sender@remote.test"]
    text = received.data.decode()
    assert "Final-Recipient: rfc822; far@remote.test" in text
    assert "Diagnostic-Code: smtp; 550 5.1.1 <far@remote.test>: no such user" in text
    from apps.store.models import Message

    assert Message.objects.filter(principal=forwarder).count() == 1  # jane still got it


@pytestmark_mx
def test_a_full_account_that_forwards_still_forwards_and_the_sender_hears_of_its_copy(
    start_listeners, forwarder, tenant_a
):
    """jane forwards to a remote address and her mailbox is full: the forward leaves (with
    an SRS return path) and the sender's DSN names jane alone, not as a list member."""
    from apps.domains.models import MailboxProfile
    from apps.store.models import Message

    domain = Principal.objects.get(name="example.test")
    MailboxProfile.objects.create(
        principal=forwarder, domain=domain, tenant=tenant_a, name="jane", display_name="Jane",
        forwarding_address="jane@home.test",
    )  # fmt: skip
    Principal.objects.filter(pk=forwarder.pk).update(quota=10)
    inbound = start_listeners("inbound")
    with connect(inbound) as client:
        client.sendmail("alice@origin.test", ["jane@example.test"], MESSAGE)
    assert not Message.objects.filter(principal=forwarder).exists()
    forward = QueuedMessage.objects.get(recipients__address="jane@home.test")
    assert forward.return_path.startswith("SRS0=")
    bounce = QueuedMessage.objects.get(return_path="")
    assert list(bounce.recipients.values_list("address", flat=True)) == ["alice@origin.test"]
    from apps.store import blobs

    text = blobs.read(bounce.blob_hash).decode()
    assert "<jane@example.test>: Mailbox full: the message would exceed the quota of " in text
    assert "<jane@example.test>\r\n" in text and "a member of" not in text
    assert "Status: 5.2.2\r\n" in text
