"""Mailboxes in a hosted domain of tenant A (and one of tenant B) for the store tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest


@pytest.fixture
def domain_a(make_principal, tenant_a):
    return make_principal(tenant=tenant_a, roles=(), name="a.example", type="domain", password="")


@pytest.fixture
def domain_b(make_principal, tenant_b):
    return make_principal(tenant=tenant_b, roles=(), name="b.example", type="domain", password="")


@pytest.fixture
def make_mailbox(make_principal, tenant_a, domain_a) -> Callable:
    """make_mailbox("jane", quota=0, type="individual", tenant=tenant_a, domain="a.example")"""
    from apps.accounts.models import PrincipalEmail

    def make(local: str, *, domain: str = "a.example", tenant=None, **fields):
        principal = make_principal(
            tenant=tenant or tenant_a, roles=(), name=f"{local}-{domain}", password="", **fields
        )
        PrincipalEmail.objects.create(principal=principal, address=f"{local}@{domain}")
        return principal

    return make


def message(subject: str = "Hello", body: str = "Hi there.\r\n", **headers: str) -> bytes:
    lines = [
        "From: Sender Person <sender@remote.example>",
        "To: jane@a.example",
        f"Subject: {subject}",
        "Date: Mon, 30 Nov 2026 10:00:00 +0100",
        "Message-ID: <m1@remote.example>",
    ]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()
