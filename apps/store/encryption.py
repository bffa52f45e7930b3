"""Encryption at rest: what an account that set `/api/account/crypto` gets in its mailbox.

As in Stalwart, every message delivered into such a mailbox is stored encrypted to the
account's keys, as a standard message its mail client decrypts with the private key:

- OpenPGP: PGP/MIME (RFC 3156): `multipart/encrypted; protocol="application/pgp-encrypted"`,
  a `Version: 1` part and the armoured OpenPGP message (RFC 4880), encrypted to every stored
  key with one session key;
- S/MIME: `application/pkcs7-mime; smime-type=enveloped-data` (RFC 8551), CMS
  EnvelopedData with one RecipientInfo per certificate.

The top-level header fields other than Content-* and MIME-Version stay in clear (the list
pages, threading and search by sender need them; they travelled in clear over SMTP anyway);
the encrypted payload is the original entity: its Content-* header fields and its body.

A message that is already encrypted (its body, not only its Content-Type, says so) is
stored as it is. When encryption fails (a key that
expired since it was uploaded, a certificate `cryptography` cannot encrypt to), the message
is stored in clear and a warning logged, as Stalwart does: losing mail is worse.

Pure functions apart from `at_rest_for` (one query for a whole delivery batch).
"""

from __future__ import annotations

import base64
import functools
import logging
import re
import secrets
import sys
import warnings
from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from email.parser import HeaderParser
from email.policy import compat32
from email.utils import collapse_rfc2231_value

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7

from apps.accounts.auth.crypto import _ARMOUR, _PEM  # the parsers that validated the keys
from apps.store.headers import header_text

# Warning filters are set once, here, never with catch_warnings(): it swaps the
# process-wide filter list without a lock, and the SMTP listener delivers (and may first
# import this module) from several threads, so two of them at once can leave every
# warning ignored or drop these filters.
warnings.filterwarnings("ignore", "'imghdr' is deprecated", DeprecationWarning)  # pgpy's
import pgpy  # noqa: E402
from pgpy.constants import SymmetricKeyAlgorithm  # noqa: E402

logger = logging.getLogger(__name__)
# The account chose the cipher (AES is a MUST for every OpenPGP implementation), whatever
# its key's preferences say.
warnings.filterwarnings("ignore", "Selected .* algorithm not in key preferences", UserWarning)
# A key whose armour checksum is wrong still parses (it was validated on upload, and the
# stored text is PGPy's own armour); the one warning PGPy gives while reading a key.
warnings.filterwarnings("ignore", "Incorrect crc24", UserWarning)

PGP = "pgp"
SMIME = "smime"
_PGP_CIPHERS = {"Aes128": SymmetricKeyAlgorithm.AES128, "Aes256": SymmetricKeyAlgorithm.AES256}
# cryptography's PKCS7EnvelopeBuilder offers AES-128-CBC and AES-256-CBC only: no
# AES-GCM AuthEnvelopedData (RFC 8551 prefers it), and RSA recipients only (key transport
# with PKCS#1 v1.5; no ECDH key agreement), so an EC certificate is skipped (logged).
_SMIME_CIPHERS = {"Aes128": algorithms.AES128, "Aes256": algorithms.AES256}
_INNER = re.compile(rb"^(content-[!-9;-~]*|mime-version)[ \t]*:", re.IGNORECASE)
_FIELD = re.compile(rb"^[!-9;-~]+[ \t]*:")


class EncryptionFailed(Exception):
    """The message could not be encrypted to the account's keys."""


@dataclass(frozen=True)
class AtRest:
    kind: str  # PGP or SMIME
    algorithm: str  # Aes128 / Aes256
    certificates: str  # as apps.accounts.auth.crypto normalised them


def at_rest_for(principals: Iterable) -> dict[int, AtRest]:
    """The encryption settings of those of `principals` that encrypt, by principal id: one
    query for the whole batch (none for an empty one)."""
    from apps.accounts.models import EncryptionSettings

    ids = {p.pk for p in principals}
    if not ids:
        return {}
    rows = EncryptionSettings.objects.filter(
        principal_id__in=ids, type__in=(PGP, SMIME)
    ).values_list("principal_id", "type", "algorithm", "certificates")
    return {pk: AtRest(kind, algo, certs) for pk, kind, algo, certs in rows if certs}


def copies_for(principals: Iterable, data: bytes) -> dict[int, bytes]:
    """The bytes to store for each of `principals`: `data` itself (the same object, so the
    clear copies share one blob) unless the account encrypts at rest. One query."""
    principals = list(principals)
    settings = at_rest_for(principals)
    encrypted: dict[AtRest, bytes] = {}
    copies = {}
    for principal in principals:
        at_rest = settings.get(principal.pk)
        if at_rest is None:
            copies[principal.pk] = data
            continue
        if at_rest not in encrypted:
            encrypted[at_rest] = protect(data, at_rest, owner=principal.name)
        copies[principal.pk] = encrypted[at_rest]
    return copies


def protect(data: bytes, at_rest: AtRest | None, *, owner: str = "") -> bytes:
    """`encrypt`, or `data` in clear (logged) when it cannot be encrypted."""
    if at_rest is None:
        return data
    try:
        return encrypt(data, at_rest)
    except EncryptionFailed as exc:
        logger.warning("storing a message for %s in clear: %s", owner or "?", exc)
        return data
    except Exception:  # noqa: BLE001 - a bug here must not lose the message either
        logger.exception("storing a message for %s in clear: encryption failed", owner or "?")
        return data


def encrypt(data: bytes, at_rest: AtRest) -> bytes:
    """The message to store for an account with these settings (`data` when the message
    is already encrypted)."""
    data = bytes(data)
    outer, inner, body, eol = split(data)
    if is_encrypted(outer + inner, body):
        return data
    entity = b"".join(inner) + eol + body
    if at_rest.kind == PGP:
        new_headers, new_body = _pgp_mime(entity, at_rest, eol)
    elif at_rest.kind == SMIME:
        new_headers, new_body = _smime(entity, at_rest, eol)
    else:
        raise EncryptionFailed(f"unknown encryption type {at_rest.kind!r}")
    return b"".join(outer) + new_headers + eol + new_body


def split(data: bytes) -> tuple[list[bytes], list[bytes], bytes, bytes]:
    """(clear header fields, Content-*/MIME-Version fields, body, line ending), each field
    with its folded lines and line endings exactly as received.

    The header ends at the first empty line (CRLF or bare LF, whichever comes) or, in a
    malformed message, at the first line that is neither a field nor a continuation (as
    mail parsers read it): whatever is not a header field is encrypted, never kept clear.
    """
    first = data.find(b"\n")
    eol = b"\r\n" if first > 0 and data[first - 1 : first] == b"\r" else b"\n"
    fields: list[bytes] = []
    position = 0
    while position < len(data):
        stop = data.find(b"\n", position)
        stop = len(data) if stop < 0 else stop + 1
        line = data[position:stop]
        if line in (b"\r\n", b"\n"):
            position = stop  # the separator: the body follows it
            break
        if fields and line[:1] in (b" ", b"\t"):
            fields[-1] += line
        elif _FIELD.match(line):
            fields.append(line)
        else:
            break  # not a header field: the body starts here
        position = stop
    body = data[position:]
    if fields and not fields[-1].endswith(b"\n"):
        fields[-1] += eol  # a header without a body
    outer = [f for f in fields if not _INNER.match(f)]
    inner = [f for f in fields if _INNER.match(f)]
    return outer, inner, body, eol


def is_encrypted(head: bytes | list[bytes], body: bytes) -> bool:
    """Is this message really PGP/MIME or S/MIME enveloped data already?

    The Content-Type alone is the sender's word: anyone can declare `multipart/encrypted`
    over clear text and have it stored in clear. So the body must look the part too: an
    armoured OpenPGP message inside PGP/MIME, a base64 CMS ContentInfo of enveloped or
    authEnveloped data in S/MIME. Cheap checks, no decryption or full parse; anything else
    is encrypted like any clear message (at worst a real one is wrapped twice).
    """
    if isinstance(head, list):
        head = b"".join(head)
    try:
        parsed = HeaderParser(policy=compat32).parsestr(header_text(head))
        ctype = parsed.get_content_type()
        protocol = _param(parsed, "protocol")
        smime_type = _param(parsed, "smime-type")
    except Exception:  # noqa: BLE001 - a broken Content-Type is not an encrypted one
        return False
    if ctype == "multipart/encrypted":
        return protocol == "application/pgp-encrypted" and bool(_PGP_BLOCK.search(body))
    if ctype in ("application/pkcs7-mime", "application/x-pkcs7-mime"):
        return smime_type in ("enveloped-data", "authenveloped-data") and _is_enveloped(body)
    return False


_PGP_BLOCK = re.compile(rb"^-----BEGIN PGP MESSAGE-----[ \t]*\r?$", re.MULTILINE)
# The DER of ContentInfo's contentType OIDs (RFC 5652 §6, RFC 5083 §1): envelopedData
# 1.2.840.113549.1.7.3 and authEnvelopedData 1.2.840.113549.1.9.16.1.23.
_ENVELOPED_OIDS = (
    bytes.fromhex("06092a864886f70d010703"),
    bytes.fromhex("060b2a864886f70d0109100117"),
)


def _param(parsed, name: str) -> str:
    value = parsed.get_param(name, "")
    return str(collapse_rfc2231_value(value) if value else "").strip().lower()


def _is_enveloped(body: bytes) -> bool:
    """Does this base64 body decode to a DER SEQUENCE that opens with an enveloped-data
    contentType? The whole body must be base64: clear text around it is not enveloped."""
    try:
        der = base64.b64decode(re.sub(rb"\s+", b"", body), validate=True)
    except ValueError:
        return False
    if len(der) < 2 or der[0] != 0x30:  # SEQUENCE
        return False
    length = der[1]
    if length <= 0x80:  # short form, or BER's indefinite length (CMS allows BER)
        start = 2
    elif length <= 0x84:
        start = 2 + (length & 0x7F)
    else:
        return False
    return der[start:].startswith(_ENVELOPED_OIDS)


def _boundary() -> str:
    return "=_encrypted_" + secrets.token_hex(12)


def _pgp_mime(entity: bytes, at_rest: AtRest, eol: bytes) -> tuple[bytes, bytes]:
    cipher = _PGP_CIPHERS.get(at_rest.algorithm, SymmetricKeyAlgorithm.AES256)
    keys = _pgp_keys(at_rest.certificates)
    if not keys:
        raise EncryptionFailed("no OpenPGP key could be read")
    try:
        message = pgpy.PGPMessage.new(entity, format="b")  # binary literal: bytes kept
        session_key = cipher.gen_key()
        for key in keys:
            message = key.encrypt(message, cipher=cipher, sessionkey=session_key)
        del session_key
    except Exception as exc:  # noqa: BLE001 - PGPy raises many kinds
        raise EncryptionFailed(f"OpenPGP encryption failed: {exc}") from None
    armoured = _armour(bytes(message), eol)
    boundary = _boundary().encode("ascii")
    headers = (
        b"MIME-Version: 1.0" + eol
        + b'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted";' + eol
        + b' boundary="' + boundary + b'"' + eol
    )  # fmt: skip
    body = eol.join(
        [
            b"This is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)",
            b"--" + boundary,
            b"Content-Type: application/pgp-encrypted",
            b"Content-Description: PGP/MIME version identification",
            b"",
            b"Version: 1",
            b"",
            b"--" + boundary,
            b'Content-Type: application/octet-stream; name="encrypted.asc"',
            b"Content-Description: OpenPGP encrypted message",
            b'Content-Disposition: inline; filename="encrypted.asc"',
            b"",
            armoured + b"--" + boundary + b"--",
            b"",
        ]
    )
    return headers, body


@functools.cache
def _crc24_tables() -> tuple[array, array]:
    """CRC-24 (RFC 4880 §6.1) tables for one byte and for two bytes at a time: the two-byte
    one halves the Python loop (256 KiB, made on first use)."""
    by_byte = array("I", [0] * 256)
    for byte in range(256):
        crc = byte << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1864CFB
        by_byte[byte] = crc & 0xFFFFFF
    by_word = array("I", [0] * 65536)
    for word in range(65536):
        # 16 steps on a register whose top 16 bits are `word`: two byte steps
        crc = ((word & 0xFF) << 16) ^ by_byte[word >> 8]
        by_word[word] = ((crc << 8) & 0xFFFFFF) ^ by_byte[crc >> 16]
    return by_byte, by_word


def _crc24(data: bytes) -> int:
    by_byte, by_word = _crc24_tables()
    crc = 0xB704CE
    even = len(data) & ~1
    words = array("H", data[:even])
    if sys.byteorder == "little":
        words.byteswap()
    for word in words:
        # after 16 steps the low 8 bits sit on top, the top 16 have been fed back
        crc = ((crc & 0xFF) << 16) ^ by_word[(crc >> 8) ^ word]
    for byte in data[even:]:
        crc = ((crc << 8) & 0xFFFFFF) ^ by_byte[(crc >> 16) ^ byte]
    return crc


def _armour(packets: bytes, eol: bytes) -> bytes:
    """ASCII armour (RFC 4880 §6.2) with its CRC-24, which RFC 9580 no longer asks for but
    PGPy's reader still requires. PGPy's own armour computes it bit by bit: 90% of the
    time a 300 KB message took; tables do it two bytes at a time."""
    encoded = base64.b64encode(packets)
    lines = [encoded[i : i + 64] for i in range(0, len(encoded), 64)]
    crc = b"=" + base64.b64encode(_crc24(packets).to_bytes(3, "big"))
    return eol.join(
        [b"-----BEGIN PGP MESSAGE-----", b"", *lines, crc, b"-----END PGP MESSAGE-----", b""]
    )


def _smime(entity: bytes, at_rest: AtRest, eol: bytes) -> tuple[bytes, bytes]:
    certificates = _smime_certificates(at_rest.certificates)
    if not certificates:
        raise EncryptionFailed("no certificate with an RSA key to encrypt to")
    # RFC 8551 §3.1.1: the entity is encrypted in canonical form (CRLF line endings); mail
    # from SMTP already is, so this changes nothing there. Binary: OpenSSL leaves it as is.
    canonical = re.sub(rb"\r?\n", b"\r\n", entity)
    builder = pkcs7.PKCS7EnvelopeBuilder().set_data(canonical)
    for certificate in certificates:
        builder = builder.add_recipient(certificate)
    builder = builder.set_content_encryption_algorithm(
        _SMIME_CIPHERS.get(at_rest.algorithm, algorithms.AES256)
    )
    try:
        der = builder.encrypt(Encoding.DER, [pkcs7.PKCS7Options.Binary])
    except (ValueError, TypeError) as exc:
        raise EncryptionFailed(f"S/MIME encryption failed: {exc}") from None
    encoded = base64.encodebytes(der).replace(b"\n", eol)
    headers = (
        b"MIME-Version: 1.0" + eol
        + b'Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name="smime.p7m"'
        + eol
        + b'Content-Disposition: attachment; filename="smime.p7m"' + eol
        + b"Content-Transfer-Encoding: base64" + eol
    )  # fmt: skip
    return headers, encoded


# Parsed once per process for each distinct key set: parsing is the dearer part of a
# small message's encryption, and a mailbox's settings change rarely.
@functools.lru_cache(maxsize=256)
def _pgp_keys(text: str) -> tuple:
    keys = []
    for block in _ARMOUR.finditer(text):
        try:
            key, _ = pgpy.PGPKey.from_blob(block.group(0))
        except Exception:  # noqa: BLE001 - validated on upload; skip what no longer reads
            logger.warning("an OpenPGP key stored for encryption at rest does not parse")
            continue
        keys.append(key)
    return tuple(keys)


@functools.lru_cache(maxsize=256)
def _smime_certificates(text: str) -> tuple[x509.Certificate, ...]:
    found = []
    for block in _PEM.finditer(text):
        try:
            certificate = x509.load_pem_x509_certificate(block.group(0).encode("ascii"))
        except ValueError:
            logger.warning("an S/MIME certificate stored for encryption at rest does not parse")
            continue
        if not isinstance(certificate.public_key(), rsa.RSAPublicKey):
            logger.warning(
                "S/MIME certificate %s: only RSA keys can be encrypted to; skipped",
                certificate.subject.rfc4514_string()[:200],
            )
            continue
        found.append(certificate)
    return tuple(found)
