"""Console login: by name or address, imported hashes re-hashed, lockout, audit, 2FA step."""

import base64
from datetime import timedelta

import pyotp
import pytest
from django.test import Client
from django.utils import timezone

from apps.accounts.models import LoginThrottle, Principal, PrincipalEmail
from mailadmin.core.models import AuditEvent
from tests.conftest import TEST_PASSWORD
from tests.unit.accounts.test_auth_hashers import BCRYPT, PASSWORD, SHA256, SHA512

pytestmark = pytest.mark.django_db

LOCKED_15 = "Too many failed logins. Try again in 15 minutes."
BAD_LOGIN = "Please enter a correct name or e-mail address and password."


def _basic(name: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()


def _login(client, username, password, **extra):
    return client.post("/login/", {"username": username, "password": password}, **extra)


def test_it_shows_the_login_form(client):
    response = client.get("/login/")
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="id_username"' in html and 'id="id_password"' in html


def test_it_logs_in_by_name_and_lands_on_the_dashboard(client, admin_a):
    response = _login(client, "admin-a", TEST_PASSWORD)
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert "<h1>Dashboard</h1>" in client.get("/").content.decode()


def test_it_logs_in_by_email_address_in_any_case(client, user_a):
    PrincipalEmail.objects.create(principal=user_a, address="jane@example.org", position=0)
    response = _login(client, "  Jane@EXAMPLE.org ", TEST_PASSWORD)
    assert response.status_code == 302
    assert int(client.session["_auth_user_id"]) == user_a.pk


def test_it_follows_a_safe_next_url_only(client, admin_a):
    response = client.post(
        "/login/", {"username": "admin-a", "password": TEST_PASSWORD, "next": "/account/security/"}
    )
    assert response["Location"] == "/account/security/"
    client.logout()
    response = client.post(
        "/login/", {"username": "admin-a", "password": TEST_PASSWORD, "next": "https://evil.test/"}
    )
    assert response["Location"] == "/"


def test_it_rejects_a_wrong_password_with_a_message_and_audits_it(client, user_a):
    response = _login(client, "user-a", "wrong", REMOTE_ADDR="192.0.2.7")
    assert response.status_code == 422
    assert BAD_LOGIN in response.content.decode()
    assert "_auth_user_id" not in client.session
    event = AuditEvent.objects.get(action="login.failed")
    assert event.object_repr == "user-a"
    assert event.ip == "192.0.2.7"
    assert event.changes == {"reason": "password"}
    assert "wrong" not in str(event.changes)


def test_it_audits_a_successful_login(client, user_a):
    _login(client, "user-a", TEST_PASSWORD)
    event = AuditEvent.objects.get(action="login")
    assert event.actor_id == user_a.pk
    assert event.changes == {"method": "password"}


def test_it_does_not_log_in_with_an_app_password(client, user_a):
    from apps.accounts.auth.app_passwords import app_password_add

    _, plain = app_password_add(actor=user_a, name="phone")
    response = _login(client, "user-a", plain)
    assert BAD_LOGIN in response.content.decode()


def test_it_refuses_inactive_accounts_and_non_accounts(client, make_principal, tenant_a):
    make_principal(name="gone", tenant=tenant_a, is_active=False)
    make_principal(name="sales", tenant=tenant_a, type="group", roles=())
    assert BAD_LOGIN in _login(client, "gone", TEST_PASSWORD).content.decode()
    assert BAD_LOGIN in _login(client, "sales", TEST_PASSWORD).content.decode()


def test_logout_needs_post_and_ends_the_session(client, user_a):
    client.force_login(user_a)
    assert client.get("/logout/").status_code == 405
    response = client.post("/logout/")
    assert response["Location"] == "/login/"
    assert "_auth_user_id" not in client.session


# --- imported hashes -------------------------------------------------------------------


@pytest.mark.parametrize("stored", [SHA512, SHA256, BCRYPT, "$2y$" + BCRYPT[4:]])
def test_it_accepts_a_raw_imported_hash_and_rehashes_it_with_argon2(client, make_principal, stored):
    principal = make_principal(name="imported")
    Principal.objects.filter(pk=principal.pk).update(password=stored)
    response = _login(client, "imported", PASSWORD)
    assert response.status_code == 302
    principal.refresh_from_db()
    assert principal.password.startswith("argon2$")
    assert principal.check_password(PASSWORD)


def test_it_accepts_a_prefixed_imported_hash(client, make_principal):
    principal = make_principal(name="imported")
    Principal.objects.filter(pk=principal.pk).update(password=f"sha512_crypt${SHA512}")
    assert _login(client, "imported", PASSWORD).status_code == 302
    principal.refresh_from_db()
    assert principal.password.startswith("argon2$")


def test_it_keeps_an_imported_hash_after_a_wrong_password(client, make_principal):
    principal = make_principal(name="imported")
    Principal.objects.filter(pk=principal.pk).update(password=SHA512)
    _login(client, "imported", "not it")
    principal.refresh_from_db()
    assert principal.password == SHA512


# --- lockout ---------------------------------------------------------------------------


def test_five_failures_lock_the_account_from_that_address_only(client, user_a):
    for _ in range(5):
        _login(client, "user-a", "wrong", REMOTE_ADDR="192.0.2.1")
    response = _login(client, "user-a", TEST_PASSWORD, REMOTE_ADDR="192.0.2.1")
    assert response.status_code == 429
    assert LOCKED_15 in response.content.decode()
    assert "_auth_user_id" not in client.session
    row = LoginThrottle.objects.get(key="account:user-a|ip:192.0.2.1")
    assert row.failures == 5 and row.locks == 1 and row.locked_until > timezone.now()
    # The owner elsewhere is not locked out by someone else's failures.
    assert _login(client, "user-a", TEST_PASSWORD, REMOTE_ADDR="192.0.2.99").status_code == 302


def test_a_strangers_failures_never_lock_the_owner_out(client, anon_api, superadmin):
    stranger = "203.0.113.66"
    for attempt in range(10):
        response = anon_api.get(
            "/api/", HTTP_AUTHORIZATION=_basic("root", f"guess{attempt}"), REMOTE_ADDR=stranger
        )
        assert response.status_code == (401 if attempt < 5 else 429)
    assert response.json()["detail"] == LOCKED_15
    owner = "198.51.100.7"
    ok = anon_api.get("/api/", HTTP_AUTHORIZATION=_basic("root", TEST_PASSWORD), REMOTE_ADDR=owner)
    assert ok.status_code == 200
    assert _login(client, "root", TEST_PASSWORD, REMOTE_ADDR=owner).status_code == 302
    # ...and the stranger stays locked, even with the right password.
    assert (
        anon_api.get(
            "/api/", HTTP_AUTHORIZATION=_basic("root", TEST_PASSWORD), REMOTE_ADDR=stranger
        ).status_code
        == 429
    )


def test_each_failure_after_a_lock_locks_twice_as_long(client, user_a):
    for _ in range(5):
        _login(client, "user-a", "wrong", REMOTE_ADDR="192.0.2.1")
    expected = [30, 60, 120]
    for minutes in expected:
        LoginThrottle.objects.filter(key__startswith="account:").update(
            locked_until=timezone.now() - timedelta(seconds=1)
        )
        response = _login(client, "user-a", "wrong", REMOTE_ADDR="192.0.2.1")
        assert BAD_LOGIN in response.content.decode()  # refused as a wrong password, then locked
        response = _login(client, "user-a", TEST_PASSWORD, REMOTE_ADDR="192.0.2.1")
        assert f"Too many failed logins. Try again in {minutes} minutes." in (
            response.content.decode()
        )
    assert LoginThrottle.objects.get(key="account:user-a|ip:192.0.2.1").locks == 4


def test_locks_grow_up_to_a_day(user_a):
    from apps.accounts.auth.login import throttle_fail

    key = "account:user-a|ip:192.0.2.1"
    LoginThrottle.objects.create(
        key=key, failures=20, locks=12, locked_until=timezone.now() - timedelta(seconds=1)
    )
    throttle_fail([key])
    row = LoginThrottle.objects.get(key=key)
    assert (
        timedelta(hours=23, minutes=59) < row.locked_until - timezone.now() <= timedelta(hours=24)
    )


def test_a_streak_is_forgotten_a_day_after_its_last_lock(client, user_a):
    LoginThrottle.objects.create(
        key="account:user-a|ip:192.0.2.1",
        failures=6,
        locks=2,
        first_failure_at=timezone.now() - timedelta(days=2),
        locked_until=timezone.now() - timedelta(hours=25),
    )
    assert _login(client, "user-a", "wrong", REMOTE_ADDR="192.0.2.1").status_code == 422
    row = LoginThrottle.objects.get(key="account:user-a|ip:192.0.2.1")
    assert row.failures == 1 and row.locks == 0 and row.locked_until is None


def test_an_ipv6_client_counts_as_its_slash_64(client, settings, user_a):
    for host in range(1, 6):
        _login(client, "user-a", "wrong", REMOTE_ADDR=f"2001:db8:1:2::{host}")
    response = _login(client, "user-a", TEST_PASSWORD, REMOTE_ADDR="2001:db8:1:2:ffff::1")
    assert LOCKED_15 in response.content.decode()
    assert LoginThrottle.objects.filter(key="account:user-a|ip:2001:db8:1:2::/64").exists()
    assert _login(client, "user-a", TEST_PASSWORD, REMOTE_ADDR="2001:db8:1:3::1").status_code == 302


def test_it_counts_name_and_address_logins_against_the_same_account(client, user_a):
    PrincipalEmail.objects.create(principal=user_a, address="jane@example.org")
    for i in range(5):
        _login(client, "jane@example.org" if i % 2 else "user-a", "wrong")
    assert LOCKED_15 in _login(client, "user-a", TEST_PASSWORD).content.decode()


def test_it_locks_unknown_names_too(client):
    for _ in range(5):
        _login(client, "nobody", "wrong")
    assert LOCKED_15 in _login(client, "nobody", "wrong").content.decode()


def test_it_locks_an_address_trying_many_accounts(client, settings, make_principal):
    settings.MAILADMIN_LOGIN_LOCKOUT = {"ip": (3, 900, 600)}
    victim = make_principal(name="victim")
    for name in ("a", "b", "c"):
        _login(client, name, "wrong", REMOTE_ADDR="203.0.113.9")
    response = _login(client, victim.name, TEST_PASSWORD, REMOTE_ADDR="203.0.113.9")
    assert "Too many failed logins. Try again in 10 minutes." in response.content.decode()
    # The account itself is not locked: from elsewhere it logs in.
    assert _login(client, victim.name, TEST_PASSWORD, REMOTE_ADDR="198.51.100.1").status_code == 302


def test_the_default_ip_limit_is_twenty(client):
    for i in range(19):
        _login(client, f"u{i}", "wrong", REMOTE_ADDR="203.0.113.5")
    assert LoginThrottle.objects.get(key="ip:203.0.113.5").locked_until is None
    _login(client, "u19", "wrong", REMOTE_ADDR="203.0.113.5")
    assert LoginThrottle.objects.get(key="ip:203.0.113.5").locked_until is not None


def test_a_lock_expires(client, user_a):
    for _ in range(5):
        _login(client, "user-a", "wrong")
    past = timezone.now() - timedelta(minutes=16)
    LoginThrottle.objects.update(locked_until=past, first_failure_at=past)
    response = _login(client, "user-a", TEST_PASSWORD)
    assert response.status_code == 302
    assert not LoginThrottle.objects.filter(key__startswith="account:user-a|").exists()


def test_old_failures_fall_out_of_the_window(client, user_a):
    for _ in range(4):
        _login(client, "user-a", "wrong")
    LoginThrottle.objects.update(first_failure_at=timezone.now() - timedelta(minutes=16))
    _login(client, "user-a", "wrong")
    row = LoginThrottle.objects.get(key="account:user-a|ip:127.0.0.1")
    assert row.failures == 1 and row.locked_until is None


def test_it_says_how_many_minutes_are_left(client, user_a):
    LoginThrottle.objects.create(
        key="account:user-a|ip:127.0.0.1",
        failures=5,
        locks=1,
        locked_until=timezone.now() + timedelta(seconds=61),
    )
    response = _login(client, "user-a", TEST_PASSWORD)
    assert "Too many failed logins. Try again in 2 minutes." in response.content.decode()


def test_a_success_clears_the_account_counter(client, user_a):
    for _ in range(4):
        _login(client, "user-a", "wrong")
    assert _login(client, "user-a", TEST_PASSWORD).status_code == 302
    assert not LoginThrottle.objects.filter(key="account:user-a|ip:127.0.0.1").exists()
    assert LoginThrottle.objects.get(key="ip:127.0.0.1").failures == 4  # shared addresses


# --- TOTP second step ------------------------------------------------------------------


@pytest.fixture
def otp_user(user_a):
    from apps.accounts.auth.totp import totp_enable
    from apps.accounts.auth.twofactor import new_secret

    secret = new_secret()
    codes = totp_enable(actor=user_a, secret=secret, code=pyotp.TOTP(secret).now())
    user_a.refresh_from_db()
    user_a.plain_codes = codes
    return user_a


def test_it_asks_for_a_code_after_the_password(client, otp_user):
    response = _login(client, "user-a", TEST_PASSWORD)
    assert response["Location"] == "/account/login/verify/"
    assert "_auth_user_id" not in client.session
    page = client.get("/account/login/verify/").content.decode()
    assert 'id="id_code"' in page


def test_it_logs_in_with_a_current_code(client, otp_user):
    _login(client, "user-a", TEST_PASSWORD)
    code = pyotp.TOTP(otp_user.totp_secret).now()
    response = client.post("/account/login/verify/", {"code": code})
    assert response["Location"] == "/"
    assert int(client.session["_auth_user_id"]) == otp_user.pk
    assert AuditEvent.objects.get(action="login").changes == {"method": "totp"}


def test_it_accepts_the_previous_code_for_clock_drift(client, otp_user):
    import time

    _login(client, "user-a", TEST_PASSWORD)
    code = pyotp.TOTP(otp_user.totp_secret).at(time.time() - 30)
    assert client.post("/account/login/verify/", {"code": code})["Location"] == "/"


def test_it_rejects_a_wrong_or_old_code(client, otp_user):
    import time

    _login(client, "user-a", TEST_PASSWORD)
    old = pyotp.TOTP(otp_user.totp_secret).at(time.time() - 120)
    response = client.post("/account/login/verify/", {"code": old})
    assert response.status_code == 422
    assert "Invalid authentication code." in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_it_rejects_a_replayed_code(client, otp_user):
    code = pyotp.TOTP(otp_user.totp_secret).now()
    _login(client, "user-a", TEST_PASSWORD)
    assert client.post("/account/login/verify/", {"code": code})["Location"] == "/"
    client.post("/logout/")
    _login(client, "user-a", TEST_PASSWORD)
    response = client.post("/account/login/verify/", {"code": code})
    assert "Invalid authentication code." in response.content.decode()


def test_wrong_codes_count_towards_the_lockout(client, otp_user):
    _login(client, "user-a", TEST_PASSWORD)
    for _ in range(5):
        client.post("/account/login/verify/", {"code": "000000"})
    code = pyotp.TOTP(otp_user.totp_secret).now()
    response = client.post("/account/login/verify/", {"code": code})
    assert LOCKED_15 in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_a_password_success_does_not_reset_the_code_failures(client, otp_user):
    for _ in range(5):
        _login(client, "user-a", TEST_PASSWORD)
        client.post("/account/login/verify/", {"code": "000000"})
    assert LOCKED_15 in _login(client, "user-a", TEST_PASSWORD).content.decode()


def test_a_correct_second_factor_gets_through_a_strangers_failures(client, otp_user):
    """Someone who has the password (phished) guesses codes from their address: that
    address is locked, and the owner still logs in with password and code elsewhere."""
    stranger = "203.0.113.66"
    _login(client, "user-a", TEST_PASSWORD, REMOTE_ADDR=stranger)
    for _ in range(5):
        client.post("/account/login/verify/", {"code": "000000"}, REMOTE_ADDR=stranger)
    response = client.post(
        "/account/login/verify/",
        {"code": pyotp.TOTP(otp_user.totp_secret).now()},
        REMOTE_ADDR=stranger,
    )
    assert LOCKED_15 in response.content.decode()
    assert "_auth_user_id" not in client.session

    owner = Client()  # another browser
    _login(owner, "user-a", TEST_PASSWORD, REMOTE_ADDR="198.51.100.7")
    response = owner.post(
        "/account/login/verify/",
        {"code": pyotp.TOTP(otp_user.totp_secret).now()},
        REMOTE_ADDR="198.51.100.7",
    )
    assert response["Location"] == "/"
    assert int(owner.session["_auth_user_id"]) == otp_user.pk


def test_a_recovery_code_works_once(client, otp_user):
    code = otp_user.plain_codes[0]
    _login(client, "user-a", TEST_PASSWORD)
    response = client.post("/account/login/verify/", {"code": code.upper()}, follow=True)
    assert "You logged in with a recovery code; 9 left." in response.content.decode()
    client.post("/logout/")
    _login(client, "user-a", TEST_PASSWORD)
    response = client.post("/account/login/verify/", {"code": code})
    assert "Invalid authentication code." in response.content.decode()


def test_the_code_step_expires(client, otp_user):
    import time

    _login(client, "user-a", TEST_PASSWORD)
    session = client.session
    session["_mailadmin_2fa_pending"]["at"] = time.time() - 301
    session.save()
    response = client.post("/account/login/verify/", {"code": "123456"})
    assert response["Location"] == "/login/"


def test_the_code_step_needs_the_password_step(client, otp_user):
    assert client.get("/account/login/verify/")["Location"] == "/login/"


def test_the_admin_login_does_not_bypass_two_factor(client, otp_user):
    otp_user.is_superuser = True
    otp_user.save()
    response = client.post(
        "/admin/login/?next=/admin/", {"username": "user-a", "password": TEST_PASSWORD}
    )
    assert response.status_code == 200  # the form again, not a redirect into the admin
    assert "_auth_user_id" not in client.session
