"""The listeners' TLS certificate: the configured one, or a self-signed one for development.

`MAILADMIN_TLS_CERT_FILE` (PEM chain, may also hold the key) and `MAILADMIN_TLS_KEY_FILE`
name the certificate. Without them a self-signed ECDSA certificate for MAILADMIN_HOSTNAME
is generated once into VAR_DIR (key and certificate in one 0600 file) and reused: MTAs
take it for opportunistic STARTTLS; mail clients on submission must be told to trust it.
"""

from __future__ import annotations

import datetime
import logging
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from mailadmin.env import generated_once

log = logging.getLogger(__name__)

SELF_SIGNED_NAME = "smtp-tls-selfsigned.pem"
SELF_SIGNED_DAYS = 3650


def self_signed_pem(hostname: str) -> str:
    """A private key and a self-signed certificate for `hostname`, as one PEM text."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname[:64])])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=SELF_SIGNED_DAYS))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return (key_pem + certificate.public_bytes(serialization.Encoding.PEM)).decode("ascii")


def certificate_files() -> tuple[str, str | None]:
    """(certificate file, key file or None when the certificate file holds the key)."""
    cert_file = settings.MAILADMIN_TLS_CERT_FILE
    key_file = settings.MAILADMIN_TLS_KEY_FILE
    if key_file and not cert_file:
        raise ImproperlyConfigured("MAILADMIN_TLS_KEY_FILE is set without MAILADMIN_TLS_CERT_FILE")
    if cert_file:
        return cert_file, key_file or None
    if settings.MAILADMIN_ENV == "production":
        log.warning(
            "MAILADMIN_TLS_CERT_FILE is not set: STARTTLS uses a self-signed certificate, "
            "which mail clients will not trust"
        )
    path = Path(settings.VAR_DIR) / SELF_SIGNED_NAME
    generated_once(path, lambda: self_signed_pem(settings.MAILADMIN_HOSTNAME))
    return str(path), None


def server_context() -> ssl.SSLContext:
    """The context STARTTLS uses (TLS 1.2 or newer, no client certificates asked for)."""
    cert_file, key_file = certificate_files()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert_file, key_file)
    except (OSError, ssl.SSLError) as exc:
        raise ImproperlyConfigured(f"cannot load the TLS certificate {cert_file}: {exc}") from exc
    return context
