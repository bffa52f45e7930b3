"""Password hashers for hashes imported from other mail servers: SHA-512/256-crypt and bcrypt.

New passwords are hashed with Argon2 (first in PASSWORD_HASHERS). Mail servers such as
Dovecot, Postfix setups and Stalwart store crypt(3) strings: `$6$salt$hash` (SHA-512-crypt),
`$5$salt$hash` (SHA-256-crypt), `$2b$`/`$2y$`/`$2a$` (bcrypt). Django picks a hasher by the
text before the first `$`, which for a raw crypt string is empty, so:

- We store such hashes the Django way, with an algorithm prefix:
  `sha512_crypt$$6$...`, `sha256_crypt$$5$...`, `bcrypt$$2b$...` (the same shape as Django's
  own bcrypt hasher). `import_password_hash()` turns a raw crypt string into that form; every
  place that accepts a hash from outside (the principal API's `secrets`, `addAppPassword`)
  should pass it through there.
- A raw crypt string that reached the database anyway (a bulk import, an old row) still
  works: `to_django_encoded()` adds the prefix before checking, and the auth services use it.

Either way, the first successful login re-hashes the password with Argon2 (Django's
`check_password` setter: the hasher is not the preferred one).

Python 3.13 removed `crypt`, so SHA-crypt is implemented here after Ulrich Drepper's
specification ("Unix crypt using SHA-256 and SHA-512", 2008).
"""

from __future__ import annotations

import hashlib
import re
import secrets

import bcrypt
from django.contrib.auth.hashers import BasePasswordHasher, mask_hash
from django.utils.crypto import constant_time_compare
from django.utils.translation import gettext_noop

ITOA64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
ROUNDS_DEFAULT = 5000
ROUNDS_MIN = 1000
# The spec allows up to 999,999,999; beyond this a check would tie up a worker for minutes,
# and no mail server we import from writes more.
ROUNDS_MAX = 2_000_000
MAX_PASSWORD_BYTES = 4096

_SHA_CRYPT = re.compile(
    r"^\$(?P<id>[56])\$(?:rounds=(?P<rounds>[0-9]{1,9})\$)?(?P<salt>[^$:\n]{0,16})"
    r"\$(?P<hash>[./0-9A-Za-z]{43}|[./0-9A-Za-z]{86})$"
)
_BCRYPT = re.compile(r"^\$2[aby]\$[0-9]{2}\$[./0-9A-Za-z]{53}$")

# Byte order of the final digest in the output (from the specification).
_ORDER_512 = (
    (0, 21, 42), (22, 43, 1), (44, 2, 23), (3, 24, 45), (25, 46, 4), (47, 5, 26),
    (6, 27, 48), (28, 49, 7), (50, 8, 29), (9, 30, 51), (31, 52, 10), (53, 11, 32),
    (12, 33, 54), (34, 55, 13), (56, 14, 35), (15, 36, 57), (37, 58, 16), (59, 17, 38),
    (18, 39, 60), (40, 61, 19), (62, 20, 41),
)  # fmt: skip
_ORDER_256 = (
    (0, 10, 20), (21, 1, 11), (12, 22, 2), (3, 13, 23), (24, 4, 14), (15, 25, 5),
    (6, 16, 26), (27, 7, 17), (18, 28, 8), (9, 19, 29),
)  # fmt: skip


def _b64_from_24bit(b2: int, b1: int, b0: int, n: int) -> str:
    w = (b2 << 16) | (b1 << 8) | b0
    out = []
    for _ in range(n):
        out.append(ITOA64[w & 0x3F])
        w >>= 6
    return "".join(out)


def _repeat(block: bytes, length: int) -> bytes:
    return (block * (length // len(block) + 1))[:length]


def sha_crypt(password: bytes, salt: str, *, variant: str, rounds: int | None = None) -> str:
    """crypt(3) with `$5$` (SHA-256) or `$6$` (SHA-512); `rounds=None` means the default."""
    h = hashlib.sha512 if variant == "6" else hashlib.sha256
    size = h().digest_size
    salt_b = salt[:16].encode("ascii")
    n_rounds = ROUNDS_DEFAULT if rounds is None else min(max(rounds, ROUNDS_MIN), 999_999_999)

    b = h(password + salt_b + password).digest()
    a = h(password + salt_b)
    a.update(_repeat(b, len(password)))
    i = len(password)
    while i:
        a.update(b if i & 1 else password)
        i >>= 1
    c = a.digest()
    p = _repeat(h(password * len(password)).digest(), len(password))
    s = _repeat(h(salt_b * (16 + c[0])).digest(), len(salt_b))
    for r in range(n_rounds):
        ctx = h(p if r & 1 else c)
        if r % 3:
            ctx.update(s)
        if r % 7:
            ctx.update(p)
        ctx.update(c if r & 1 else p)
        c = ctx.digest()

    if size == 64:
        encoded = "".join(_b64_from_24bit(c[x], c[y], c[z], 4) for x, y, z in _ORDER_512)
        encoded += _b64_from_24bit(0, 0, c[63], 2)
    else:
        encoded = "".join(_b64_from_24bit(c[x], c[y], c[z], 4) for x, y, z in _ORDER_256)
        encoded += _b64_from_24bit(0, c[31], c[30], 3)
    rounds_part = "" if rounds is None else f"rounds={n_rounds}$"
    return f"${variant}${rounds_part}{salt[:16]}${encoded}"


def _sha_crypt_verify(password: str, crypt_string: str) -> bool:
    match = _SHA_CRYPT.match(crypt_string)
    if match is None:
        return False
    variant, rounds = match["id"], match["rounds"]
    if (variant == "6") != (len(match["hash"]) == 86):
        return False
    n_rounds = int(rounds) if rounds is not None else None
    if n_rounds is not None and n_rounds > ROUNDS_MAX:
        return False
    raw = password.encode("utf-8")
    if len(raw) > MAX_PASSWORD_BYTES:
        return False
    computed = sha_crypt(raw, match["salt"], variant=variant, rounds=n_rounds)
    return constant_time_compare(computed, crypt_string)


class _ShaCryptPasswordHasher(BasePasswordHasher):
    variant = ""

    def salt(self) -> str:
        return "".join(secrets.choice(ITOA64) for _ in range(16))

    def encode(self, password: str, salt: str) -> str:
        self._check_encode_args(password, salt)
        crypt_string = sha_crypt(password.encode("utf-8"), salt, variant=self.variant)
        return f"{self.algorithm}${crypt_string}"

    def decode(self, encoded: str) -> dict:
        algorithm, crypt_string = encoded.split("$", 1)
        match = _SHA_CRYPT.match(crypt_string)
        return {
            "algorithm": algorithm,
            "hash": match["hash"] if match else "",
            "iterations": int(match["rounds"]) if match and match["rounds"] else ROUNDS_DEFAULT,
            "salt": match["salt"] if match else "",
        }

    def verify(self, password: str, encoded: str) -> bool:
        algorithm, _, crypt_string = encoded.partition("$")
        if algorithm != self.algorithm or not crypt_string.startswith(f"${self.variant}$"):
            return False
        return _sha_crypt_verify(password, crypt_string)

    def safe_summary(self, encoded: str) -> dict:
        decoded = self.decode(encoded)
        return {
            gettext_noop("algorithm"): decoded["algorithm"],
            gettext_noop("iterations"): decoded["iterations"],
            gettext_noop("salt"): mask_hash(decoded["salt"], show=2),
            gettext_noop("hash"): mask_hash(decoded["hash"]),
        }

    def must_update(self, encoded: str) -> bool:
        return True  # imported hashes are only ever read, then replaced by Argon2

    def harden_runtime(self, password: str, encoded: str) -> None:
        pass


class SHA512CryptPasswordHasher(_ShaCryptPasswordHasher):
    """`sha512_crypt$$6$[rounds=N$]salt$hash` — imported SHA-512-crypt."""

    algorithm = "sha512_crypt"
    variant = "6"


class SHA256CryptPasswordHasher(_ShaCryptPasswordHasher):
    """`sha256_crypt$$5$[rounds=N$]salt$hash` — imported SHA-256-crypt."""

    algorithm = "sha256_crypt"
    variant = "5"


class BcryptCryptPasswordHasher(BasePasswordHasher):
    """`bcrypt$$2b$...` (Django's own bcrypt format), also `$2y$` (PHP) and `$2a$`.

    bcrypt only ever looked at the first 72 bytes of a password; the servers that wrote these
    hashes truncated silently, so we do too (bcrypt >= 5 refuses longer input instead).
    """

    algorithm = "bcrypt"
    rounds = 12

    def salt(self) -> str:
        return bcrypt.gensalt(self.rounds).decode("ascii")

    def encode(self, password: str, salt: str) -> str:
        if password is None:
            raise TypeError("password must be provided.")
        hashed = bcrypt.hashpw(password.encode("utf-8")[:72], salt.encode("ascii"))
        return f"{self.algorithm}${hashed.decode('ascii')}"

    def decode(self, encoded: str) -> dict:
        algorithm, empty, algostr, work_factor, data = encoded.split("$", 4)
        return {
            "algorithm": algorithm,
            "algostr": algostr,
            "checksum": data[22:],
            "salt": data[:22],
            "work_factor": int(work_factor),
        }

    def verify(self, password: str, encoded: str) -> bool:
        algorithm, _, crypt_string = encoded.partition("$")
        if algorithm != self.algorithm or not _BCRYPT.match(crypt_string):
            return False
        raw = password.encode("utf-8")
        if len(raw) > MAX_PASSWORD_BYTES:
            return False
        try:
            return bcrypt.checkpw(raw[:72], crypt_string.encode("ascii"))
        except ValueError:
            return False

    def safe_summary(self, encoded: str) -> dict:
        decoded = self.decode(encoded)
        return {
            gettext_noop("algorithm"): decoded["algorithm"],
            gettext_noop("work factor"): decoded["work_factor"],
            gettext_noop("salt"): mask_hash(decoded["salt"]),
            gettext_noop("checksum"): mask_hash(decoded["checksum"]),
        }

    def must_update(self, encoded: str) -> bool:
        return True

    def harden_runtime(self, password: str, encoded: str) -> None:
        pass


def import_password_hash(value: str) -> str | None:
    """The Django-encoded form of a raw crypt(3) hash, or None if `value` is not one.

    `$6$...` -> `sha512_crypt$$6$...`, `$5$...` -> `sha256_crypt$$5$...`,
    `$2b$/$2y$/$2a$...` -> `bcrypt$$2b$...`. Anything else (a plain password) gives None.
    """
    if _SHA_CRYPT.match(value):
        algorithm = SHA512CryptPasswordHasher.algorithm
        if value.startswith("$5$"):
            algorithm = SHA256CryptPasswordHasher.algorithm
        return f"{algorithm}${value}"
    if _BCRYPT.match(value):
        return f"{BcryptCryptPasswordHasher.algorithm}${value}"
    return None


def looks_like_crypt_hash(value: str) -> bool:
    """True for `$6$`, `$5$`, `$2?$` prefixes, well-formed or not (refuse, don't hash them)."""
    return bool(re.match(r"^\$(?:5|6|2[aby])\$", value))


def to_django_encoded(stored: str) -> str:
    """What Django's check_password understands: adds the prefix to a raw crypt string."""
    if stored.startswith("$"):
        return import_password_hash(stored) or stored
    return stored
