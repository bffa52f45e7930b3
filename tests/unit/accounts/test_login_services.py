"""authenticate_password(): the one check SMTP/IMAP AUTH will share with HTTP Basic."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.accounts.auth.app_passwords import app_password_add
from apps.accounts.auth.login import (
    InvalidCredentials,
    LoginLocked,
    authenticate_password,
    throttle_purge,
)
from apps.accounts.models import AppPassword, LoginThrottle, PrincipalEmail
from tests.conftest import TEST_PASSWORD

pytestmark = pytest.mark.django_db


def _auth(identifier, password, *, app_passwords=True, ip="192.0.2.1"):
    return authenticate_password(
        identifier=identifier, password=password, ip=ip, app_passwords=app_passwords
    )


def test_it_accepts_the_password_or_an_app_password(user_a):
    _, plain = app_password_add(actor=user_a, name="imap")
    assert _auth("user-a", TEST_PASSWORD) == user_a
    assert _auth("user-a", plain) == user_a
    assert AppPassword.objects.get(name="imap").last_used_at is not None
    with pytest.raises(InvalidCredentials):
        _auth("user-a", plain, app_passwords=False)


def test_it_finds_the_account_by_address_with_an_idn_domain(user_a):
    PrincipalEmail.objects.create(principal=user_a, address="jane@xn--bcher-kva.example")
    assert _auth("Jane@Bücher.example", TEST_PASSWORD) == user_a


def test_it_raises_login_locked_with_the_wait(user_a):
    LoginThrottle.objects.create(
        key="ip:192.0.2.1", failures=20, locked_until=timezone.now() + timedelta(minutes=3)
    )
    with pytest.raises(LoginLocked) as exc:
        _auth("user-a", TEST_PASSWORD)
    assert exc.value.message == "Too many failed logins. Try again in 3 minutes."
    assert 170 <= exc.value.retry_after <= 180
    assert _auth("user-a", TEST_PASSWORD, ip="192.0.2.2") == user_a


def test_it_says_one_minute_in_the_singular(user_a):
    LoginThrottle.objects.create(
        key="account:user-a|ip:192.0.2.1",
        failures=5,
        locks=1,
        locked_until=timezone.now() + timedelta(seconds=20),
    )
    with pytest.raises(LoginLocked, match=r"^Too many failed logins\. Try again in 1 minute\.$"):
        _auth("user-a", TEST_PASSWORD)


def test_it_refuses_huge_input_without_hashing_it(user_a):
    with pytest.raises(InvalidCredentials):
        _auth("user-a", "x" * 5000)
    with pytest.raises(InvalidCredentials):
        _auth("u" * 400, TEST_PASSWORD)


def test_purge_deletes_only_rows_that_no_longer_count():
    old = timezone.now() - timedelta(hours=1)
    LoginThrottle.objects.create(key="ip:192.0.2.9", failures=2, first_failure_at=old)
    LoginThrottle.objects.create(key="account:fresh", failures=2)
    LoginThrottle.objects.create(
        key="account:locked",
        failures=5,
        first_failure_at=old,
        locked_until=timezone.now() + timedelta(minutes=5),
    )
    LoginThrottle.objects.create(key="totp-step:1", failures=123, first_failure_at=old)
    assert throttle_purge() == 1
    assert set(LoginThrottle.objects.values_list("key", flat=True)) == {
        "account:fresh",
        "account:locked",
        "totp-step:1",
    }


def test_the_openapi_schema_describes_the_auth_endpoints(anon_api):
    schema = anon_api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    for path in (
        "/api/oauth",
        "/api/oauth/token",
        "/api/account/auth",
        "/api/account/crypto",
        "/api/account/api-keys",
        "/api/account/api-keys/{key_id}",
    ):
        assert path in schema["paths"], path
