"""Throwaway keys for the encryption-at-rest tests, and the decryption a mail client does."""

from __future__ import annotations

import base64
import email
import warnings
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import pgpy
    from pgpy.constants import (
        EllipticCurveOID,
        HashAlgorithm,
        KeyFlags,
        PubKeyAlgorithm,
        SymmetricKeyAlgorithm,
    )

# CMS content-encryption algorithm identifiers (DER of the OIDs, RFC 3565).
AES128_CBC_OID = bytes.fromhex("0609608648016503040102")
AES256_CBC_OID = bytes.fromhex("060960864801650304012a")


def pgp_key(name: str = "Jane") -> pgpy.PGPKey:
    """An Ed25519 primary key with a Curve25519 encryption subkey (fast to make)."""
    key = pgpy.PGPKey.new(PubKeyAlgorithm.EdDSA, EllipticCurveOID.Ed25519)
    uid = pgpy.PGPUID.new(name, email=f"{name.lower()}@example.test")
    key.add_uid(
        uid,
        usage={KeyFlags.Sign, KeyFlags.Certify},
        hashes=[HashAlgorithm.SHA256],
        ciphers=[SymmetricKeyAlgorithm.AES256, SymmetricKeyAlgorithm.AES128],
    )
    sub = pgpy.PGPKey.new(PubKeyAlgorithm.ECDH, EllipticCurveOID.Curve25519)
    key.add_subkey(sub, usage={KeyFlags.EncryptCommunications, KeyFlags.EncryptStorage})
    return key


def smime_identity() -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.EMAIL_ADDRESS, "jane@example.test")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(private, hashes.SHA256())
    )
    return certificate, private


def pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def head_and_body(data: bytes) -> tuple[bytes, bytes]:
    head, _, body = data.partition(b"\r\n\r\n")
    return head + b"\r\n", body


def pgp_decrypt(stored: bytes, key: pgpy.PGPKey) -> bytes:
    """What a PGP/MIME client shows: the entity inside the second part."""
    message = email.message_from_bytes(stored)
    assert message.get_content_type() == "multipart/encrypted"
    assert message.get_param("protocol") == "application/pgp-encrypted"
    version, payload = message.get_payload()
    assert version.get_content_type() == "application/pgp-encrypted"
    assert version.get_payload().strip() == "Version: 1"
    assert payload.get_content_type() == "application/octet-stream"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        encrypted = pgpy.PGPMessage.from_blob(payload.get_payload())
        return bytes(key.decrypt(encrypted).message)


def smime_der(stored: bytes) -> bytes:
    message = email.message_from_bytes(stored)
    assert message.get_content_type() == "application/pkcs7-mime"
    assert message.get_param("smime-type") == "enveloped-data"
    assert message.get_param("name") == "smime.p7m"
    assert message["Content-Transfer-Encoding"] == "base64"
    return base64.b64decode(message.get_payload())


def smime_decrypt(stored: bytes, certificate, private) -> bytes:
    return pkcs7.pkcs7_decrypt_der(smime_der(stored), certificate, private, [])
