"""Self-service password change: the current password, the new one twice, the second
factor when 2FA is on; audited; this session stays, the others end."""

import time

import pyotp
import pytest
from django.test import Client

from apps.accounts.auth.login import LoginLocked
from apps.accounts.auth.passwords import password_change
from apps.accounts.auth.totp import totp_enable
from apps.accounts.auth.twofactor import new_secret
from apps.accounts.models import Principal
from mailadmin.core.models import AuditEvent
from mailadmin.errors import PermissionDenied, ServiceError
from tests.conftest import TEST_PASSWORD

pytestmark = pytest.mark.django_db
NEW = "a-much-better-passphrase"


def fresh(principal) -> Principal:
    return Principal.objects.get(pk=principal.pk)


def later_code(secret: str) -> str:
    """The next step's code: login already spent the current one (no replay)."""
    return pyotp.TOTP(secret).at(time.time() + 30)


@pytest.fixture
def with_2fa(user_a) -> str:
    secret = new_secret()
    totp_enable(actor=user_a, secret=secret, code=None)
    return secret


# --- the service -----------------------------------------------------------------------


def test_it_changes_the_password_and_audits_without_secrets(user_a):
    password_change(actor=user_a, current=TEST_PASSWORD, new=NEW)
    assert fresh(user_a).check_password(NEW)
    event = AuditEvent.objects.get(action="password.change")
    assert event.actor_id == user_a.pk and event.object_id == str(user_a.pk)
    assert NEW not in str(event.changes) and TEST_PASSWORD not in str(event.changes)


def test_it_refuses_a_wrong_current_password(user_a):
    with pytest.raises(ServiceError) as error:
        password_change(actor=user_a, current="not it", new=NEW)
    assert error.value.field == "current"
    assert error.value.message == "Your current password is not correct."
    assert fresh(user_a).check_password(TEST_PASSWORD)


def test_it_counts_wrong_current_passwords_towards_the_lockout(user_a):
    locked = None
    for _ in range(30):
        try:
            password_change(actor=user_a, current="guess", new=NEW, ip="192.0.2.7")
        except LoginLocked as exc:
            locked = exc
            break
        except ServiceError:
            continue
    assert locked is not None and locked.status == 429
    # Locked now: even the right password is refused from that address.
    with pytest.raises(LoginLocked):
        password_change(actor=user_a, current=TEST_PASSWORD, new=NEW, ip="192.0.2.7")
    assert fresh(user_a).check_password(TEST_PASSWORD)


@pytest.mark.parametrize(
    ("new", "message"),
    [
        ("", "Enter a new password."),
        (TEST_PASSWORD, "The new password must differ from the current one."),
        ("short", "This password is too short. It must contain at least 8 characters."),
        ("password123", "This password is too common."),
        ("x" * 1025, "The new password is too long: at most 1024 characters."),
    ],
)
def test_it_refuses_a_bad_new_password(user_a, new, message):
    with pytest.raises(ServiceError) as error:
        password_change(actor=user_a, current=TEST_PASSWORD, new=new)
    assert (error.value.field, error.value.message) == ("new", message)
    assert fresh(user_a).check_password(TEST_PASSWORD)


def test_it_requires_the_code_when_2fa_is_on(user_a, with_2fa):
    with pytest.raises(ServiceError) as missing:
        password_change(actor=user_a, current=TEST_PASSWORD, new=NEW)
    assert missing.value.field == "code"
    with pytest.raises(ServiceError) as wrong:
        password_change(actor=user_a, current=TEST_PASSWORD, new=NEW, code="000000")
    assert wrong.value.message == "Invalid authentication code."
    assert fresh(user_a).check_password(TEST_PASSWORD)
    password_change(actor=user_a, current=TEST_PASSWORD, new=NEW, code=pyotp.TOTP(with_2fa).now())
    assert fresh(user_a).check_password(NEW)


def test_it_accepts_a_recovery_code_as_the_second_factor(user_a):
    secret = new_secret()
    codes = totp_enable(actor=user_a, secret=secret, code=pyotp.TOTP(secret).now())
    password_change(actor=user_a, current=TEST_PASSWORD, new=NEW, code=codes[0])
    assert fresh(user_a).check_password(NEW)


def test_it_does_not_spend_the_code_on_a_refused_new_password(user_a, with_2fa):
    code = pyotp.TOTP(with_2fa).now()
    with pytest.raises(ServiceError):
        password_change(actor=user_a, current=TEST_PASSWORD, new="short", code=code)
    password_change(actor=user_a, current=TEST_PASSWORD, new=NEW, code=code)
    assert fresh(user_a).check_password(NEW)


def test_it_needs_manage_passwords(make_principal, tenant_a):
    nobody = make_principal(tenant=tenant_a, roles=())
    with pytest.raises(PermissionDenied):
        password_change(actor=nobody, current=TEST_PASSWORD, new=NEW)


# --- the page --------------------------------------------------------------------------


def test_it_shows_the_form_and_asks_for_a_code_only_with_2fa(client, user_a):
    client.force_login(user_a)
    page = client.get("/account/password/").content.decode()
    assert 'name="current"' in page and 'name="new"' in page and 'name="new2"' in page
    assert 'name="code"' not in page
    assert 'href="/account/password/" id="menu-password"' in page
    secret = new_secret()
    totp_enable(actor=user_a, secret=secret, code=None)
    assert 'name="code"' in client.get("/account/password/").content.decode()


def test_it_keeps_this_session_and_ends_the_others(client, user_a):
    other = Client()
    other.force_login(user_a)
    client.force_login(user_a)
    response = client.post(
        "/account/password/", {"current": TEST_PASSWORD, "new": NEW, "new2": NEW}
    )
    assert response.status_code == 302 and response["Location"] == "/account/security/"
    assert fresh(user_a).check_password(NEW)
    follow = client.get("/account/security/")
    assert follow.status_code == 200
    assert "Your password was changed." in follow.content.decode()
    assert other.get("/account/security/")["Location"].startswith("/login/")


def test_it_answers_422_with_the_message_when_the_new_passwords_differ(client, user_a):
    client.force_login(user_a)
    response = client.post(
        "/account/password/", {"current": TEST_PASSWORD, "new": NEW, "new2": NEW + "!"}
    )
    assert response.status_code == 422
    assert "The two new passwords don&#x27;t match." in response.content.decode()
    assert 'id="id_new2_error"' in response.content.decode()
    assert fresh(user_a).check_password(TEST_PASSWORD)


def test_it_shows_a_wrong_current_password_beside_its_field(client, user_a):
    client.force_login(user_a)
    response = client.post("/account/password/", {"current": "nope", "new": NEW, "new2": NEW})
    assert response.status_code == 422
    page = response.content.decode()
    assert 'id="id_current_error"' in page and "Your current password is not correct." in page


def test_it_asks_for_the_code_on_the_page_when_2fa_is_on(client, user_a, with_2fa):
    client.force_login(user_a)
    data = {"current": TEST_PASSWORD, "new": NEW, "new2": NEW}
    missing = client.post("/account/password/", data)
    assert missing.status_code == 422 and 'id="id_code_error"' in missing.content.decode()
    response = client.post("/account/password/", {**data, "code": later_code(with_2fa)})
    assert response.status_code == 302
    assert fresh(user_a).check_password(NEW)


def test_it_needs_manage_passwords_for_the_page(client, make_principal, tenant_a):
    from apps.accounts.auth import views

    assert views.password_change_view.required_permission == "manage-passwords"
    client.force_login(make_principal(tenant=tenant_a, roles=()))
    assert client.get("/account/password/").status_code == 403
