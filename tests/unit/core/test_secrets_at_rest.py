"""Secrets at rest: DKIM private keys and TOTP secrets are sealed under
MAILADMIN_SECRETS_KEY, still work after `rotate_secrets_key`, and are useless without it."""

from __future__ import annotations

import importlib
import io
import os
import subprocess
import sys

import pyotp
import pytest
from cryptography.fernet import Fernet
from django.apps import apps
from django.core.management import CommandError, call_command
from django.db import connection

from apps.accounts.auth.totp import totp_enable
from apps.accounts.auth.twofactor import new_secret
from apps.accounts.models import Principal
from apps.domains import dkim, records
from apps.domains.models import DkimKey
from apps.domains.services import dkim_key_create
from mailadmin import sealing
from mailadmin.core.models import AuditEvent
from tests.conftest import ROOT, TEST_PASSWORD, corpus_file
from tests.unit.domains.test_dkim import _live_dnsfunc

pytestmark = pytest.mark.django_db

OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()


def _stored(model, column: str, pk: int) -> str:
    """The value as the database holds it, read past the ORM."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {model._meta.db_table} WHERE id = %s", [pk])  # noqa: S608
        return cursor.fetchone()[0]


def _store_raw(model, column: str, pk: int, value: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {model._meta.db_table} SET {column} = %s WHERE id = %s",  # noqa: S608
            [value, pk],
        )


def _rotate(*args: str) -> str:
    out = io.StringIO()
    call_command("rotate_secrets_key", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def old_key(settings):
    """Everything in the test is sealed under OLD_KEY first."""
    settings.MAILADMIN_SECRETS_KEYS = [OLD_KEY]
    return settings


@pytest.fixture
def otp_user(old_key, user_a):
    secret = new_secret()
    totp_enable(actor=user_a, secret=secret, code=pyotp.TOTP(secret).now())
    user_a.plain_secret = secret
    return user_a


@pytest.fixture
def domain_a(make_principal, tenant_a):
    return make_principal(tenant=tenant_a, roles=(), name="a.example", type="domain", password="")


@pytest.fixture
def dkim_key(old_key, admin_a, domain_a) -> DkimKey:
    return dkim_key_create(actor=admin_a, domain=domain_a, algorithm=dkim.RSA, selector="s1")


@pytest.fixture
def fetch_job(old_key, admin_a, user_a):
    from apps.accounts.models import PrincipalEmail
    from apps.queue.fetch_services import FetchValues, fetch_job_create

    PrincipalEmail.objects.create(principal=user_a, address="user-a@a.example")
    return fetch_job_create(
        actor=admin_a,
        values=FetchValues(mailbox="user-a@a.example", protocol="imap", host="imap.example",
                           username="user-a", password="remote secret"),
    )  # fmt: skip


# --- sealing ---------------------------------------------------------------------------


def test_it_seals_and_unseals_a_roundtrip(old_key):
    token = sealing.seal("JBSWY3DPEHPK3PXP")
    assert "JBSWY3DPEHPK3PXP" not in token
    assert sealing.unseal(token) == "JBSWY3DPEHPK3PXP"
    assert sealing.seal("JBSWY3DPEHPK3PXP") != token  # randomised: equal secrets look unequal


def test_it_refuses_to_unseal_with_another_key_without_showing_either(old_key):
    token = sealing.seal("secret")
    old_key.MAILADMIN_SECRETS_KEYS = [NEW_KEY]
    with pytest.raises(sealing.UnsealError) as error:
        sealing.unseal(token)
    assert "cannot be decrypted with any key in MAILADMIN_SECRETS_KEY" in str(error.value)
    assert NEW_KEY not in str(error.value) and OLD_KEY not in str(error.value)


def test_it_stores_the_totp_secret_sealed(otp_user):
    stored = _stored(Principal, "totp_secret", otp_user.pk)
    assert stored != otp_user.plain_secret and otp_user.plain_secret not in stored
    assert sealing.unseal(stored) == otp_user.plain_secret
    assert Principal.objects.get(pk=otp_user.pk).totp_secret == otp_user.plain_secret


def test_it_stores_no_secret_as_the_empty_string(user_a):
    assert _stored(Principal, "totp_secret", user_a.pk) == ""
    assert Principal.objects.get(pk=user_a.pk).totp_secret == ""


def test_it_stores_the_dkim_private_key_sealed(dkim_key):
    stored = _stored(DkimKey, "private_key", dkim_key.pk)
    assert "PRIVATE KEY" not in stored and "MII" not in stored
    pem = DkimKey.objects.get(pk=dkim_key.pk).private_key
    assert pem.startswith("-----BEGIN PRIVATE KEY-----")
    assert sealing.unseal(stored) == pem


def test_it_names_the_column_it_cannot_open(otp_user, settings):
    settings.MAILADMIN_SECRETS_KEYS = [NEW_KEY]
    with pytest.raises(sealing.UnsealError, match=r"^accounts\.Principal\.totp_secret cannot"):
        Principal.objects.get(pk=otp_user.pk)


# --- rotation --------------------------------------------------------------------------


def test_it_stores_a_fetch_jobs_password_sealed(fetch_job):
    from apps.queue.models import FetchJob

    stored = _stored(FetchJob, "password", fetch_job.pk)
    assert "remote secret" not in stored and sealing.unseal(stored) == "remote secret"
    assert FetchJob.objects.get(pk=fetch_job.pk).password == "remote secret"


def test_it_rotates_to_a_new_key_and_the_old_key_is_no_longer_needed(
    otp_user, dkim_key, fetch_job, settings
):
    before = (
        _stored(Principal, "totp_secret", otp_user.pk),
        _stored(DkimKey, "private_key", dkim_key.pk),
    )
    settings.MAILADMIN_SECRETS_KEYS = [NEW_KEY, OLD_KEY]

    output = _rotate()

    assert "accounts.Principal.totp_secret: 1 re-sealed" in output
    assert "domains.DkimKey.private_key: 1 re-sealed" in output
    assert "queue.FetchJob.password: 1 re-sealed" in output
    assert "Every stored secret opens with the first key" in output
    after = (
        _stored(Principal, "totp_secret", otp_user.pk),
        _stored(DkimKey, "private_key", dkim_key.pk),
    )
    assert after[0] != before[0] and after[1] != before[1]
    settings.MAILADMIN_SECRETS_KEYS = [NEW_KEY]  # the old key is gone
    assert Principal.objects.get(pk=otp_user.pk).totp_secret == otp_user.plain_secret
    assert DkimKey.objects.get(pk=dkim_key.pk).private_key == dkim_key.private_key
    settings.MAILADMIN_SECRETS_KEYS = [OLD_KEY]  # ...and opens nothing any more
    with pytest.raises(sealing.UnsealError):
        DkimKey.objects.get(pk=dkim_key.pk)
    event = AuditEvent.objects.get(action="secrets.rotate")
    assert event.interface == "command"
    assert event.changes == {
        "keys": 2,
        "resealed": {
            "accounts.Principal.totp_secret": 1,
            "domains.DkimKey.private_key": 1,
            "queue.FetchJob.password": 1,
        },
    }


def test_it_leaves_updated_at_alone_when_rotating(otp_user, settings):
    updated_at = Principal.objects.get(pk=otp_user.pk).updated_at
    settings.MAILADMIN_SECRETS_KEYS = [NEW_KEY, OLD_KEY]
    _rotate()
    assert Principal.objects.get(pk=otp_user.pk).updated_at == updated_at


def test_it_signs_with_a_rotated_dkim_key_that_verifies_over_live_dns(
    dkim_key, settings, dns_server
):
    settings.MAILADMIN_SECRETS_KEYS = [NEW_KEY, OLD_KEY]
    _rotate()
    settings.MAILADMIN_SECRETS_KEYS = [NEW_KEY]
    key = DkimKey.objects.get(pk=dkim_key.pk)
    dns_server.set_zone(
        records.dkim_name("a.example", "s1"),
        {"TXT": [dkim.txt_record(key.algorithm, key.public_key)]},
    )
    message = corpus_file("messages", "ham", "spamassassin-t", "nice-016").read_bytes()

    signed = dkim.sign(message, domain="a.example", selector="s1", key=key) + message

    assert dkim.verify(signed, dnsfunc=_live_dnsfunc) is True


def test_it_logs_in_with_totp_after_rotation(client, otp_user, settings):
    settings.MAILADMIN_SECRETS_KEYS = [NEW_KEY, OLD_KEY]
    _rotate()
    settings.MAILADMIN_SECRETS_KEYS = [NEW_KEY]

    response = client.post("/login/", {"username": otp_user.name, "password": TEST_PASSWORD})
    assert response["Location"] == "/account/login/verify/"
    code = pyotp.TOTP(otp_user.plain_secret).now()
    response = client.post("/account/login/verify/", {"code": code})

    assert response["Location"] == "/"
    assert int(client.session["_auth_user_id"]) == otp_user.pk


def test_it_reports_rows_no_key_opens_and_leaves_them_alone(otp_user, settings):
    stored = _stored(Principal, "totp_secret", otp_user.pk)
    settings.MAILADMIN_SECRETS_KEYS = [NEW_KEY]  # the operator forgot the old key

    with pytest.raises(CommandError, match=r"No key in MAILADMIN_SECRETS_KEY opens these rows"):
        _rotate()

    assert _stored(Principal, "totp_secret", otp_user.pk) == stored


def test_it_checks_whether_an_older_key_is_still_needed(otp_user, dkim_key, settings):
    settings.MAILADMIN_SECRETS_KEYS = [NEW_KEY, OLD_KEY]
    with pytest.raises(CommandError, match=r"^2 stored secret\(s\) still need an older key"):
        _rotate("--check")
    _rotate()
    assert "the other keys are no longer needed" in _rotate("--check")


def test_it_generates_a_new_key():
    key = _rotate("--generate").strip()
    Fernet(key)  # a valid key
    assert key != _rotate("--generate").strip()


# --- the data migrations ---------------------------------------------------------------


def _migration(app_label: str, suffix: str):
    folder = ROOT / "apps" / app_label / "migrations"
    (name,) = [p.stem for p in folder.glob(f"*{suffix}.py")]
    return importlib.import_module(f"apps.{app_label}.migrations.{name}")


def test_the_migrations_seal_plain_rows_and_can_undo_it(user_a, dkim_key, old_key):
    pem = dkim_key.private_key
    _store_raw(Principal, "totp_secret", user_a.pk, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
    _store_raw(DkimKey, "private_key", dkim_key.pk, pem)  # as before the migration
    accounts = _migration("accounts", "seal_totp_secrets")
    domains = _migration("domains", "seal_dkim_private_keys")

    accounts.seal_plain_secrets(apps, None)
    domains.seal_plain_keys(apps, None)

    sealed = _stored(Principal, "totp_secret", user_a.pk)
    assert sealing.unseal(sealed) == "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    assert sealing.unseal(_stored(DkimKey, "private_key", dkim_key.pk)) == pem
    accounts.seal_plain_secrets(apps, None)  # again: sealed rows stay as they are
    assert _stored(Principal, "totp_secret", user_a.pk) == sealed

    accounts.unseal_secrets(apps, None)
    domains.unseal_keys(apps, None)
    assert _stored(Principal, "totp_secret", user_a.pk) == "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    assert _stored(DkimKey, "private_key", dkim_key.pk) == pem


# --- configuration ---------------------------------------------------------------------


def _settings_in_subprocess(tmp_path, **env: str) -> subprocess.CompletedProcess:
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("MAILADMIN_", "SECRET_KEY"))
    }
    environment.update(DJANGO_SETTINGS_MODULE="mailadmin.settings", MAILADMIN_VAR_DIR=str(tmp_path))
    environment.update(env)
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "print(len(settings.MAILADMIN_SECRETS_KEYS))"
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True
    )


def test_it_requires_the_key_in_production(tmp_path):
    result = _settings_in_subprocess(tmp_path, MAILADMIN_ENV="production", SECRET_KEY="x" * 50)
    assert result.returncode != 0
    assert (
        "MAILADMIN_SECRETS_KEY (or MAILADMIN_SECRETS_KEY_FILE) is required in production; "
        "make one with python -c 'from cryptography.fernet import Fernet; "
        "print(Fernet.generate_key().decode())'" in result.stderr
    )
    assert not (tmp_path / "secrets_key").exists()


def test_it_reads_the_keys_from_a_file_in_production(tmp_path):
    key_file = tmp_path / "keys"
    key_file.write_text(f"{NEW_KEY},{OLD_KEY}\n")
    result = _settings_in_subprocess(
        tmp_path,
        MAILADMIN_ENV="production",
        SECRET_KEY="x" * 50,
        MAILADMIN_SECRETS_KEY_FILE=str(key_file),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "2"


def test_it_refuses_a_malformed_key_without_echoing_it(tmp_path):
    result = _settings_in_subprocess(tmp_path, MAILADMIN_SECRETS_KEY=f"{NEW_KEY},not-a-key-42")
    assert result.returncode != 0
    assert "MAILADMIN_SECRETS_KEY: key 2 is not a Fernet key" in result.stderr
    assert "not-a-key-42" not in result.stderr


def test_it_generates_the_development_key_once(tmp_path):
    assert _settings_in_subprocess(tmp_path).returncode == 0
    key = (tmp_path / "secrets_key").read_text()
    Fernet(key)
    assert (tmp_path / "secrets_key").stat().st_mode & 0o777 == 0o600
    assert _settings_in_subprocess(tmp_path).returncode == 0
    assert (tmp_path / "secrets_key").read_text() == key
