"""Validation of the keys and certificates for encryption at rest, with real parsers.

OpenPGP public keys are parsed with PGPy (RFC 4880 packets, the armour checksum, the
self-signatures and the key flags); S/MIME certificates with `cryptography`'s X.509 parser.
What is stored is the parsers' own re-serialisation, so the store never has to deal with
odd whitespace or trailing junk.
"""

from __future__ import annotations

import base64
import binascii
import re
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding

# Filters set once, here, never with catch_warnings(): that swaps the process-wide filter
# list without a lock, and keys are parsed on web request threads. pgpy imports `imghdr`
# (deprecated in 3.11/3.12) and warns about the checks it leaves out (revocations) on
# every verify(): neither says anything about the key being uploaded.
warnings.filterwarnings("ignore", "'imghdr' is deprecated", DeprecationWarning)
warnings.filterwarnings("ignore", category=UserWarning, module=r"pgpy(\.|$)")
import pgpy  # noqa: E402
from pgpy.constants import KeyFlags  # noqa: E402

MAX_INPUT_BYTES = 64 * 1024
MAX_ITEMS = 16
ALGORITHMS = {"aes128": "Aes128", "aes256": "Aes256"}

_ARMOUR = re.compile(
    r"-----BEGIN PGP (?P<kind>[A-Z ,/0-9]+)-----\n(?P<body>.*?)-----END PGP (?P=kind)-----",
    re.DOTALL,
)
_PEM = re.compile(
    r"-----BEGIN (?P<kind>[A-Z0-9 ]+)-----\n(?P<body>.*?)-----END (?P=kind)-----", re.DOTALL
)
_ENCRYPTING_FLAGS = {KeyFlags.EncryptCommunications, KeyFlags.EncryptStorage}


class InvalidKey(ValueError):
    """A key or certificate the store could not encrypt to; the message is for a person."""


@dataclass(frozen=True)
class ParsedKeys:
    count: int
    normalized: str
    identities: list[str]  # fingerprints / subjects, for the audit log and the UI


def _normalize_text(text: str) -> str:
    # Pasted keys come with indentation, CRLF and trailing blanks (the spec's sample has
    # every line indented): armour is line-oriented, so strip each line.
    return "\n".join(line.strip() for line in text.replace("\r\n", "\n").split("\n")) + "\n"


def _check_size(text: str, what: str) -> None:
    if not text or not text.strip():
        raise InvalidKey(f"Invalid {what}: nothing was given.")
    if len(text.encode("utf-8")) > MAX_INPUT_BYTES:
        raise InvalidKey(f"Invalid {what}: larger than {MAX_INPUT_BYTES // 1024} KiB.")


def _crc24(data: bytes) -> int:
    crc = 0xB704CE
    for byte in data:
        crc ^= byte << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1864CFB
    return crc & 0xFFFFFF


# --- OpenPGP ---------------------------------------------------------------------------


def parse_openpgp_public_keys(text: str, *, now: datetime | None = None) -> ParsedKeys:
    """Every armoured public key in `text`, each able to encrypt, or InvalidKey."""
    what = "OpenPGP public key"
    _check_size(text, what)
    text = _normalize_text(text)
    blocks = list(_ARMOUR.finditer(text))
    if not blocks:
        raise InvalidKey(f"Invalid {what}: no ASCII-armoured PUBLIC KEY BLOCK found.")
    if len(blocks) > MAX_ITEMS:
        raise InvalidKey(f"Invalid {what}: more than {MAX_ITEMS} keys.")
    keys = []
    for index, block in enumerate(blocks, start=1):
        label = f"key {index}: " if len(blocks) > 1 else ""
        kind = block["kind"]
        if "PRIVATE" in kind or "SECRET" in kind:
            raise InvalidKey(
                f"Invalid {what}: {label}this is a private key; upload the public key only."
            )
        if kind != "PUBLIC KEY BLOCK":
            raise InvalidKey(f"Invalid {what}: {label}expected a PUBLIC KEY BLOCK, not {kind}.")
        keys.append(_parse_one_openpgp(block["body"], label, now or datetime.now(UTC)))
    fingerprints = [str(key.fingerprint).replace(" ", "") for key in keys]
    if len(set(fingerprints)) != len(fingerprints):
        raise InvalidKey(f"Invalid {what}: the same key was given twice.")
    return ParsedKeys(
        count=len(keys),
        normalized="\n".join(str(key).strip() + "\n" for key in keys),
        identities=fingerprints,
    )


def _unarmour(body: str) -> bytes | None:
    """The packets of an armour body (RFC 4880 §6.2), its CRC-24 checked when present."""
    lines = body.split("\n")
    while lines and ": " in lines[0]:  # armour headers (Version:, Comment:)
        lines.pop(0)
    data_lines, crc_line = [], None
    for line in lines:
        if not line:
            continue
        if line.startswith("=") and len(line) == 5:
            crc_line = line[1:]
            break
        data_lines.append(line)
    try:
        data = base64.b64decode("".join(data_lines), validate=True)
        crc = int.from_bytes(base64.b64decode(crc_line, validate=True)) if crc_line else None
    except (binascii.Error, ValueError):
        return None
    if crc is not None and crc != _crc24(data):
        raise InvalidKey("the armour checksum does not match (the key is damaged).")
    return data


def _parse_one_openpgp(body: str, label: str, now: datetime) -> pgpy.PGPKey:
    prefix = f"Invalid OpenPGP public key: {label}"
    try:
        data = _unarmour(body)
    except InvalidKey as exc:
        raise InvalidKey(f"{prefix}{exc}") from None
    if not data:
        raise InvalidKey(f"{prefix}the armour is not valid base64.")
    if not data[0] & 0x80:  # every OpenPGP packet header has bit 7 set
        raise InvalidKey(f"{prefix}the data is not OpenPGP packets.")
    try:
        key, _ = pgpy.PGPKey.from_blob(bytearray(data))
    except Exception as exc:  # noqa: BLE001 - any parser failure is the user's input
        raise InvalidKey(f"{prefix}{_reason(exc, 'the key packets cannot be parsed.')}") from None
    if getattr(key, "_key", None) is None:
        raise InvalidKey(f"{prefix}no key packet found.")
    if not key.is_public:
        raise InvalidKey(f"{prefix}this is a private key; upload the public key only.")
    try:
        uids_ok = [bool(key.verify(uid)) for uid in key.userids]
        if not any(uids_ok):
            raise InvalidKey(f"{prefix}no user ID carries a valid self-signature.")
        if key.is_expired or (key.expires_at is not None and key.expires_at <= now):
            raise InvalidKey(f"{prefix}the key has expired.")
        if not _can_encrypt(key):
            raise InvalidKey(f"{prefix}the key has no valid encryption (sub)key.")
    except InvalidKey:
        raise
    except Exception as exc:  # noqa: BLE001
        raise InvalidKey(f"{prefix}{_reason(exc, 'a signature cannot be checked.')}") from None
    return key


def _can_encrypt(key: pgpy.PGPKey) -> bool:
    candidates = [(key, True)]
    candidates += [(sub, bool(key.verify(sub))) for sub in key.subkeys.values()]
    for candidate, bound in candidates:
        if not bound or not candidate.key_algorithm.can_encrypt or candidate.is_expired:
            continue
        flags = candidate._get_key_flags()  # flags from the self- or binding signature
        if not flags or flags & _ENCRYPTING_FLAGS:
            return True
    return False


def _reason(exc: Exception, default: str) -> str:
    text = str(exc).strip().rstrip(".")
    if not text or len(text) > 160:
        return default
    return text[0].lower() + text[1:] + "."


# --- S/MIME ----------------------------------------------------------------------------


def parse_smime_certificates(text: str, *, now: datetime | None = None) -> ParsedKeys:
    """Every PEM certificate in `text`, each valid now and usable for encryption."""
    what = "S/MIME certificate"
    _check_size(text, what)
    text = _normalize_text(text)
    blocks = list(_PEM.finditer(text))
    if not blocks:
        raise InvalidKey(f"Invalid {what}: no PEM CERTIFICATE block found.")
    if len(blocks) > MAX_ITEMS:
        raise InvalidKey(f"Invalid {what}: more than {MAX_ITEMS} certificates.")
    now = now or datetime.now(UTC)
    certificates = []
    for index, block in enumerate(blocks, start=1):
        label = f"certificate {index}: " if len(blocks) > 1 else ""
        prefix = f"Invalid {what}: {label}"
        kind = block["kind"]
        if "PRIVATE KEY" in kind:
            raise InvalidKey(f"{prefix}this is a private key; upload the certificate only.")
        if kind not in {"CERTIFICATE", "X509 CERTIFICATE"}:
            raise InvalidKey(f"{prefix}expected a CERTIFICATE, not {kind}.")
        pem = f"-----BEGIN CERTIFICATE-----\n{block['body']}-----END CERTIFICATE-----\n"
        try:
            cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
            public_key = cert.public_key()
        except (ValueError, UnicodeError) as exc:
            raise InvalidKey(
                f"{prefix}{_reason(exc, 'the certificate cannot be parsed.')}"
            ) from None
        if cert.not_valid_after_utc <= now:
            raise InvalidKey(f"{prefix}the certificate has expired.")
        if cert.not_valid_before_utc > now:
            raise InvalidKey(f"{prefix}the certificate is not valid yet.")
        if not isinstance(public_key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
            raise InvalidKey(f"{prefix}only RSA and elliptic-curve keys can receive S/MIME mail.")
        try:
            usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        except x509.ExtensionNotFound:
            usage = None
        except ValueError as exc:
            raise InvalidKey(f"{prefix}{_reason(exc, 'an extension is malformed.')}") from None
        if usage is not None and not (usage.key_encipherment or usage.key_agreement):
            raise InvalidKey(f"{prefix}its key usage does not allow encryption.")
        certificates.append(cert)
    return ParsedKeys(
        count=len(certificates),
        normalized="".join(c.public_bytes(Encoding.PEM).decode("ascii") for c in certificates),
        identities=[c.subject.rfc4514_string()[:200] for c in certificates],
    )


def normalize_algorithm(value: str) -> str | None:
    return ALGORITHMS.get((value or "").strip().lower())
