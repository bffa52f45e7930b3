"""DKIM keys and signatures: pure functions over bytes, no database.

RSA keys are published as the base64 DER SubjectPublicKeyInfo (RFC 6376); Ed25519 keys as
the base64 of the 32 raw public bytes (RFC 8463). Private keys are stored as PKCS#8 PEM.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import date

import dkim as dkimpy
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

RSA = "rsa"
ED25519 = "ed25519"
ALGORITHMS = (RSA, ED25519)
RSA_BITS = 2048
SELECTOR_RE = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_SUFFIX = {RSA: "r", ED25519: "e"}


@dataclass(frozen=True)
class KeyPair:
    algorithm: str
    private_pem: str  # PKCS#8; never logged, never returned by an API
    public_key: str  # the p= value

    def __repr__(self) -> str:  # keep the private half out of tracebacks and logs
        return f"KeyPair(algorithm={self.algorithm!r}, public_key={self.public_key[:16]!r}...)"


def generate(algorithm: str) -> KeyPair:
    if algorithm == RSA:
        private = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
        public = private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    elif algorithm == ED25519:
        private = ed25519.Ed25519PrivateKey.generate()
        public = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
    else:
        raise ValueError(f"unknown DKIM algorithm {algorithm!r}")
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    return KeyPair(algorithm, pem, base64.b64encode(public).decode("ascii"))


def txt_record(algorithm: str, public_key: str) -> str:
    """The TXT record published at <selector>._domainkey.<domain>."""
    return f"v=DKIM1; k={algorithm}; h=sha256; p={public_key}"


def is_valid_selector(selector: str) -> bool:
    return bool(SELECTOR_RE.match(selector or ""))


def default_selector(algorithm: str, *, today: date, taken: Collection[str] = ()) -> str:
    """`<YYYYMM><r|e>` like 202611r; a second key of the month gets 202611r2, 202611r3..."""
    base = f"{today:%Y%m}{_SUFFIX[algorithm]}"
    taken_lower = {s.lower() for s in taken}
    if base not in taken_lower:
        return base
    n = 2
    while f"{base}{n}" in taken_lower:
        n += 1
    return f"{base}{n}"


def _signing_key(algorithm: str, private_pem: str) -> bytes:
    """What dkimpy takes: PEM for RSA; base64 of the 32-byte seed for Ed25519."""
    if algorithm == RSA:
        return private_pem.encode("ascii")
    private = serialization.load_pem_private_key(private_pem.encode("ascii"), password=None)
    if not isinstance(private, ed25519.Ed25519PrivateKey):
        raise ValueError("not an Ed25519 private key")
    seed = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return base64.b64encode(seed)


def line_ending(message: bytes) -> bytes:
    """The message's own line ending: CRLF (as on the wire) or LF (as stored on disk),
    judged by its first line."""
    end = message.find(b"\n")
    return b"\r\n" if end > 0 and message[end - 1 : end] == b"\r" else b"\n"


def sign(message: bytes, *, domain: str, selector: str, key) -> bytes:
    """The DKIM-Signature header (folded) to prepend to `message`, its lines ending the
    way the message's do, so the signed message keeps one line ending throughout.

    `key` is a KeyPair or a DkimKey row: anything with `algorithm` and the PEM in
    `private_pem` or `private_key`. A retired key (private key destroyed) cannot sign.
    """
    algorithm = key.algorithm
    pem = getattr(key, "private_pem", None) or key.private_key
    if not pem:
        raise ValueError(f"the DKIM key {selector} has no private key (retired)")
    kwargs = {"signature_algorithm": b"ed25519-sha256"} if algorithm == ED25519 else {}
    return dkimpy.sign(
        message,
        selector.encode("ascii"),
        domain.encode("ascii"),
        _signing_key(algorithm, pem),
        linesep=line_ending(message),
        **kwargs,
    )


def verify(message: bytes, *, dnsfunc: Callable[..., bytes | None]) -> bool:
    """Check the first DKIM-Signature of `message`, fetching keys with `dnsfunc(name)`."""
    return bool(dkimpy.verify(message, dnsfunc=dnsfunc))
