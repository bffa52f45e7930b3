"""Local delivery: standard folders, UIDs, blobs, flags, parsed headers and quota."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from apps.store import blobs, services
from apps.store.models import Folder, Message
from mailadmin.errors import ValidationFailed
from tests.unit.store.conftest import message


def test_it_creates_the_standard_folders_on_first_delivery(make_mailbox):
    jane = make_mailbox("jane")
    assert not Folder.objects.filter(principal=jane).exists()

    services.deliver(jane, message())

    folders = {f.name: f for f in Folder.objects.filter(principal=jane)}
    assert set(folders) == {"INBOX", "Junk", "Sent", "Trash"}
    assert {f.special_use for f in folders.values()} == {"inbox", "junk", "sent", "trash"}
    assert all(0 < f.uidvalidity < 2**32 for f in folders.values())
    assert folders["INBOX"].uidnext == 2
    assert folders["Junk"].uidnext == 1


def test_it_keeps_uidvalidity_across_deliveries(make_mailbox):
    jane = make_mailbox("jane")
    services.deliver(jane, message())
    before = Folder.objects.get(principal=jane, name="INBOX").uidvalidity

    services.deliver(jane, message("second"))

    assert Folder.objects.get(principal=jane, name="INBOX").uidvalidity == before


def test_it_assigns_ascending_uids_per_folder(make_mailbox):
    jane = make_mailbox("jane")

    inbox = [services.deliver(jane, message(f"m{i}")).uid for i in range(3)]
    junk = [services.deliver(jane, message(f"j{i}"), folder="Junk").uid for i in range(2)]

    assert inbox == [1, 2, 3]
    assert junk == [1, 2]


def test_it_takes_the_uid_from_the_database_not_from_a_stale_row(make_mailbox):
    """The conditional update increments in SQL: a delivery holding an old copy of the
    folder (as a concurrent one would) still gets the next UID, never a used one."""
    jane = make_mailbox("jane")
    services.deliver(jane, message())
    stale = Folder.objects.get(principal=jane, name="INBOX")
    Folder.objects.filter(pk=stale.pk).update(uidnext=41)  # another delivery moved on

    assert services._next_uid(stale.pk) == 41
    assert services._next_uid(stale.pk) == 42
    assert stale.uidnext == 2
    assert Folder.objects.get(pk=stale.pk).uidnext == 43


def test_it_stores_the_bytes_as_a_blob_once_for_two_mailboxes(make_mailbox, _blob_dir):
    jane, john = make_mailbox("jane"), make_mailbox("john")
    data = message()

    first = services.deliver(jane, data)
    second = services.deliver(john, data)

    assert first.blob_hash == second.blob_hash
    assert blobs.read(first.blob_hash) == data
    assert first.size == len(data)
    assert len([p for p in _blob_dir.rglob("*") if p.is_file()]) == 1


def test_it_parses_the_list_fields():
    from apps.store.headers import parse_summary

    summary = parse_summary(
        message("=?utf-8?q?Gr=C3=BC=C3=9Fe?=", From="=?utf-8?b?SsO2cmc=?= <jorg@x.example>")
    )
    # The second From header is ignored: the first one counts.
    assert summary.from_name == "Sender Person"
    assert summary.from_address == "sender@remote.example"
    assert summary.subject == "Grüße"
    assert summary.date == datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    assert summary.message_id == "<m1@remote.example>"


def test_it_records_flags_and_fields(make_mailbox):
    jane = make_mailbox("jane")

    stored = services.deliver(jane, message("Hi"), folder="inbox", flags=["\\Seen", "$Junk"])

    stored.refresh_from_db()
    assert stored.folder.name == "INBOX"
    assert stored.principal == jane
    assert stored.flags == ["\\Seen", "$Junk"]
    assert stored.subject == "Hi"
    assert stored.from_address == "sender@remote.example"
    assert stored.date == datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize("flags", ["\\Seen", ["bad flag"], ["\\Seen\r\nX"], [1]])
def test_it_refuses_bad_flags(make_mailbox, flags):
    jane = make_mailbox("jane")
    with pytest.raises(ValidationFailed):
        services.deliver(jane, message(), flags=flags)
    assert not Message.objects.exists()


def test_it_refuses_an_unknown_folder_and_a_non_mailbox(make_mailbox, make_principal, tenant_a):
    jane = make_mailbox("jane")
    with pytest.raises(ValidationFailed, match="no folder named 'Archive'"):
        services.deliver(jane, message(), folder="Archive")

    group = make_principal(tenant=tenant_a, roles=(), type="group", password="")
    with pytest.raises(ValidationFailed, match="is not a mailbox"):
        services.deliver(group, message())
    assert not Message.objects.exists()


def test_it_sums_used_bytes_and_checks_quota(make_mailbox):
    jane = make_mailbox("jane", quota=1000)
    unlimited = make_mailbox("john")
    assert services.used_bytes(jane) == 0

    services.deliver(jane, b"x" * 600)
    services.deliver(jane, b"y" * 300, folder="Trash")
    services.deliver(unlimited, b"z" * 5000)

    assert services.used_bytes(jane) == 900
    assert not services.quota_exceeded(jane, 100)
    assert services.quota_exceeded(jane, 101)
    assert not services.quota_exceeded(unlimited, 10**12)
