"""Fixtures every layer uses: principals, API clients, a live SMTP sink, a live DNS server."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from tests.support.dns_server import DnsServer
from tests.support.hashers import hashings  # noqa: F401 - fixture: Argon2 hashes counted
from tests.support.smtp_listeners import (  # noqa: F401 - fixtures: our own SMTP listeners
    client_tls,
    start_listeners,
    tls_cert_file,
)
from tests.support.smtp_sink import SmtpSink

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
ROOT = Path(__file__).resolve().parents[1]
# Real third-party samples (reports, messages, DKIM material) live beside the repository.
CORPUS_DIR = Path(os.environ.get("MAILADMIN_CORPUS_DIR") or ROOT.parent / "shared" / "corpus")
TEST_PASSWORD = "correct horse battery staple"


def skip_or_fail(reason: str) -> None:
    """Skip a test whose service is missing locally; in CI a missing service is a failure."""
    if IN_CI:
        pytest.fail(f"{reason} (CI must run this test)")
    pytest.skip(reason)


def corpus_file(*parts: str) -> Path:
    """A file of the shared corpus; skips locally (fails in CI) when the corpus is absent."""
    path = CORPUS_DIR.joinpath(*parts)
    if not path.is_file():
        skip_or_fail(f"corpus file {path} missing (set MAILADMIN_CORPUS_DIR)")
    return path


@pytest.fixture(autouse=True, scope="session")
def _telemetry_flushed_by_tests() -> None:
    """No background flusher in the test process: a test that reads telemetry calls
    apps.telemetry.events.flush() itself (its thread would write outside the test's
    database transaction)."""
    from django.conf import settings

    settings.MAILADMIN_TELEMETRY_FLUSH_SECONDS = 0


# --- principals ------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings) -> None:
    """Argon2 at its lowest cost first; the rest of the real list (imported hashes) stays."""
    settings.PASSWORD_HASHERS = [
        "tests.support.hashers.FastArgon2PasswordHasher",
        *settings.PASSWORD_HASHERS,
    ]


@pytest.fixture(autouse=True)
def _blob_dir(settings, tmp_path_factory) -> Path:
    """Every test stores message blobs in a directory of its own, never under var/."""
    path = tmp_path_factory.mktemp("blobs")
    settings.MAILADMIN_BLOB_DIR = path
    return path


@pytest.fixture
def make_tenant(db) -> Callable:
    from apps.accounts.models import Principal, PrincipalType

    counter = iter(range(1, 10**6))

    def make(name: str | None = None, **fields):
        return Principal.objects.create(
            name=name or f"tenant{next(counter)}", type=PrincipalType.TENANT, **fields
        )

    return make


@pytest.fixture
def make_principal(db) -> Callable:
    """make_principal(tenant=t, roles=["tenant-admin"], type="individual", name=..., ...)"""
    from apps.accounts.models import Principal, PrincipalType
    from apps.accounts.principals.services import builtin_role

    counter = iter(range(1, 10**6))
    # Transactional tests flush the database, and with it the roles a migration seeded.
    for role in ("admin", "tenant-admin", "user"):
        Principal.objects.get_or_create(name=role, defaults={"type": PrincipalType.ROLE})

    def make(
        *,
        tenant=None,
        roles=("user",),
        name: str | None = None,
        password: str = TEST_PASSWORD,
        type: str = PrincipalType.INDIVIDUAL,
        **fields,
    ):
        principal = Principal.objects.create_user(
            name or f"user{next(counter)}", password, type=type, tenant=tenant, **fields
        )
        for role in roles:
            principal.roles.add(builtin_role(role))
        return principal

    return make


@pytest.fixture
def superadmin(make_principal):
    return make_principal(name="root", roles=["admin"], is_superuser=True)


@pytest.fixture
def tenant_a(make_tenant):
    return make_tenant("tenant-a")


@pytest.fixture
def tenant_b(make_tenant):
    return make_tenant("tenant-b")


@pytest.fixture
def admin_a(make_principal, tenant_a):
    """The owner: tenant A's admin."""
    return make_principal(name="admin-a", tenant=tenant_a, roles=["tenant-admin"])


@pytest.fixture
def user_a(make_principal, tenant_a):
    """A member: an ordinary account in tenant A."""
    return make_principal(name="user-a", tenant=tenant_a, roles=["user"])


@pytest.fixture
def admin_b(make_principal, tenant_b):
    """The outsider: tenant B's admin."""
    return make_principal(name="admin-b", tenant=tenant_b, roles=["tenant-admin"])


@pytest.fixture
def api_client_for(db) -> Callable[..., APIClient]:
    """api_client_for(principal) -> APIClient sending a real bearer token for it: an OAuth
    token as if asked for with the main password, so it may change credentials too."""
    from apps.accounts.auth.tokens import token_issue
    from apps.accounts.models import AccessToken

    def make(principal) -> APIClient:
        client = APIClient()
        _, secret = token_issue(
            principal=principal, kind=AccessToken.Kind.OAUTH, name="test", manages_credentials=True
        )
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
        return client

    return make


@pytest.fixture
def api_a(api_client_for, admin_a) -> APIClient:
    """Tenant A's owner over the API."""
    return api_client_for(admin_a)


@pytest.fixture
def api_b(api_client_for, admin_b) -> APIClient:
    """Tenant B's admin (the outsider) over the API."""
    return api_client_for(admin_b)


@pytest.fixture
def api_root(api_client_for, superadmin) -> APIClient:
    return api_client_for(superadmin)


@pytest.fixture
def anon_api() -> APIClient:
    return APIClient()


# --- network peers on loopback ---------------------------------------------------------


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink().start()
    try:
        yield sink
    finally:
        sink.stop()


@pytest.fixture
def dns_server(settings) -> Iterator[DnsServer]:
    """A DNS server on loopback; MAILADMIN_DNS_NAMESERVERS points at it for the test."""
    server = DnsServer().start()
    settings.MAILADMIN_DNS_NAMESERVERS = [("127.0.0.1", server.port)]
    settings.MAILADMIN_DNS_TIMEOUT = 2.0
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _no_real_dns(settings) -> None:
    """No test reaches a real resolver: without dns_server, queries go to a closed port."""
    settings.MAILADMIN_DNS_NAMESERVERS = [("127.0.0.1", 9)]
    settings.MAILADMIN_DNS_TIMEOUT = 1.0
