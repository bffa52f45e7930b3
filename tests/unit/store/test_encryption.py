"""apps.store.encryption with real keys: what stays in clear, what goes inside, several
recipients' keys, what cannot be encrypted, and the cost in queries of a delivery batch."""

from __future__ import annotations

import base64
import logging
import threading
import warnings

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from apps.accounts.auth import crypto
from apps.accounts.auth.encryption import encryption_settings_update
from apps.store import blobs, encryption, services
from apps.store.encryption import AtRest
from apps.store.models import Message
from apps.store.recipients import deliver_to_mailboxes
from tests.support.at_rest import pem, pgp_decrypt, pgp_key, smime_decrypt, smime_identity
from tests.unit.store.conftest import message

pytestmark = pytest.mark.django_db

MIME = (
    b"Received: from a by b;\r\n\tMon, 30 Nov 2026 10:00:00 +0000\r\n"
    b"From: Sender <sender@remote.example>\r\n"
    b"Subject: folded\r\n over two lines\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/alternative;\r\n boundary="xx"\r\n'
    b"X-Mailer: test\r\n"
    b"content-transfer-encoding: 7bit\r\n"
    b"\r\n"
    b"--xx\r\nContent-Type: text/plain\r\n\r\nsecret words\r\n--xx--\r\n"
)


@pytest.fixture(autouse=True)
def _blobs(settings, tmp_path):
    settings.MAILADMIN_BLOB_DIR = tmp_path / "blobs"


@pytest.fixture(scope="module")
def keys():
    return pgp_key("Jane"), pgp_key("Backup")


def _encrypt_to(mailbox, key, algo="Aes256") -> None:
    """The account's own settings service, as POST /api/account/crypto calls it."""
    from apps.accounts.principals.services import builtin_role

    mailbox.roles.add(builtin_role("user"))  # the role that may manage encryption
    encryption_settings_update(actor=mailbox, type="pgp", algo=algo, certs=str(key.pubkey))


def _pgp(*keys, algo="Aes256") -> AtRest:
    certs = crypto.parse_openpgp_public_keys("".join(str(k.pubkey) for k in keys)).normalized
    return AtRest("pgp", algo, certs)


def test_it_keeps_the_header_in_clear_and_moves_the_content_fields_inside(keys):
    stored = encryption.encrypt(MIME, _pgp(keys[0]))
    head = stored.split(b"\r\n\r\n", 1)[0] + b"\r\n"
    assert head.startswith(
        b"Received: from a by b;\r\n\tMon, 30 Nov 2026 10:00:00 +0000\r\n"
        b"From: Sender <sender@remote.example>\r\n"
        b"Subject: folded\r\n over two lines\r\n"
        b"X-Mailer: test\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted";\r\n'
    )
    assert b"secret words" not in stored and b"7bit" not in stored
    assert pgp_decrypt(stored, keys[0]) == (
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/alternative;\r\n boundary="xx"\r\n'
        b"content-transfer-encoding: 7bit\r\n"
        b"\r\n"
        b"--xx\r\nContent-Type: text/plain\r\n\r\nsecret words\r\n--xx--\r\n"
    )


def test_every_key_decrypts_the_message(keys):
    stored = encryption.encrypt(MIME, _pgp(*keys, algo="Aes128"))
    assert pgp_decrypt(stored, keys[0]) == pgp_decrypt(stored, keys[1])
    assert pgp_decrypt(stored, keys[1]).endswith(b"secret words\r\n--xx--\r\n")


def test_bare_lf_mail_keeps_its_line_endings_in_pgp_and_is_canonical_in_smime(keys):
    data = MIME.replace(b"\r\n", b"\n")
    stored = encryption.encrypt(data, _pgp(keys[0]))
    assert b"\r\n" not in stored  # the outer message follows the input's line ending
    assert pgp_decrypt(stored, keys[0]).endswith(b"\n\n--xx\nContent-Type: text/plain\n\n"
                                                 b"secret words\n--xx--\n")  # fmt: skip
    certificate, private = smime_identity()
    smime = AtRest("smime", "Aes256", pem(certificate))
    stored = encryption.encrypt(data, smime)
    # RFC 8551 §3.1.1: encrypted in canonical form, so CRLF inside whatever came in.
    assert smime_decrypt(stored, certificate, private).endswith(
        b"\r\n\r\n--xx\r\nContent-Type: text/plain\r\n\r\nsecret words\r\n--xx--\r\n"
    )


def test_an_smime_message_is_not_encrypted_again():
    certificate, _ = smime_identity()
    smime = AtRest("smime", "Aes128", pem(certificate))
    once = encryption.encrypt(MIME, smime)
    assert encryption.encrypt(once, smime) == once
    assert encryption.encrypt(once, _pgp(pgp_key())) == once


def test_an_ec_certificate_cannot_be_encrypted_to_and_the_mail_is_kept_in_clear(caplog):
    private = ec.generate_private_key(ec.SECP256R1())
    certificate, _ = smime_identity()
    from tests.unit.accounts.test_crypto import _certificate

    ec_pem = _certificate(key=private, usage="")
    settings = AtRest("smime", "Aes128", ec_pem)
    with pytest.raises(encryption.EncryptionFailed, match="no certificate with an RSA key"):
        encryption.encrypt(MIME, settings)
    with caplog.at_level(logging.WARNING, logger="apps.store.encryption"):
        assert encryption.protect(MIME, settings, owner="jane") is MIME
    assert "storing a message for jane in clear" in caplog.text
    # Beside an RSA certificate the EC one is skipped and the RSA one used.
    both = AtRest("smime", "Aes128", ec_pem + pem(certificate))
    assert b"smime.p7m" in encryption.encrypt(MIME, both)


def test_a_batch_costs_one_settings_query_and_only_the_encrypting_copy_is_apart(
    make_mailbox, keys, django_assert_max_num_queries
):
    jane, joe, ann = make_mailbox("jane"), make_mailbox("joe"), make_mailbox("ann")
    for mailbox in (jane, joe, ann):
        services.folders_ensure(mailbox)
    data = message("batch", body="secret words\r\n")
    # Per copy: its folders, SAVEPOINT, the UID, the row, RELEASE; once: the settings.
    with django_assert_max_num_queries(1 + 3 * 5) as clear:
        deliver_to_mailboxes([jane, joe, ann], data)
    _encrypt_to(jane, keys[0], "Aes256")
    with django_assert_max_num_queries(len(clear.captured_queries)) as mixed:
        stored, full = deliver_to_mailboxes([jane, joe, ann], data)
    settings_queries = [
        q for q in mixed.captured_queries if "accounts_encryptionsettings" in q["sql"]
    ]
    assert len(settings_queries) == 1 and not full
    by_owner = {m.principal_id: m for m in stored}
    assert by_owner[joe.pk].blob_hash == by_owner[ann.pk].blob_hash == blobs.hash_of(data)
    assert by_owner[jane.pk].blob_hash != by_owner[joe.pk].blob_hash
    encrypted = blobs.read(by_owner[jane.pk].blob_hash)
    assert b"secret words" not in encrypted and pgp_decrypt(encrypted, keys[0]) == (
        b"\r\nsecret words\r\n"
    )
    assert by_owner[jane.pk].size == len(encrypted) and by_owner[jane.pk].subject == "batch"


def test_the_encrypted_size_counts_against_the_quota(make_mailbox, keys):
    data = message("quota", body="x\r\n")
    jane = make_mailbox("jane", quota=len(data) + 100)  # room for the clear copy only
    _encrypt_to(jane, keys[0], "Aes256")
    stored, full = deliver_to_mailboxes([jane], data)
    assert (stored, full) == ([], [jane])
    assert not Message.objects.exists()


def test_deliver_encrypts_for_an_account_that_asked(make_mailbox, keys):
    jane = make_mailbox("jane")
    _encrypt_to(jane, keys[0], "Aes128")
    row = services.deliver(jane, MIME, folder="INBOX")
    stored = blobs.read(row.blob_hash)
    assert b"secret words" not in stored and row.size == len(stored)
    assert row.subject == "folded over two lines"


def test_the_armour_checksum_is_the_one_openpgp_readers_check(keys):
    import email
    import warnings

    import pgpy

    stored = encryption.encrypt(MIME, _pgp(keys[0]))
    armoured = email.message_from_bytes(stored).get_payload()[1].get_payload()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # PGPy only warns about a wrong CRC-24
        pgpy.PGPMessage.from_blob(armoured)
    for sample in (b"", b"a", bytes(range(256)) * 3, bytes(range(255)) * 3 + b"\xff"):
        assert encryption._crc24(sample) == pgpy.types.Armorable.crc24(bytearray(sample))


@pytest.mark.parametrize(
    ("data", "clear", "entity"),
    [
        # a bare LF blank line after CRLF header lines still ends the header
        (
            b"Subject: s\r\nContent-Type: text/plain\r\n\nsecret\r\n",
            b"Subject: s\r\n",
            b"Content-Type: text/plain\r\n\r\nsecret\r\n",
        ),
        # a line that is no header field starts the body (as parsers read it)
        (
            b"Subject: s\r\nsecret without a blank line\r\nmore\r\n",
            b"Subject: s\r\n",
            b"\r\nsecret without a blank line\r\nmore\r\n",
        ),
        # no header at all
        (b"\r\nsecret\r\n", b"", b"\r\nsecret\r\n"),
        # a header and no body
        (
            b"Subject: s\r\nContent-Type: text/plain",
            b"Subject: s\r\n",
            b"Content-Type: text/plain\r\n\r\n",
        ),
    ],
)
def test_malformed_mail_keeps_nothing_but_header_fields_in_clear(keys, data, clear, entity):
    stored = encryption.encrypt(data, _pgp(keys[0]))
    assert b"secret" not in stored
    assert stored.startswith(clear + b"MIME-Version: 1.0\r\nContent-Type: multipart/encrypted")
    assert pgp_decrypt(stored, keys[0]) == entity


# Clear content under the Content-Type of an encrypted message: the old check believed the
# header and stored every one of these in clear. (Content-Type, body)
DECLARED_ONLY = [
    pytest.param(
        b'multipart/encrypted; protocol="application/pgp-encrypted"; boundary="b"',
        b"--b\r\nContent-Type: text/plain\r\n\r\nsecret words\r\n--b--\r\n",
        id="pgp-mime-without-armour",
    ),
    pytest.param(
        b'multipart/encrypted; protocol="application/pkcs7-encrypted"; boundary="b"',
        b"--b\r\n\r\n-----BEGIN PGP MESSAGE-----\r\nsecret words\r\n--b--\r\n",
        id="multipart-encrypted-other-protocol",
    ),
    pytest.param(
        b"multipart/encrypted",
        b"-----BEGIN PGP MESSAGE-----\r\nsecret words\r\n",
        id="multipart-encrypted-no-protocol",
    ),
    pytest.param(
        b"application/pkcs7-mime",
        base64.encodebytes(b"0 secret words").replace(b"\n", b"\r\n"),
        id="pkcs7-mime-without-smime-type",
    ),
    pytest.param(
        b"application/pkcs7-mime; smime-type=enveloped-data",
        b"secret words\r\n",
        id="pkcs7-mime-not-base64",
    ),
    pytest.param(
        b"application/x-pkcs7-mime; smime-type=enveloped-data",
        base64.encodebytes(b"secret words").replace(b"\n", b"\r\n"),
        id="x-pkcs7-mime-base64-not-der",
    ),
    pytest.param(
        b"application/pkcs7-mime; smime-type=authEnveloped-data",
        base64.encodebytes(b"0\x0csecret words").replace(b"\n", b"\r\n"),
        id="pkcs7-mime-sequence-of-something-else",
    ),
    pytest.param(
        b"application/pkcs7-mime; smime-type=signed-data",
        base64.encodebytes(b"secret words").replace(b"\n", b"\r\n"),
        id="pkcs7-mime-signed-data",
    ),
]


@pytest.mark.parametrize(("ctype", "body"), DECLARED_ONLY)
def test_clear_content_declared_encrypted_is_encrypted_all_the_same(keys, ctype, body):
    entity = b"MIME-Version: 1.0\r\nContent-Type: " + ctype + b"\r\n\r\n" + body
    data = b"From: a@remote.example\r\nSubject: s\r\n" + entity
    stored = encryption.encrypt(data, _pgp(keys[0]))
    assert stored != data and body not in stored and b"secret words" not in stored
    assert pgp_decrypt(stored, keys[0]) == entity
    certificate, private = smime_identity()
    stored = encryption.encrypt(data, AtRest("smime", "Aes128", pem(certificate)))
    assert body not in stored and b"secret words" not in stored
    assert smime_decrypt(stored, certificate, private) == entity
    assert not encryption.is_encrypted(data.split(b"\r\n\r\n", 1)[0] + b"\r\n", body)


def test_a_pgp_mime_message_is_not_encrypted_again(keys):
    once = encryption.encrypt(MIME, _pgp(keys[0]))
    assert encryption.encrypt(once, _pgp(keys[1])) == once
    certificate, _ = smime_identity()
    assert encryption.encrypt(once, AtRest("smime", "Aes128", pem(certificate))) == once
    # with bare LF line endings, as some clients store it
    lf = once.replace(b"\r\n", b"\n")
    assert encryption.encrypt(lf, _pgp(keys[1])) == lf


def test_real_enveloped_data_is_recognised_in_every_spelling():
    certificate, _ = smime_identity()
    once = encryption.encrypt(MIME, AtRest("smime", "Aes256", pem(certificate)))
    head, body = once.split(b"\r\n\r\n", 1)
    x_type = head.replace(b"application/pkcs7-mime; smime-type=enveloped-data",
                          b"application/x-pkcs7-mime; smime-type=Enveloped-Data")  # fmt: skip
    assert x_type != head
    assert encryption.is_encrypted(x_type + b"\r\n", body)
    # AuthEnvelopedData (RFC 5083), which `cryptography` cannot write: BER indefinite
    # length, then its contentType OID.
    auth = base64.b64encode(bytes.fromhex("3080060b2a864886f70d0109100117a080") + b"\0" * 30)
    head = b'Content-Type: application/pkcs7-mime; smime-type="authEnveloped-data"\r\n'
    assert encryption.is_encrypted(head, auth + b"\r\n")
    assert not encryption.is_encrypted(head, b"")


def test_key_parsing_from_many_threads_leaves_the_warning_filters_alone(keys):
    before = list(warnings.filters)
    text = _pgp(*keys).certificates
    errors = []

    def parse() -> None:
        try:
            for _ in range(40):
                encryption._pgp_keys.cache_clear()
                assert len(encryption._pgp_keys(text)) == 2
        except Exception as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=parse) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert warnings.filters == before
