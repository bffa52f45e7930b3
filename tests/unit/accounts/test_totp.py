"""TOTP enrolment and removal: console pages and the API's enableOtpAuth/disableOtpAuth."""

import re

import pyotp
import pytest

from apps.accounts.auth.totp import totp_enable
from apps.accounts.auth.twofactor import hash_recovery_code, new_secret, parse_otp_uri
from apps.accounts.models import Principal, RecoveryCode
from mailadmin.core.models import AuditEvent
from tests.conftest import TEST_PASSWORD

pytestmark = pytest.mark.django_db


def _secret_on(html: str) -> str:
    return re.search(r'<code id="totp-secret">([A-Z2-7]+)</code>', html).group(1)


@pytest.fixture
def enrolled(user_a):
    secret = new_secret()
    codes = totp_enable(actor=user_a, secret=secret, code=pyotp.TOTP(secret).now())
    user_a.refresh_from_db()
    return user_a, secret, codes


def test_the_security_page_shows_that_2fa_is_off(client, user_a):
    client.force_login(user_a)
    html = client.get("/account/security/").content.decode()
    assert "<strong>Off.</strong>" in html
    assert 'href="/account/security/totp/"' in html


def test_enrolment_shows_the_secret_and_a_qr_code(client, user_a):
    client.force_login(user_a)
    html = client.get("/account/security/totp/").content.decode()
    secret = _secret_on(html)
    assert len(secret) == 32
    assert "<svg" in html
    assert 'id="id_code"' in html and 'id="confirm-totp"' in html
    # The secret stays the same across reloads until it is confirmed.
    assert _secret_on(client.get("/account/security/totp/").content.decode()) == secret
    assert not Principal.objects.get(pk=user_a.pk).otp_enabled


def test_the_qr_code_encodes_the_otpauth_uri(client, user_a):
    from apps.accounts.auth.twofactor import provisioning_uri

    uri = provisioning_uri(user_a, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
    assert uri.startswith("otpauth://totp/")
    assert "secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP" in uri
    assert parse_otp_uri(uri) == "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def test_a_correct_code_turns_2fa_on_and_shows_recovery_codes_once(client, user_a):
    client.force_login(user_a)
    secret = _secret_on(client.get("/account/security/totp/").content.decode())
    response = client.post(
        "/account/security/totp/", {"code": pyotp.TOTP(secret).now(), "password": TEST_PASSWORD}
    )
    html = response.content.decode()
    assert response.status_code == 200
    codes = re.findall(r"<li><code>([a-z0-9-]{19})</code></li>", html)
    assert len(codes) == 10 and len(set(codes)) == 10
    principal = Principal.objects.get(pk=user_a.pk)
    assert principal.otp_enabled and principal.totp_secret == secret
    stored = set(RecoveryCode.objects.filter(principal=user_a).values_list("code_hash", flat=True))
    assert stored == {hash_recovery_code(code) for code in codes}
    assert not any(code in str(stored) for code in codes)
    event = AuditEvent.objects.get(action="otp.enable")
    assert secret not in str(event.changes)
    assert client.get("/account/security/").content.decode().count("<strong>On.</strong>") == 1


def test_a_wrong_code_keeps_2fa_off(client, user_a):
    client.force_login(user_a)
    client.get("/account/security/totp/")
    response = client.post("/account/security/totp/", {"code": "000000", "password": TEST_PASSWORD})
    assert "The code is not valid. Check the time on your device." in response.content.decode()
    assert not Principal.objects.get(pk=user_a.pk).otp_enabled


def test_enrolment_needs_the_current_password(client, user_a):
    client.force_login(user_a)
    secret = _secret_on(client.get("/account/security/totp/").content.decode())
    code = pyotp.TOTP(secret).now()
    html = client.post("/account/security/totp/", {"code": code}).content.decode()
    assert "Enter your current password." in html
    html = client.post("/account/security/totp/", {"code": code, "password": "wrong"}).content
    assert "Your current password is not correct." in html.decode()
    assert not Principal.objects.get(pk=user_a.pk).otp_enabled


def test_enrolment_redirects_when_already_on(client, enrolled):
    user, _, _ = enrolled
    client.force_login(user)
    assert client.get("/account/security/totp/")["Location"] == "/account/security/"


def test_disable_needs_the_current_password(client, enrolled):
    user, secret, _ = enrolled
    client.force_login(user)
    response = client.post("/account/security/totp/disable/", {"disable-password": "wrong"})
    assert response.status_code == 422
    assert "Your current password is not correct." in response.content.decode()
    response = client.post(
        "/account/security/totp/disable/", {"disable-code": pyotp.TOTP(secret).now()}
    )
    assert "Enter your current password." in response.content.decode()
    assert Principal.objects.get(pk=user.pk).otp_enabled
    response = client.post("/account/security/totp/disable/", {"disable-password": TEST_PASSWORD})
    assert response["Location"] == "/account/security/"
    principal = Principal.objects.get(pk=user.pk)
    assert not principal.otp_enabled and principal.totp_secret == ""
    assert not RecoveryCode.objects.filter(principal=user).exists()


def test_wrong_current_passwords_count_towards_the_lockout(client, enrolled):
    user, _, _ = enrolled
    client.force_login(user)
    for _ in range(5):
        client.post("/account/security/totp/disable/", {"disable-password": "wrong"})
    response = client.post("/account/security/totp/disable/", {"disable-password": TEST_PASSWORD})
    assert "Too many failed logins. Try again in 15 minutes." in response.content.decode()
    assert Principal.objects.get(pk=user.pk).otp_enabled
    event = AuditEvent.objects.filter(action="login.failed").first()
    assert event.changes == {"reason": "confirm-password"}


def test_regenerating_recovery_codes_replaces_them(client, enrolled):
    user, _, old_codes = enrolled
    client.force_login(user)
    response = client.post("/account/security/recovery-codes/", {"codes-password": "wrong"})
    assert "Your current password is not correct." in response.content.decode()
    assert RecoveryCode.objects.filter(principal=user, code_hash=hash_recovery_code(old_codes[0]))
    html = client.post(
        "/account/security/recovery-codes/", {"codes-password": TEST_PASSWORD}
    ).content.decode()
    new_codes = re.findall(r"<li><code>([a-z0-9-]{19})</code></li>", html)
    assert len(new_codes) == 10 and not set(new_codes) & set(old_codes)
    hashes = set(RecoveryCode.objects.filter(principal=user).values_list("code_hash", flat=True))
    assert hash_recovery_code(old_codes[0]) not in hashes
    assert AuditEvent.objects.filter(action="recovery-codes.regenerate").exists()


def test_regenerating_needs_2fa_on(client, user_a):
    client.force_login(user_a)
    response = client.post("/account/security/recovery-codes/", {"codes-password": TEST_PASSWORD})
    assert response.status_code == 422
    assert "Turn on two-factor authentication first." in response.content.decode()


def test_the_pages_declare_manage_passwords(client, make_principal, tenant_a):
    from apps.accounts.auth import views as auth_views

    for view in (
        auth_views.security,
        auth_views.totp_enrol,
        auth_views.totp_disable,
        auth_views.recovery_codes,
        auth_views.app_passwords,
        auth_views.app_password_revoke,
    ):
        assert view.required_permission == "manage-passwords"
    client.force_login(make_principal(name="nobody", tenant=tenant_a, roles=()))
    assert client.get("/account/security/").status_code == 403
    assert client.get("/account/security/totp/").status_code == 403


# --- API -------------------------------------------------------------------------------


def test_the_api_enables_otp_from_an_otpauth_url(api_client_for, user_a):
    url = "otpauth://totp/mailadmin:user-a?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=mailadmin"
    client = api_client_for(user_a)
    response = client.post(
        "/api/account/auth", [{"type": "enableOtpAuth", "url": url}], format="json"
    )
    assert response.status_code == 200
    assert response.json() == {"data": None}
    principal = Principal.objects.get(pk=user_a.pk)
    assert principal.otp_enabled and principal.totp_secret == "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    assert client.get("/api/account/auth").json()["data"]["otpEnabled"] is True


def test_the_api_disables_otp(api_client_for, enrolled):
    user, _, _ = enrolled
    response = api_client_for(user).post(
        "/api/account/auth", [{"type": "disableOtpAuth"}], format="json"
    )
    assert response.status_code == 200
    assert not Principal.objects.get(pk=user.pk).otp_enabled


@pytest.mark.parametrize(
    ("url", "detail"),
    [
        ("https://example.org", "The URL must be an otpauth://totp/ URI."),
        (
            "otpauth://hotp/x?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
            "The URL must be an otpauth://totp/ URI.",
        ),
        (
            "otpauth://totp/x?secret=ab1",
            "The otpauth URI has no valid base32 secret.",
        ),
        (
            "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP",
            "The otpauth URI's secret is too short: at least 112 bits (23 base32 characters).",
        ),
        (
            "otpauth://totp/x?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&digits=8",
            "Only 6-digit TOTP codes are supported.",
        ),
        (
            "otpauth://totp/x?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&algorithm=SHA256",
            "Only SHA1 TOTP codes are supported.",
        ),
        (
            "otpauth://totp/x?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&period=60",
            "Only a TOTP period of 30 seconds is supported.",
        ),
    ],
)
def test_the_api_rejects_bad_otpauth_urls(api_client_for, user_a, url, detail):
    response = api_client_for(user_a).post(
        "/api/account/auth", [{"type": "enableOtpAuth", "url": url}], format="json"
    )
    assert response.status_code == 400
    assert response.json()["detail"] == detail
    assert not Principal.objects.get(pk=user_a.pk).otp_enabled


def test_an_api_key_has_no_two_factor_settings(api_client_for, admin_a):
    from apps.accounts.auth.api_keys import api_key_create

    key, _ = api_key_create(actor=admin_a, name="ci", permissions=["manage-passwords"])
    response = api_client_for(key).post(
        "/api/account/auth", [{"type": "disableOtpAuth"}], format="json"
    )
    assert response.status_code == 400
    assert response.json()["detail"] == (
        "Only accounts have passwords, app passwords and two-factor authentication."
    )
