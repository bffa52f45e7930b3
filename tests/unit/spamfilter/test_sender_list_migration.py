"""Migration 0005: IP list entries stored as IPv4-mapped IPv6 before such text was stored as
the IPv4 it names (the scan sees such a peer as IPv4: they never matched) become that
IPv4 entry; one the mailbox already has absorbs its twin; others are left as they are."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from apps.accounts.models import Principal

BEFORE = [("spamfilter", "0004_quarantine")]


@pytest.mark.django_db(transaction=True)
def test_ipv4_mapped_entries_become_the_ipv4_they_name():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old_apps = executor.loader.project_state(BEFORE).apps
    Entry = old_apps.get_model("spamfilter", "SenderListEntry")
    jane = Principal.objects.create(name="jane", type="individual")  # accounts is current
    rows = {
        ("ipblacklist", "::ffff:102:304"): "1.2.3.4",
        ("ipblacklist", "::ffff:1.2.3.0/120"): "1.2.3.0/24",
        ("ipsafelist", "::FFFF:5.6.7.8"): None,  # its twin 5.6.7.8 is already there
        ("ipsafelist", "5.6.7.8"): "5.6.7.8",
        ("ipsafelist", "2001:db8::/32"): "2001:db8::/32",
        ("ipblacklist", "::ffff:0:0/95"): "::ffff:0:0/95",  # wider than the mapped range
        ("blacklist", "::ffff:spam.example"): "::ffff:spam.example",  # not an IP list
    }
    for list_name, value in rows:
        Entry.objects.create(mailbox_id=jane.pk, list=list_name, value=value)

    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    executor.migrate(latest)
    new_apps = executor.loader.project_state(latest).apps
    stored = new_apps.get_model("spamfilter", "SenderListEntry").objects.values_list(
        "list", "value"
    )
    assert sorted(stored) == sorted(
        (list_name, value) for (list_name, _), value in rows.items() if value is not None
    )
