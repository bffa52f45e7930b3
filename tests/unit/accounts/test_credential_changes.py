"""Changing credentials needs the main password: app passwords are for mail clients.

An app password, an API key, or an OAuth token asked for with an app password may read
the account's security settings but not change passwords, two-factor authentication, app
passwords, API keys or encryption settings (403 with a message saying why).
"""

import base64

import pyotp
import pytest

from apps.accounts.auth.api_keys import api_key_create
from apps.accounts.auth.app_passwords import app_password_add
from apps.accounts.auth.totp import totp_enable
from apps.accounts.auth.twofactor import new_secret
from apps.accounts.models import AppPassword, EncryptionSettings, Principal
from tests.conftest import TEST_PASSWORD

pytestmark = pytest.mark.django_db

APP_PASSWORD_REFUSED = (
    "App passwords are for mail clients: they cannot change passwords, two-factor "
    "authentication, app passwords, API keys or encryption settings. Sign in with your "
    "account password (and second factor) to do this."
)
TOKEN_REFUSED = (
    "This token was obtained with an app password, so it cannot change passwords, "
    "two-factor authentication, app passwords, API keys or encryption settings. Sign in "
    "with your account password (and second factor) to do this."
)


def _basic(client, name: str, password: str):
    credentials = base64.b64encode(f"{name}:{password}".encode()).decode()
    client.credentials(HTTP_AUTHORIZATION=f"Basic {credentials}")
    return client


@pytest.fixture
def phone(user_a) -> str:
    """The plain text of user-a's app password "phone"."""
    return app_password_add(actor=user_a, name="phone")[1]


def _refused(response, detail: str = APP_PASSWORD_REFUSED) -> None:
    assert response.status_code == 403
    assert response.json()["detail"] == detail
    assert response.json()["title"] == "Forbidden"


def test_an_app_password_cannot_disable_two_factor(anon_api, user_a, phone):
    secret = new_secret()
    totp_enable(actor=user_a, secret=secret, code=pyotp.TOTP(secret).now())
    client = _basic(anon_api, "user-a", phone)
    response = client.post("/api/account/auth", [{"type": "disableOtpAuth"}], format="json")
    _refused(response)
    assert Principal.objects.get(pk=user_a.pk).otp_enabled
    assert client.get("/api/account/auth").json()["data"]["otpEnabled"] is True  # reading is fine


@pytest.mark.parametrize(
    "action",
    [
        {"type": "addAppPassword", "name": "laptop", "password": "another-password"},
        {"type": "removeAppPassword", "name": "phone"},
        {
            "type": "enableOtpAuth",
            "url": "otpauth://totp/x?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
        },
    ],
)
def test_an_app_password_cannot_manage_app_passwords_or_2fa(anon_api, user_a, phone, action):
    _refused(_basic(anon_api, "user-a", phone).post("/api/account/auth", [action], format="json"))
    assert list(AppPassword.objects.values_list("name", flat=True)) == ["phone"]
    assert not Principal.objects.get(pk=user_a.pk).otp_enabled


def test_an_app_password_cannot_touch_api_keys(anon_api, admin_a):
    key, _ = api_key_create(actor=admin_a, name="ci", permissions=["principal-list"])
    _, plain = app_password_add(actor=admin_a, name="phone")
    client = _basic(anon_api, "admin-a", plain)
    _refused(client.post("/api/account/api-keys", {"name": "stolen"}, format="json"))
    _refused(client.delete(f"/api/account/api-keys/{key.pk}"))
    _refused(client.delete(f"/api/principal/{key.pk}"))
    assert list(Principal.objects.filter(type="apiKey").values_list("name", "is_active")) == [
        ("ci", True)
    ]
    assert client.get("/api/account/api-keys").status_code == 200  # reading is fine


def test_an_app_password_cannot_change_encryption_or_the_password(anon_api, admin_a):
    _, plain = app_password_add(actor=admin_a, name="phone")
    client = _basic(anon_api, "admin-a", plain)
    _refused(client.post("/api/account/crypto", {"type": "disabled"}, format="json"))
    assert not EncryptionSettings.objects.exists()
    new = [{"action": "set", "field": "secrets", "value": "a new long password 1"}]
    _refused(client.patch("/api/principal/admin-a", new, format="json"))
    assert Principal.objects.get(pk=admin_a.pk).check_password(TEST_PASSWORD)


def test_an_app_password_sets_nobodys_password(anon_api, admin_a, user_a):
    _, plain = app_password_add(actor=admin_a, name="phone")
    client = _basic(anon_api, "admin-a", plain)
    new = [{"action": "set", "field": "secrets", "value": "a new long password 1"}]
    _refused(client.patch("/api/principal/user-a", new, format="json"))
    assert Principal.objects.get(pk=user_a.pk).check_password(TEST_PASSWORD)
    rename = [{"action": "set", "field": "description", "value": "Jane"}]
    assert client.patch("/api/principal/user-a", rename, format="json").status_code == 200


def test_the_account_password_over_basic_may_change_credentials(anon_api, user_a):
    client = _basic(anon_api, "user-a", TEST_PASSWORD)
    response = client.post(
        "/api/account/auth",
        [{"type": "addAppPassword", "name": "laptop", "password": "another-password"}],
        format="json",
    )
    assert response.status_code == 200
    assert AppPassword.objects.filter(principal=user_a, name="laptop").exists()


def _oauth_token(client) -> str:
    code = client.post("/api/oauth", {"type": "code"}, format="json").json()["data"]["code"]
    client.credentials()
    response = client.post(
        "/api/oauth/token", {"grant_type": "authorization_code", "code": code}, format="json"
    )
    return response.json()["access_token"]


def test_a_token_asked_for_with_an_app_password_cannot_change_credentials(anon_api, user_a, phone):
    token = _oauth_token(_basic(anon_api, "user-a", phone))
    anon_api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    response = anon_api.post(
        "/api/account/auth", [{"type": "removeAppPassword", "name": "phone"}], format="json"
    )
    _refused(response, TOKEN_REFUSED)
    assert AppPassword.objects.filter(name="phone").exists()


def test_a_token_asked_for_with_the_password_may(anon_api, user_a, phone):
    token = _oauth_token(_basic(anon_api, "user-a", TEST_PASSWORD))
    anon_api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    response = anon_api.post(
        "/api/account/auth", [{"type": "removeAppPassword", "name": "phone"}], format="json"
    )
    assert response.status_code == 200
    assert not AppPassword.objects.exists()


def test_a_console_session_may_use_the_api_for_credentials(client, user_a, phone):
    client.force_login(user_a)  # logged in with password (+ second factor)
    response = client.post(
        "/api/account/auth",
        [{"type": "removeAppPassword", "name": "phone"}],
        content_type="application/json",
    )
    assert response.status_code == 200


def test_the_password_change_service_refuses_an_app_password_login(user_a, phone):
    from apps.accounts.auth.common import CredentialsNeedMainLogin
    from apps.accounts.auth.login import authenticate_password
    from apps.accounts.auth.passwords import password_change

    actor = authenticate_password(identifier="user-a", password=phone, ip=None, app_passwords=True)
    with pytest.raises(CredentialsNeedMainLogin) as exc:
        password_change(actor=actor, current=phone, new="a new long password 1")
    assert exc.value.message == APP_PASSWORD_REFUSED
    assert Principal.objects.get(pk=user_a.pk).check_password(TEST_PASSWORD)
