"""Migration 0005: keys that had is_active get a life-cycle state (the newest active key
per domain and algorithm keeps signing, other active ones retire; inactive ones were no
longer published: retired)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from apps.accounts.models import Principal

BEFORE = [("domains", "0003_seal_dkim_private_keys")]


@pytest.mark.django_db(transaction=True)
def test_it_turns_flags_into_states():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old_apps = executor.loader.project_state(BEFORE).apps
    DkimKey = old_apps.get_model("domains", "DkimKey")
    domain = Principal.objects.create(name="m.example", type="domain")  # accounts is current
    now = timezone.now()

    def key(selector, algorithm, active, age):
        return DkimKey.objects.create(
            domain_id=domain.pk,
            selector=selector,
            algorithm=algorithm,
            private_key="",
            public_key="x",
            is_active=active,
            created_at=now - timedelta(days=age),
        ).pk

    older = key("r1", "rsa", True, 30)
    newer = key("r2", "rsa", True, 1)
    ed = key("e1", "ed25519", True, 5)
    off = key("r0", "rsa", False, 60)

    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()  # back to every app's latest (0005 and any
    executor.migrate(latest)  # sibling that rolling back to 0003 undid), for later tests
    new_apps = executor.loader.project_state(latest).apps
    states = dict(new_apps.get_model("domains", "DkimKey").objects.values_list("pk", "state"))
    assert states == {older: "retiring", newer: "active", ed: "active", off: "retired"}
