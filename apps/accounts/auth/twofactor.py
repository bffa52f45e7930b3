"""TOTP (RFC 6238: 6 digits, 30 s, SHA-1, one step of clock drift) and recovery codes."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
import time
from urllib.parse import parse_qs, unquote, urlsplit

import pyotp
import segno
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from apps.accounts.models import LoginThrottle, Principal, RecoveryCode

DIGITS = 6
INTERVAL = 30
VALID_WINDOW = 1
RECOVERY_CODE_COUNT = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i to misread
_CODE = re.compile(r"^[0-9]{6}$")
_BASE32 = re.compile(r"^[A-Z2-7]{1,128}$")
MIN_SECRET_BYTES = 14  # 112 bits (NIST SP 800-63B); pyotp refuses less too


class InvalidOtpUri(ValueError):
    pass


def new_secret() -> str:
    return pyotp.random_base32()  # 32 base32 characters: 160 bits, as RFC 4226 recommends


def provisioning_uri(principal: Principal, secret: str) -> str:
    issuer = getattr(settings, "MAILADMIN_HOSTNAME", "") or "mailadmin"
    return pyotp.TOTP(secret).provisioning_uri(name=principal.name, issuer_name=issuer)


def qr_svg(uri: str) -> str:
    """An inline <svg> of the QR code (no image library, no external request)."""
    return segno.make(uri, error="m").svg_inline(scale=5, border=2, dark="#000", light="#fff")


def _normalize_code(code: str) -> str:
    return re.sub(r"[\s-]", "", code or "")


def matching_step(secret: str, code: str, *, at: float | None = None) -> int | None:
    """The time step (counter) the code belongs to within ±1 step of now, or None.

    Every candidate is compared (in constant time), so timing tells nothing about which.
    """
    code = _normalize_code(code)
    if not secret or not _CODE.match(code):
        return None
    try:
        totp = pyotp.TOTP(secret, digits=DIGITS, interval=INTERVAL)
    except (ValueError, binascii.Error):
        return None
    now = time.time() if at is None else at
    current = int(now // INTERVAL)
    found = None
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        if constant_time_compare(totp.generate_otp(step), code):
            found = step
    return found


def verify_code(secret: str, code: str) -> bool:
    """A code is valid for this secret now (enrolment: proves the app has the secret)."""
    return matching_step(secret, code) is not None


def verify_login_code(principal: Principal, code: str) -> bool:
    """A valid code that has not been used before (RFC 6238 §5.2: no replay).

    The last accepted time step is kept in a LoginThrottle row keyed `totp-step:<id>`
    (`failures` holds the step number): the model has no column for it, and a conditional
    UPDATE on that row makes two concurrent logins with the same code accept only one.
    """
    step = matching_step(principal.totp_secret, code)
    if step is None:
        return False
    key = f"totp-step:{principal.pk}"
    with transaction.atomic():
        updated = LoginThrottle.objects.filter(key=key, failures__lt=step).update(failures=step)
        if updated:
            return True
        if LoginThrottle.objects.filter(key=key).exists():
            return False  # this step or a later one was already used
        try:
            with transaction.atomic():
                LoginThrottle.objects.create(
                    key=key, failures=step, first_failure_at=timezone.now()
                )
        except IntegrityError:
            return False  # a concurrent login with the same code won
    return True


def parse_otp_uri(uri: str) -> str:
    """The base32 secret of an `otpauth://totp/...` URI with parameters we support."""
    parts = urlsplit(uri.strip())
    if parts.scheme.lower() != "otpauth" or parts.netloc.lower() != "totp":
        raise InvalidOtpUri("The URL must be an otpauth://totp/ URI.")
    params = {k.lower(): v[-1] for k, v in parse_qs(parts.query).items()}
    secret = unquote(params.get("secret", "")).replace(" ", "").upper().rstrip("=")
    if not _BASE32.match(secret):
        raise InvalidOtpUri("The otpauth URI has no valid base32 secret.")
    try:
        size = len(base64.b32decode(secret + "=" * (-len(secret) % 8)))
    except binascii.Error:
        raise InvalidOtpUri("The otpauth URI has no valid base32 secret.") from None
    if size < MIN_SECRET_BYTES:
        raise InvalidOtpUri(
            "The otpauth URI's secret is too short: at least 112 bits (23 base32 characters)."
        )
    if params.get("algorithm", "SHA1").upper() != "SHA1":
        raise InvalidOtpUri("Only SHA1 TOTP codes are supported.")
    if params.get("digits", str(DIGITS)) != str(DIGITS):
        raise InvalidOtpUri(f"Only {DIGITS}-digit TOTP codes are supported.")
    if params.get("period", str(INTERVAL)) != str(INTERVAL):
        raise InvalidOtpUri(f"Only a TOTP period of {INTERVAL} seconds is supported.")
    return secret


# --- recovery codes --------------------------------------------------------------------


def hash_recovery_code(code: str) -> str:
    return hashlib.sha256(_normalize_code(code).lower().encode("utf-8")).hexdigest()


def looks_like_recovery_code(code: str) -> bool:
    return len(_normalize_code(code)) == 16


def new_recovery_codes() -> list[str]:
    """Ten codes of 16 characters (about 79 bits each), shown as xxxx-xxxx-xxxx-xxxx."""
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(16))
        codes.append("-".join(raw[i : i + 4] for i in range(0, 16, 4)))
    return codes


def replace_recovery_codes(principal: Principal) -> list[str]:
    """Drop the old codes and store new ones hashed; the plain codes are returned once."""
    codes = new_recovery_codes()
    with transaction.atomic():
        RecoveryCode.objects.filter(principal=principal).delete()
        RecoveryCode.objects.bulk_create(
            RecoveryCode(principal=principal, code_hash=hash_recovery_code(code)) for code in codes
        )
    return codes


def use_recovery_code(principal: Principal, code: str) -> bool:
    """Spend one unused code (claim-by-update: two requests cannot both spend it)."""
    if not looks_like_recovery_code(code):
        return False
    claimed = RecoveryCode.objects.filter(
        principal=principal, code_hash=hash_recovery_code(code), used_at__isnull=True
    ).update(used_at=timezone.now())
    return claimed > 0


def recovery_codes_left(principal: Principal) -> int:
    return RecoveryCode.objects.filter(principal=principal, used_at__isnull=True).count()
