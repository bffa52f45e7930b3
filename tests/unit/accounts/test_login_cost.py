"""One password-hash verification per login, however many app passwords, right or wrong."""

import base64

import pyotp
import pytest
from django.contrib.auth.hashers import make_password
from django.core.cache import cache

from apps.accounts.auth.app_passwords import LEGACY_CHECKS, app_password_add, lookup_digests
from apps.accounts.auth.totp import totp_enable
from apps.accounts.auth.twofactor import new_secret
from apps.accounts.models import AppPassword, Principal
from mailadmin.errors import ServiceError
from tests.conftest import TEST_PASSWORD
from tests.unit.accounts.test_auth_hashers import PASSWORD, SHA512

pytestmark = pytest.mark.django_db


def _get(client, name: str, password: str):
    credentials = base64.b64encode(f"{name}:{password}".encode()).decode()
    return client.get("/api/", HTTP_AUTHORIZATION=f"Basic {credentials}")


@pytest.fixture
def twenty(user_a) -> list[str]:
    """user-a's twenty app passwords, oldest first."""
    return [app_password_add(actor=user_a, name=f"client{i}")[1] for i in range(20)]


@pytest.mark.parametrize(
    ("which", "status"),
    [("newest", 200), ("oldest", 200), ("account", 200), ("wrong", 401), ("unknown", 401)],
)
def test_basic_auth_with_twenty_app_passwords_hashes_once(
    anon_api, user_a, twenty, hashings, which, status
):
    name, password = {
        "newest": ("user-a", twenty[-1]),
        "oldest": ("user-a", twenty[0]),
        "account": ("user-a", TEST_PASSWORD),
        "wrong": ("user-a", "abcd-efgh-ijkm-nopq"),
        "unknown": ("nobody", twenty[-1]),
    }[which]
    hashings.clear()
    assert _get(anon_api, name, password).status_code == status
    assert len(hashings) == 1


@pytest.mark.parametrize("right", [True, False])
def test_with_two_factor_on_it_hashes_once_too(anon_api, user_a, twenty, hashings, right):
    secret = new_secret()
    totp_enable(actor=user_a, secret=secret, code=pyotp.TOTP(secret).now())
    hashings.clear()
    response = _get(anon_api, "user-a", twenty[5] if right else TEST_PASSWORD)
    assert response.status_code == (200 if right else 401)
    assert len(hashings) == 1


def test_each_app_password_keeps_a_keyed_lookup_not_the_password(user_a):
    row, plain = app_password_add(actor=user_a, name="phone")
    assert row.lookup == lookup_digests(plain)[0] and len(row.lookup) == 64
    assert plain not in row.lookup and row.password.startswith("argon2$")


def test_an_imported_hash_gets_its_lookup_at_first_use(anon_api, user_a, hashings):
    app_password_add(actor=user_a, name="old", password=SHA512)
    assert AppPassword.objects.get(name="old").lookup == ""
    hashings.clear()
    assert _get(anon_api, "user-a", PASSWORD).status_code == 200
    row = AppPassword.objects.get(name="old")
    assert row.lookup == lookup_digests(PASSWORD)[0] and row.password.startswith("argon2$")
    hashings.clear()
    assert _get(anon_api, "user-a", PASSWORD).status_code == 200
    assert hashings == []  # remembered with the new hash (see test_remembered_logins.py)
    cache.clear()
    assert _get(anon_api, "user-a", PASSWORD).status_code == 200
    assert hashings == ["verify"]  # found by its lookup


def test_unused_imported_hashes_are_bounded(user_a):
    from tests.unit.accounts.test_auth_hashers import BCRYPT, SHA256

    hashes = [SHA512, SHA256, BCRYPT, "$2y$" + BCRYPT[4:], "$6$other$" + SHA512.split("$")[3]]
    for i, crypt in enumerate(hashes[:LEGACY_CHECKS]):
        AppPassword.objects.create(principal=user_a, name=f"old{i}", password=crypt)
    with pytest.raises(ServiceError) as exc:
        app_password_add(actor=user_a, name="one-more", password=SHA512)
    assert exc.value.message == (
        "You already have 5 imported app passwords that were never used; use or remove one "
        "before importing another."
    )


def test_a_wrong_password_tries_at_most_the_bounded_imported_hashes(
    anon_api, user_a, settings, hashings
):
    for i in range(LEGACY_CHECKS + 3):  # rows from before lookups existed
        AppPassword.objects.create(
            principal=user_a, name=f"old{i}", password=make_password(f"old password {i}")
        )
    hashings.clear()
    assert _get(anon_api, "user-a", "wrong password").status_code == 401
    assert len(hashings) == 1 + LEGACY_CHECKS  # the account password, then the newest five


def test_the_same_password_twice_is_refused(user_a):
    app_password_add(actor=user_a, name="one", password="the same password")
    with pytest.raises(ServiceError) as exc:
        app_password_add(actor=user_a, name="two", password="the same password")
    assert exc.value.message == (
        "The password of app password 'two' is already used by another of your app passwords."
    )


def test_rotating_the_secret_key_keeps_app_passwords_working(anon_api, user_a, settings):
    _, plain = app_password_add(actor=user_a, name="phone")
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a brand new secret key " * 3
    assert _get(anon_api, "user-a", plain).status_code == 200
    assert AppPassword.objects.get(name="phone").lookup == lookup_digests(plain)[0]
    settings.SECRET_KEY_FALLBACKS = []
    assert _get(anon_api, "user-a", plain).status_code == 200  # re-keyed at first use


def test_the_account_password_still_works_beside_app_passwords(anon_api, user_a, twenty):
    assert _get(anon_api, "user-a", TEST_PASSWORD).status_code == 200
    Principal.objects.filter(pk=user_a.pk).update(is_active=False)
    assert _get(anon_api, "user-a", twenty[0]).status_code == 401
