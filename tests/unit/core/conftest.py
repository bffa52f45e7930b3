"""Fixtures of the core tests: two tenants with one of everything (tests/support)."""

from __future__ import annotations

import pytest

from apps.queue import delivery
from tests.support.tenant_world import World, build


@pytest.fixture
def world_a(make_principal, tenant_a, admin_a, monkeypatch) -> World:
    monkeypatch.setattr(delivery, "wake", lambda domain_id=None: None)
    return build(tenant_a, admin_a, make_principal, "a")


@pytest.fixture
def world_b(make_principal, tenant_b, admin_b, world_a) -> World:
    return build(tenant_b, admin_b, make_principal, "b")
