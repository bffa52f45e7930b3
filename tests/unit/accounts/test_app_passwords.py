"""App passwords: HTTP Basic with them, GET/POST /api/account/auth, the console page."""

import base64
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.accounts.auth.app_passwords import app_password_add
from apps.accounts.models import AppPassword, LoginThrottle, Principal
from mailadmin.core.models import AuditEvent
from tests.conftest import TEST_PASSWORD
from tests.unit.accounts.test_auth_hashers import BCRYPT, PASSWORD, SHA256, SHA512

pytestmark = pytest.mark.django_db

# The spec's example: name is base64 of "test$2025-...", password a SHA-512-crypt hash.
SPEC_NAME = "dGVzdCQyMDI1LTAxLTA1VDE0OjEyOjUxLjg0NyswMDowMA=="
SPEC_HASH = (
    "$6$4M/5LmG7b13r0cdE$6zb.i6wJ3pAQHA2MRHkKg0t8bgSYb2IeqiIU115t.NugwW6VXifE0VKI5n2BQUNwdeDM"
    "UzaX82TmhuVVgC0Gx1"
)


def _basic(name: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()


# --- HTTP Basic ------------------------------------------------------------------------


def test_basic_auth_accepts_an_app_password_and_records_its_use(anon_api, user_a):
    row, plain = app_password_add(actor=user_a, name="phone")
    assert row.last_used_at is None
    response = anon_api.get("/api/", HTTP_AUTHORIZATION=_basic("user-a", plain))
    assert response.status_code == 200
    assert response.json()["data"]["name"] == "user-a"
    row.refresh_from_db()
    assert row.last_used_at is not None


def test_basic_auth_accepts_an_app_password_stored_as_an_imported_hash(anon_api, user_a):
    AppPassword.objects.create(principal=user_a, name="old", password=SHA512)  # raw, unprefixed
    response = anon_api.get("/api/", HTTP_AUTHORIZATION=_basic("user-a", PASSWORD))
    assert response.status_code == 200
    assert AppPassword.objects.get(name="old").password.startswith("argon2$")


@pytest.mark.parametrize("stored", [SHA256, BCRYPT])
def test_basic_auth_rehashes_an_imported_account_password(anon_api, make_principal, stored):
    principal = make_principal(name="imported")
    Principal.objects.filter(pk=principal.pk).update(password=stored)
    response = anon_api.get("/api/", HTTP_AUTHORIZATION=_basic("imported", PASSWORD))
    assert response.status_code == 200
    principal.refresh_from_db()
    assert principal.password.startswith("argon2$")


def test_basic_auth_rejects_a_revoked_app_password(anon_api, user_a):
    row, plain = app_password_add(actor=user_a, name="phone")
    row.delete()
    response = anon_api.get("/api/", HTTP_AUTHORIZATION=_basic("user-a", plain))
    assert response.status_code == 401
    assert response.json()["detail"] == "Invalid username or password."


def test_with_two_factor_on_basic_auth_needs_an_app_password(anon_api, user_a):
    Principal.objects.filter(pk=user_a.pk).update(otp_enabled=True, totp_secret="A" * 32)
    assert (
        anon_api.get("/api/", HTTP_AUTHORIZATION=_basic("user-a", TEST_PASSWORD)).status_code == 401
    )
    _, plain = app_password_add(actor=Principal.objects.get(pk=user_a.pk), name="cli")
    assert anon_api.get("/api/", HTTP_AUTHORIZATION=_basic("user-a", plain)).status_code == 200


def test_basic_auth_is_locked_out_with_429_and_retry_after(anon_api, user_a):
    for _ in range(5):
        assert anon_api.get("/api/", HTTP_AUTHORIZATION=_basic("user-a", "x")).status_code == 401
    response = anon_api.get("/api/", HTTP_AUTHORIZATION=_basic("user-a", TEST_PASSWORD))
    assert response.status_code == 429
    assert response.json()["detail"] == "Too many failed logins. Try again in 15 minutes."
    assert 890 <= int(response["Retry-After"]) <= 900
    assert AuditEvent.objects.filter(action="login.failed").count() == 5


def test_basic_auth_lock_expires(anon_api, user_a):
    LoginThrottle.objects.create(
        key="account:user-a", failures=5, locked_until=timezone.now() - timedelta(seconds=1)
    )
    response = anon_api.get("/api/", HTTP_AUTHORIZATION=_basic("user-a", TEST_PASSWORD))
    assert response.status_code == 200


def test_basic_auth_locks_per_client_address(anon_api, settings, user_a):
    settings.MAILADMIN_LOGIN_LOCKOUT = {"ip": (2, 900, 900)}
    for name in ("x", "y"):
        anon_api.get("/api/", HTTP_AUTHORIZATION=_basic(name, "x"), REMOTE_ADDR="192.0.2.50")
    ok = anon_api.get(
        "/api/", HTTP_AUTHORIZATION=_basic("user-a", TEST_PASSWORD), REMOTE_ADDR="192.0.2.50"
    )
    assert ok.status_code == 429


# --- GET/POST /api/account/auth --------------------------------------------------------


def test_get_reports_otp_and_app_password_names(api_client_for, user_a):
    app_password_add(actor=user_a, name="phone")
    app_password_add(actor=user_a, name="laptop")
    response = api_client_for(user_a).get("/api/account/auth")
    assert response.status_code == 200
    assert response.json() == {"data": {"otpEnabled": False, "appPasswords": ["laptop", "phone"]}}


def test_get_shows_no_hashes(api_client_for, user_a):
    app_password_add(actor=user_a, name="phone")
    body = api_client_for(user_a).get("/api/account/auth").content.decode()
    assert "argon2" not in body


def test_it_adds_the_spec_example_with_a_sha512_crypt_hash(api_client_for, user_a):
    client = api_client_for(user_a)
    response = client.post(
        "/api/account/auth",
        [{"type": "addAppPassword", "name": SPEC_NAME, "password": SPEC_HASH}],
        format="json",
    )
    assert response.status_code == 200
    assert response.json() == {"data": None}
    row = AppPassword.objects.get(principal=user_a)
    assert row.name == SPEC_NAME
    assert row.password == f"sha512_crypt${SPEC_HASH}"


def test_a_hashed_app_password_works_over_basic(api_client_for, anon_api, user_a):
    api_client_for(user_a).post(
        "/api/account/auth",
        [{"type": "addAppPassword", "name": "mua", "password": SHA512}],
        format="json",
    )
    assert anon_api.get("/api/", HTTP_AUTHORIZATION=_basic("user-a", PASSWORD)).status_code == 200


def test_a_plain_app_password_is_hashed_with_argon2(api_client_for, anon_api, user_a):
    api_client_for(user_a).post(
        "/api/account/auth",
        [{"type": "addAppPassword", "name": "mua", "password": "plain-secret-1"}],
        format="json",
    )
    row = AppPassword.objects.get(name="mua")
    assert row.password.startswith("argon2$")
    assert "plain-secret-1" not in row.password
    assert (
        anon_api.get("/api/", HTTP_AUTHORIZATION=_basic("user-a", "plain-secret-1")).status_code
        == 200
    )


def test_it_removes_an_app_password(api_client_for, user_a):
    app_password_add(actor=user_a, name="phone")
    response = api_client_for(user_a).post(
        "/api/account/auth", [{"type": "removeAppPassword", "name": "phone"}], format="json"
    )
    assert response.status_code == 200
    assert not AppPassword.objects.exists()
    assert AuditEvent.objects.filter(action="app-password.delete").exists()


def test_it_applies_all_actions_or_none(api_client_for, user_a):
    response = api_client_for(user_a).post(
        "/api/account/auth",
        [
            {"type": "addAppPassword", "name": "one", "password": "first-password"},
            {"type": "removeAppPassword", "name": "missing"},
        ],
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["detail"] == "There is no app password named 'missing'."
    assert not AppPassword.objects.exists()
    assert not AuditEvent.objects.filter(action="app-password.create").exists()


def test_it_names_an_unknown_action_type(api_client_for, user_a):
    response = api_client_for(user_a).post(
        "/api/account/auth", [{"type": "addPasskey"}], format="json"
    )
    assert response.status_code == 400
    assert response.json()["detail"] == "Unknown action type: addPasskey"


@pytest.mark.parametrize(
    ("action", "detail"),
    [
        ({"type": "addAppPassword", "name": "x"}, "Missing required field: password"),
        ({"type": "addAppPassword", "password": "long-enough"}, "Missing required field: name"),
        ({"name": "x"}, "Missing required field: type"),
        ({"type": "disableOtpAuth", "extra": 1}, "Unrecognized field: extra"),
        (
            {"type": "addAppPassword", "name": "x", "password": "short"},
            "The password of app password 'x' must have 8 to 1024 characters.",
        ),
        (
            {"type": "addAppPassword", "name": "x", "password": "$6$broken"},
            "The password of app password 'x' looks like a crypt hash but is malformed.",
        ),
    ],
)
def test_it_rejects_invalid_actions(api_client_for, user_a, action, detail):
    response = api_client_for(user_a).post("/api/account/auth", [action], format="json")
    assert response.status_code == 400
    assert response.json()["detail"] == detail


def test_it_needs_a_list(api_client_for, user_a):
    response = api_client_for(user_a).post(
        "/api/account/auth", {"type": "disableOtpAuth"}, format="json"
    )
    assert response.json()["detail"] == "The request body must be a list of actions."


def test_it_refuses_a_duplicate_name(api_client_for, user_a):
    app_password_add(actor=user_a, name="phone")
    response = api_client_for(user_a).post(
        "/api/account/auth",
        [{"type": "addAppPassword", "name": "phone", "password": "another-password"}],
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["detail"] == "An app password named 'phone' already exists."


def test_it_needs_authentication_with_the_spec_body(anon_api):
    response = anon_api.get("/api/account/auth")
    assert response.status_code == 401
    assert response.json()["detail"] == "You have to authenticate first."


def test_it_needs_manage_passwords(api_client_for, make_principal, tenant_a):
    nobody = make_principal(name="nobody", tenant=tenant_a, roles=())
    response = api_client_for(nobody).post("/api/account/auth", [], format="json")
    assert response.status_code == 403
    assert response.json()["permission"] == "manage-passwords"


def test_app_password_audit_rows_hold_no_secret(api_client_for, user_a):
    api_client_for(user_a).post(
        "/api/account/auth",
        [{"type": "addAppPassword", "name": "mua", "password": "plain-secret-1"}],
        format="json",
    )
    event = AuditEvent.objects.get(action="app-password.create")
    assert event.changes == {"name": "mua"}
    assert event.interface == "api"


# --- console page ----------------------------------------------------------------------


def test_the_page_creates_a_password_and_shows_it_once(client, user_a):
    client.force_login(user_a)
    response = client.post(
        "/account/app-passwords/", {"name": "Thunderbird", "password": TEST_PASSWORD}
    )
    html = response.content.decode()
    assert response.status_code == 200
    row = AppPassword.objects.get(principal=user_a, name="Thunderbird")
    start = html.index('id="app-password-value">') + len('id="app-password-value">')
    plain = html[start : html.index("<", start)]
    assert len(plain) == 19
    from django.contrib.auth.hashers import check_password

    assert check_password(plain, row.password)
    again = client.get("/account/app-passwords/").content.decode()
    assert plain not in again
    assert "Thunderbird" in again and "never" in again


def test_the_page_revokes_a_password(client, user_a):
    row, _ = app_password_add(actor=user_a, name="phone")
    client.force_login(user_a)
    response = client.post(f"/account/app-passwords/{row.pk}/revoke/")
    assert response["Location"] == "/account/app-passwords/"
    assert not AppPassword.objects.exists()


def test_the_page_cannot_revoke_someone_elses_password(client, user_a, admin_a):
    row, _ = app_password_add(actor=user_a, name="phone")
    client.force_login(admin_a)
    assert client.post(f"/account/app-passwords/{row.pk}/revoke/").status_code == 404
    assert AppPassword.objects.filter(pk=row.pk).exists()


def test_the_page_shows_a_duplicate_name_error(client, user_a):
    app_password_add(actor=user_a, name="phone")
    client.force_login(user_a)
    response = client.post("/account/app-passwords/", {"name": "phone", "password": TEST_PASSWORD})
    assert response.status_code == 422
    assert "An app password named &#x27;phone&#x27; already exists." in response.content.decode()


def test_the_page_needs_the_current_password(client, user_a):
    client.force_login(user_a)
    response = client.post("/account/app-passwords/", {"name": "phone", "password": "wrong"})
    assert response.status_code == 422
    assert "Your current password is not correct." in response.content.decode()
    response = client.post("/account/app-passwords/", {"name": "phone"})
    assert "Enter your current password." in response.content.decode()
    assert not AppPassword.objects.exists()


def test_the_page_needs_login_and_permission(client, make_principal, tenant_a):
    assert client.get("/account/app-passwords/")["Location"].startswith("/login/")
    client.force_login(make_principal(name="nobody", tenant=tenant_a, roles=()))
    assert client.get("/account/app-passwords/").status_code == 403
