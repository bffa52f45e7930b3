"""Mail-client logins that succeeded are remembered for a short while: the same name and
password again cost no password hash, and any change to the credential, the principal or
the lockout applies to the very next request."""

from __future__ import annotations

import base64
import hashlib
import time

import pyotp
import pytest
from django.core.cache import cache, caches
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.db import DatabaseCache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.accounts.auth import remembered
from apps.accounts.auth.app_passwords import app_password_add
from apps.accounts.auth.login import InvalidCredentials, authenticate_password
from apps.accounts.auth.twofactor import new_secret
from apps.accounts.models import AppPassword, LoginThrottle, Principal
from tests.conftest import TEST_PASSWORD
from tests.unit.accounts.test_auth_hashers import PASSWORD as IMPORTED_PASSWORD
from tests.unit.accounts.test_auth_hashers import SHA512

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()  # Redis (CI) outlives a test's database


@pytest.fixture
def calls(monkeypatch) -> list[tuple[str, tuple, dict]]:
    """Every call the login memory makes to the cache: (method, args, kwargs)."""
    done: list[tuple[str, tuple, dict]] = []

    class Recorder:
        def __getattr__(self, name):
            method = getattr(cache, name)

            def recorded(*args, **kwargs):
                done.append((name, args, kwargs))
                return method(*args, **kwargs)

            return recorded

    monkeypatch.setattr(remembered, "cache", Recorder())
    return done


WRONG = "abcd-efgh-ijkm-nopq"


def _get(client, name: str, password: str, path: str = "/api/account/auth", ip="10.0.0.1"):
    credentials = base64.b64encode(f"{name}:{password}".encode()).decode()
    return client.get(path, HTTP_AUTHORIZATION=f"Basic {credentials}", REMOTE_ADDR=ip)


def _post(client, name: str, password: str, path: str, body):
    credentials = base64.b64encode(f"{name}:{password}".encode()).decode()
    return client.post(
        path,
        body,
        format="json",
        HTTP_AUTHORIZATION=f"Basic {credentials}",
        REMOTE_ADDR="10.0.0.1",
    )


@pytest.fixture
def twenty(user_a) -> list[str]:
    """user-a's twenty app passwords, oldest first."""
    return [app_password_add(actor=user_a, name=f"client{i}")[1] for i in range(20)]


@pytest.mark.parametrize("which", ["account", "newest app password", "oldest app password"])
def test_it_hashes_once_then_never_again_while_remembered(
    anon_api, user_a, twenty, hashings, which
):
    password = {
        "account": TEST_PASSWORD,
        "newest app password": twenty[-1],
        "oldest app password": twenty[0],
    }[which]
    hashings.clear()
    assert _get(anon_api, "user-a", password).status_code == 200
    assert hashings == ["verify"]
    for _ in range(3):
        response = _get(anon_api, "user-a", password)
        assert response.status_code == 200
        assert response.json()["data"]["appPasswords"][:2] == ["client0", "client1"]
    assert hashings == ["verify"]


def test_a_remembered_login_keeps_its_method(anon_api, user_a, twenty):
    """An app password stays an app password: it still may not change credentials."""
    _get(anon_api, "user-a", twenty[3])
    response = _post(
        anon_api,
        "user-a",
        twenty[3],
        "/api/account/auth",
        [{"type": "removeAppPassword", "name": "client0"}],
    )
    assert response.status_code == 403
    assert AppPassword.objects.filter(principal=user_a).count() == 20


def test_a_remembered_app_password_still_records_its_use(anon_api, user_a, twenty):
    _get(anon_api, "user-a", twenty[7])
    AppPassword.objects.filter(name="client7").update(last_used_at=None)
    assert _get(anon_api, "user-a", twenty[7]).status_code == 200
    assert AppPassword.objects.get(name="client7").last_used_at is not None


def test_a_name_and_an_address_are_remembered_apart(anon_api, user_a, hashings):
    user_a.emails.create(address="user@a.example")
    hashings.clear()
    for name in ("user-a", "user@a.example", "user-a", "user@a.example"):
        assert _get(anon_api, name, TEST_PASSWORD).status_code == 200
    assert hashings == ["verify", "verify"]


def test_a_wrong_password_is_never_remembered_and_costs_one_hash(anon_api, user_a, hashings):
    assert _get(anon_api, "user-a", TEST_PASSWORD).status_code == 200
    hashings.clear()
    for _ in range(3):
        assert _get(anon_api, "user-a", WRONG).status_code == 401
    assert hashings == ["verify"] * 3
    assert cache.get(remembered.cache_key("user-a", WRONG)) is None


def test_an_unknown_name_costs_one_hash_and_one_cache_read(anon_api, user_a, hashings, calls):
    """As a wrong password for a name that exists: the cache is asked whoever is named."""
    hashings.clear()
    assert _get(anon_api, "nobody", TEST_PASSWORD).status_code == 401
    assert len(hashings) == 1
    assert [name for name, *_ in calls] == ["get"]


def test_a_remembered_login_reads_the_cache_once_and_writes_nothing(anon_api, user_a, calls):
    assert _get(anon_api, "user-a", TEST_PASSWORD).status_code == 200
    assert [name for name, *_ in calls] == ["get", "set"]
    calls.clear()
    assert _get(anon_api, "user-a", TEST_PASSWORD).status_code == 200
    assert [name for name, *_ in calls] == ["get"]


def test_with_the_database_cache_a_remembered_login_costs_one_small_query(anon_api, user_a):
    if not isinstance(caches["default"], DatabaseCache):
        pytest.skip("the cache is not the database here (Redis: one GET, as counted above)")
    assert _get(anon_api, "user-a", TEST_PASSWORD).status_code == 200
    with CaptureQueriesContext(connection) as queries:
        assert _get(anon_api, "user-a", TEST_PASSWORD).status_code == 200
    touching = [q["sql"] for q in queries if "mailadmin_cache" in q["sql"]]
    assert len(touching) == 1 and touching[0].startswith("SELECT")


def test_the_cache_holds_no_password_and_no_unkeyed_hash(anon_api, user_a, settings, calls):
    assert _get(anon_api, "user-a", TEST_PASSWORD).status_code == 200
    [(key, entry)] = [(args[0], args[1]) for name, args, _ in calls if name == "set"]
    assert key == remembered.cache_key("user-a", TEST_PASSWORD)
    assert entry[:2] == (user_a.pk, None)  # the account password, no app password
    stored = key + repr(entry)
    for unkeyed in (
        TEST_PASSWORD,
        hashlib.sha256(TEST_PASSWORD.encode()).hexdigest(),
        hashlib.sha256(f"user-a:{TEST_PASSWORD}".encode()).hexdigest(),
        hashlib.sha256(f"6:user-a{TEST_PASSWORD}".encode()).hexdigest(),
        Principal.objects.get(pk=user_a.pk).password,
    ):
        assert unkeyed not in stored
    settings.SECRET_KEY = "another secret key, another cache key " * 2
    assert remembered.cache_key("user-a", TEST_PASSWORD) != key


def test_a_password_change_ends_the_remembered_login_at_once(anon_api, admin_a):
    assert _get(anon_api, "admin-a", TEST_PASSWORD).status_code == 200
    new = [{"action": "set", "field": "secrets", "value": "a new long password 1"}]
    credentials = base64.b64encode(f"admin-a:{TEST_PASSWORD}".encode()).decode()
    response = anon_api.patch(
        "/api/principal/admin-a", new, format="json", HTTP_AUTHORIZATION=f"Basic {credentials}"
    )
    assert response.status_code == 200
    assert _get(anon_api, "admin-a", TEST_PASSWORD).status_code == 401
    assert _get(anon_api, "admin-a", "a new long password 1").status_code == 200


def test_a_password_set_outside_the_services_ends_it_too(anon_api, user_a):
    """The check compares with the stored hash, not with events: a raw update counts."""
    assert _get(anon_api, "user-a", TEST_PASSWORD).status_code == 200
    user_a.set_password("a new long password 1")
    Principal.objects.filter(pk=user_a.pk).update(password=user_a.password)
    assert _get(anon_api, "user-a", TEST_PASSWORD).status_code == 401


def test_revoking_an_app_password_ends_it_at_once(anon_api, user_a, twenty, hashings):
    assert _get(anon_api, "user-a", twenty[4]).status_code == 200
    response = _post(
        anon_api,
        "user-a",
        TEST_PASSWORD,
        "/api/account/auth",
        [{"type": "removeAppPassword", "name": "client4"}],
    )
    assert response.status_code == 200
    hashings.clear()
    assert _get(anon_api, "user-a", twenty[4]).status_code == 401
    assert hashings == ["verify"]  # checked as any wrong password
    assert _get(anon_api, "user-a", twenty[5]).status_code == 200


def test_an_app_password_replaced_under_the_same_id_ends_it(anon_api, user_a, twenty):
    assert _get(anon_api, "user-a", twenty[2]).status_code == 200
    row = AppPassword.objects.get(name="client2")
    other, _ = app_password_add(actor=user_a, name="spare", password="a spare password 1")
    AppPassword.objects.filter(pk=row.pk).update(password=other.password, lookup="")
    other.delete()
    assert _get(anon_api, "user-a", twenty[2]).status_code == 401


@pytest.mark.parametrize("change", ["disabled", "deleted", "renamed"])
def test_a_disabled_deleted_or_renamed_principal_ends_it_at_once(
    anon_api, api_a, user_a, twenty, change
):
    for password in (TEST_PASSWORD, twenty[0]):
        assert _get(anon_api, "user-a", password).status_code == 200
    if change == "disabled":
        Principal.objects.filter(pk=user_a.pk).update(is_active=False)
    elif change == "deleted":
        assert api_a.delete("/api/principal/user-a").status_code == 200
    else:
        Principal.objects.filter(pk=user_a.pk).update(name="user-a2")
    for password in (TEST_PASSWORD, twenty[0]):
        assert _get(anon_api, "user-a", password).status_code == 401


def test_an_address_given_to_another_account_no_longer_logs_the_old_one_in(
    anon_api, user_a, admin_a
):
    user_a.emails.create(address="shared@a.example")
    assert _get(anon_api, "shared@a.example", TEST_PASSWORD).status_code == 200
    user_a.emails.all().delete()
    admin_a.emails.create(address="shared@a.example")
    admin_a.set_password("admin-a's own password")
    admin_a.save(update_fields=["password"])
    assert _get(anon_api, "shared@a.example", TEST_PASSWORD).status_code == 401


def test_switching_two_factor_on_ends_the_remembered_account_password(anon_api, user_a, twenty):
    assert _get(anon_api, "user-a", TEST_PASSWORD).status_code == 200
    assert _get(anon_api, "user-a", twenty[1]).status_code == 200
    uri = pyotp.TOTP(new_secret()).provisioning_uri(name="user-a", issuer_name="test")
    response = _post(
        anon_api,
        "user-a",
        TEST_PASSWORD,
        "/api/account/auth",
        [{"type": "enableOtpAuth", "url": uri}],
    )
    assert response.status_code == 200
    assert _get(anon_api, "user-a", TEST_PASSWORD).status_code == 401
    assert _get(anon_api, "user-a", twenty[1]).status_code == 200  # app passwords go on


def test_an_imported_hash_is_remembered_as_upgraded(anon_api, user_a, hashings):
    Principal.objects.filter(pk=user_a.pk).update(password=SHA512)
    hashings.clear()
    assert _get(anon_api, "user-a", IMPORTED_PASSWORD).status_code == 200
    assert Principal.objects.get(pk=user_a.pk).password.startswith("argon2$")
    hashings.clear()
    assert _get(anon_api, "user-a", IMPORTED_PASSWORD).status_code == 200
    assert hashings == []


def test_a_locked_account_and_address_is_refused_though_remembered(anon_api, user_a, hashings):
    assert _get(anon_api, "user-a", TEST_PASSWORD).status_code == 200
    for _ in range(5):
        assert _get(anon_api, "user-a", WRONG).status_code == 401
    hashings.clear()
    response = _get(anon_api, "user-a", TEST_PASSWORD)
    assert response.status_code == 429
    assert response.json()["detail"] == "Too many failed logins. Try again in 15 minutes."
    assert hashings == []
    # The owner elsewhere is not locked out, and the remembered login works there.
    assert _get(anon_api, "user-a", TEST_PASSWORD, ip="10.0.0.2").status_code == 200
    assert hashings == []


def test_a_locked_address_is_refused_though_remembered(anon_api, user_a, settings):
    settings.MAILADMIN_LOGIN_LOCKOUT = {"ip": (3, 900, 900)}
    assert _get(anon_api, "user-a", TEST_PASSWORD).status_code == 200
    for name in ("x1", "x2", "x3"):
        assert _get(anon_api, name, WRONG).status_code == 401
    assert _get(anon_api, "user-a", TEST_PASSWORD).status_code == 429


def test_a_remembered_success_forgives_this_address_its_failures(anon_api, user_a):
    assert _get(anon_api, "user-a", TEST_PASSWORD).status_code == 200
    for _ in range(4):
        assert _get(anon_api, "user-a", WRONG).status_code == 401
    assert _get(anon_api, "user-a", TEST_PASSWORD).status_code == 200
    assert not LoginThrottle.objects.filter(key="account:user-a|ip:10.0.0.1").exists()
    for _ in range(4):
        assert _get(anon_api, "user-a", WRONG).status_code == 401
    assert _get(anon_api, "user-a", TEST_PASSWORD).status_code == 200


def test_an_entry_moved_to_another_key_or_forged_is_refused(anon_api, user_a, admin_a, hashings):
    assert _get(anon_api, "user-a", TEST_PASSWORD).status_code == 200
    good = cache.get(remembered.cache_key("user-a", TEST_PASSWORD))
    cache.set(remembered.cache_key("user-a", WRONG), good)
    cache.set(remembered.cache_key("admin-a", WRONG), (admin_a.pk, None, good[2]))
    hashings.clear()
    assert _get(anon_api, "user-a", WRONG).status_code == 401
    assert _get(anon_api, "admin-a", WRONG).status_code == 401
    assert hashings == ["verify", "verify"]
    assert cache.get(remembered.cache_key("user-a", WRONG)) is None  # dropped


def test_the_login_cache_can_be_switched_off(anon_api, user_a, settings, hashings):
    settings.MAILADMIN_BASIC_AUTH_CACHE_SECONDS = 0
    hashings.clear()
    for _ in range(3):
        assert _get(anon_api, "user-a", TEST_PASSWORD).status_code == 200
    assert hashings == ["verify"] * 3
    assert cache.get(remembered.cache_key("user-a", TEST_PASSWORD)) is None


def test_entries_live_as_long_as_configured(user_a, settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    settings.MAILADMIN_BASIC_AUTH_CACHE_SECONDS = 42
    authenticate_password(identifier="user-a", password=TEST_PASSWORD, ip=None, app_passwords=True)
    key = cache.make_key(remembered.cache_key("user-a", TEST_PASSWORD))
    assert 41 < cache._expire_info[key] - time.time() <= 42  # noqa: SLF001


class BrokenCache(BaseCache):
    """A cache server that is down."""

    def __init__(self, location, params):
        super().__init__(params)

    def get(self, key, default=None, version=None):
        raise ConnectionError("the cache is down")

    def set(self, key, value, timeout=None, version=None):
        raise ConnectionError("the cache is down")

    def delete(self, key, version=None):
        raise ConnectionError("the cache is down")


def test_a_broken_cache_only_costs_the_hash(anon_api, user_a, settings, hashings):
    settings.CACHES = {"default": {"BACKEND": f"{__name__}.BrokenCache"}}
    hashings.clear()
    for _ in range(2):
        assert _get(anon_api, "user-a", TEST_PASSWORD).status_code == 200
    assert _get(anon_api, "user-a", WRONG).status_code == 401
    assert hashings == ["verify"] * 3


def test_the_console_login_is_not_remembered(user_a, hashings):
    """Only mail clients (HTTP Basic, SMTP AUTH): the console checks the hash each time."""
    hashings.clear()
    for _ in range(2):
        authenticate_password(
            identifier="user-a", password=TEST_PASSWORD, ip=None, app_passwords=False
        )
    assert hashings == ["verify", "verify"]
    with pytest.raises(InvalidCredentials):
        authenticate_password(identifier="user-a", password=WRONG, ip=None, app_passwords=True)
