"""Encryption at rest over the real inbound MX: an account that set `/api/account/crypto`
gets every message delivered from then on stored as PGP/MIME or S/MIME enveloped data,
which its private key decrypts to the original entity; the other recipients of the same
message keep the clear copy; the quarantine's release and the fetch jobs encrypt too."""

from __future__ import annotations

from datetime import timedelta

import pytest

from apps.queue import fetch, fetch_services
from apps.queue.fetch_services import FetchValues
from apps.spamfilter.models import QuarantinedMessage
from apps.store import blobs
from apps.store.models import Message
from tests.support.at_rest import (
    AES128_CBC_OID,
    AES256_CBC_OID,
    head_and_body,
    pem,
    pgp_decrypt,
    pgp_key,
    smime_decrypt,
    smime_der,
    smime_identity,
)
from tests.support.smtp_listeners import connect
from tests.unit.queue.test_smtp_filtering import HAM

pytestmark = pytest.mark.django_db(transaction=True)

# What HAM's recipient's key decrypts: its Content-* fields, MIME-Version and body.
HAM_ENTITY = (
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Shall we meet at noon at the usual place? Bring the notes from Monday.\r\n"
)
SECRET = b"Shall we meet"


@pytest.fixture(autouse=True)
def _blobs(settings, tmp_path):
    settings.MAILADMIN_BLOB_DIR = tmp_path / "blobs"


@pytest.fixture(scope="module")
def jane_key():
    return pgp_key("Jane")


def _send(inbound, recipients, message=HAM, sender="sender@remote.test"):
    with connect(inbound) as client:
        client.mail(sender)
        for rcpt in recipients:
            assert client.rcpt(rcpt)[0] == 250
        return client.data(message)


def _set_crypto(api_client_for, principal, **body):
    response = api_client_for(principal).post("/api/account/crypto", body, format="json")
    assert response.status_code == 200, response.content
    return response


def _stored(principal) -> list[tuple[Message, bytes]]:
    found = Message.objects.filter(principal=principal).order_by("id")
    return [(m, blobs.read(m.blob_hash)) for m in found]


def test_pgp_mail_is_stored_as_pgp_mime_and_the_other_recipient_keeps_it_clear(
    inbound, mailboxes, api_client_for, jane_key
):
    _set_crypto(
        api_client_for, mailboxes["jane"], type="pgp", algo="Aes256", certs=str(jane_key.pubkey)
    )
    assert _send(inbound, ["jane@example.test", "joe@example.test"])[0] == 250

    [(jane_row, jane_data)] = _stored(mailboxes["jane"])
    [(joe_row, joe_data)] = _stored(mailboxes["joe"])
    assert joe_data.endswith(HAM)  # the clear copy, as before
    assert jane_row.blob_hash != joe_row.blob_hash
    assert SECRET not in jane_data
    head, _ = head_and_body(jane_data)
    for field in (
        b"From: Sender <sender@remote.test>\r\n",
        b"To: Jane <jane@example.test>\r\n",
        b"Subject: Lunch on Thursday\r\n",
        b"Date: Mon, 30 Nov 2026 10:00:00 +0000\r\n",
        b"Message-ID: <lunch-1@remote.test>\r\n",
    ):
        assert field in head
    assert head.startswith(b"Authentication-Results: ") or head.startswith(b"Received: ")
    assert b"Content-Type: text/plain" not in head  # it went inside
    assert head.count(b"MIME-Version: 1.0") == 1
    # The private key gives back the original entity byte for byte (CRLF as received).
    assert pgp_decrypt(jane_data, jane_key) == HAM_ENTITY
    assert joe_data.endswith(HAM_ENTITY)
    # The list shows the clear header fields; the size is what is stored.
    assert (jane_row.subject, jane_row.from_address, jane_row.message_id) == (
        "Lunch on Thursday",
        "sender@remote.test",
        "<lunch-1@remote.test>",
    )
    assert jane_row.size == len(jane_data) > joe_row.size == len(joe_data)


def test_smime_mail_is_stored_as_enveloped_data(inbound, mailboxes, api_client_for, tmp_path):
    certificate, private = smime_identity()
    _set_crypto(
        api_client_for, mailboxes["jane"], type="smime", algo="Aes128", certs=pem(certificate)
    )
    assert _send(inbound, ["jane@example.test"])[0] == 250
    [(row, data)] = _stored(mailboxes["jane"])
    assert SECRET not in data
    head, _ = head_and_body(data)
    assert b"Subject: Lunch on Thursday\r\n" in head
    assert b"smime-type=enveloped-data" in head
    der = smime_der(data)
    assert AES128_CBC_OID in der and AES256_CBC_OID not in der
    # RFC 8551 wants the entity in canonical CRLF form, which SMTP mail already is.
    assert smime_decrypt(data, certificate, private) == HAM_ENTITY
    assert row.size == len(data) and row.subject == "Lunch on Thursday"
    # Its only recipient encrypts: the clear message was never written to the blob store.
    on_disk = [p.read_bytes() for p in tmp_path.joinpath("blobs").rglob("*") if p.is_file()]
    assert on_disk == [data]


def test_aes256_is_the_smime_cipher_when_asked(inbound, mailboxes, api_client_for):
    certificate, private = smime_identity()
    _set_crypto(
        api_client_for, mailboxes["jane"], type="smime", algo="Aes256", certs=pem(certificate)
    )
    assert _send(inbound, ["jane@example.test"])[0] == 250
    [(_, data)] = _stored(mailboxes["jane"])
    assert AES256_CBC_OID in smime_der(data)
    assert smime_decrypt(data, certificate, private) == HAM_ENTITY


def test_an_encrypted_message_is_stored_as_it_came(inbound, mailboxes, api_client_for, jane_key):
    _set_crypto(
        api_client_for, mailboxes["jane"], type="pgp", algo="Aes128", certs=str(jane_key.pubkey)
    )
    already = (
        b"From: Sender <sender@remote.test>\r\n"
        b"To: Jane <jane@example.test>\r\n"
        b"Subject: sealed\r\n"
        b"Date: Mon, 30 Nov 2026 10:00:00 +0000\r\n"
        b"Message-ID: <sealed-1@remote.test>\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted";\r\n'
        b' boundary="b1"\r\n'
        b"\r\n"
        b"--b1\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n"
        b"--b1\r\nContent-Type: application/octet-stream\r\n\r\n"
        b"-----BEGIN PGP MESSAGE-----\r\n\r\nwcBMA0xyz\r\n-----END PGP MESSAGE-----\r\n"
        b"--b1--\r\n"
    )
    assert _send(inbound, ["jane@example.test"], already)[0] == 250
    [(_, data)] = _stored(mailboxes["jane"])
    assert data.endswith(already)
    assert data.count(b"multipart/encrypted") == 1


def test_turning_encryption_off_stores_clear_again(inbound, mailboxes, api_client_for, jane_key):
    _set_crypto(
        api_client_for, mailboxes["jane"], type="pgp", algo="Aes256", certs=str(jane_key.pubkey)
    )
    assert _send(inbound, ["jane@example.test"])[0] == 250
    _set_crypto(api_client_for, mailboxes["jane"], type="disabled")
    assert _send(inbound, ["jane@example.test"], HAM.replace(b"lunch-1", b"lunch-2"))[0] == 250
    [(_, first), (_, second)] = _stored(mailboxes["jane"])
    assert SECRET not in first
    assert second.endswith(HAM.replace(b"lunch-1", b"lunch-2"))


def test_a_released_message_is_encrypted_on_its_way_into_the_inbox(
    inbound, mailboxes, api_client_for, jane_key, client, make_principal, tenant_a, settings
):
    settings.MAILADMIN_SPAM_THRESHOLD_QUARANTINE = 6.0
    settings.MAILADMIN_SPAM_THRESHOLD_SPAM = 5.0
    bare = b"From: sender@remote.test\r\nSubject: cheap watches\r\n\r\nHello Jane.\r\n"
    _set_crypto(
        api_client_for, mailboxes["jane"], type="pgp", algo="Aes256", certs=str(jane_key.pubkey)
    )
    assert _send(inbound, ["jane@example.test"], bare)[0] == 250
    held = QuarantinedMessage.objects.get()
    assert blobs.read(held.blob_hash).endswith(bare)  # held in clear for review
    client.force_login(make_principal(name="admin-a", tenant=tenant_a, roles=["tenant-admin"]))
    assert client.post(f"/spam-filter/quarantine/{held.pk}/release/").status_code == 302
    [(row, data)] = _stored(mailboxes["jane"])
    assert row.blob_hash != held.blob_hash and row.size == len(data)
    assert b"Hello Jane." not in data and b"Subject: cheap watches\r\n" in data
    # No Content-* fields at all: the entity is the empty header and the body.
    assert pgp_decrypt(data, jane_key) == b"\r\nHello Jane.\r\n"
    assert row.subject == "cheap watches"


def test_fetched_mail_is_encrypted(imap, remote, mailboxes, admin_a, api_client_for, jane_key):
    _set_crypto(
        api_client_for, mailboxes["jane"], type="pgp", algo="Aes128", certs=str(jane_key.pubkey)
    )
    remote.add(HAM)
    job = fetch_services.fetch_job_create(
        actor=admin_a,
        values=FetchValues(
            mailbox="jane@example.test",
            protocol="imap",
            port=imap.port,
            username=imap.mailbox.username,
            password=imap.mailbox.password,
            security="none",
            host="127.0.0.1",
        ),
    )

    class Steps:
        def begin(self, total: int) -> None: ...

        def step(self, done: int, message: str) -> None: ...

    outcome = fetch.run_job(job.pk, progress=Steps(), lease=timedelta(minutes=5))
    assert outcome.ok, outcome.message
    [(row, data)] = _stored(mailboxes["jane"])
    assert SECRET not in data and b"Subject: Lunch on Thursday\r\n" in data
    assert pgp_decrypt(data, jane_key) == HAM_ENTITY
    assert row.subject == "Lunch on Thursday"
