"""Fixtures of the reports tests: domains in two tenants and an upload helper."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.conftest import corpus_file


@pytest.fixture
def make_domain(make_principal):
    """make_domain("c.example", tenant=t): a domain principal."""

    def make(name: str, *, tenant):
        return make_principal(tenant=tenant, roles=(), name=name, type="domain", password="")

    return make


@pytest.fixture
def domain_a(make_domain, tenant_a):
    """Tenant A's example.com: the domain most corpus reports are about."""
    return make_domain("example.com", tenant=tenant_a)


@pytest.fixture
def domain_b(make_domain, tenant_b):
    """Tenant B's stalw.art (the mail-auth reports' domain)."""
    return make_domain("stalw.art", tenant=tenant_b)


def corpus_bytes(rel: str) -> bytes:
    return corpus_file(*rel.split("/")).read_bytes()


@pytest.fixture
def upload() -> Callable:
    """upload(client, "dmarc-aggregate/...xml", ..., domain=None) -> response (multipart)."""

    def send(client, *files, domain: str | None = None):
        parts = []
        for item in files:
            if isinstance(item, tuple):
                name, data = item
            else:
                name, data = item.rsplit("/", 1)[-1], corpus_bytes(item)
            parts.append(SimpleUploadedFile(name, data, content_type="application/octet-stream"))
        url = "/api/reports/upload" + (f"?domain={domain}" if domain else "")
        return client.post(url, {"file": parts}, format="multipart")

    return send


class Steps:
    """Progress as a run reports it (what taskbase.RunContext receives), kept to look at."""

    def __init__(self) -> None:
        self.total = 0
        self.messages: list[str] = []

    def begin(self, total: int) -> None:
        self.total = total

    def step(self, done: int, message: str) -> None:
        self.messages.append(message)
