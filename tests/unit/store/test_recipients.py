"""Recipient resolution: hosted or not, known or not, lists and groups expanded."""

from __future__ import annotations

import pytest

from apps.store import recipients, services
from apps.store.models import Message
from apps.store.recipients import Resolution
from apps.store.services import QuotaExceeded
from tests.unit.store.conftest import message


@pytest.fixture
def make_list(make_principal, tenant_a):
    from apps.accounts.models import PrincipalEmail

    def make(name: str, *members, type: str = "list", address: bool = True, **fields):
        principal = make_principal(
            tenant=tenant_a, roles=(), name=name, type=type, password="", **fields
        )
        if address:
            PrincipalEmail.objects.create(principal=principal, address=f"{name}@a.example")
        for member in members:
            member.member_of.add(principal)
        return principal

    return make


def test_it_returns_none_for_a_domain_not_hosted(make_mailbox):
    make_mailbox("jane")
    assert recipients.resolve("jane@elsewhere.example") is None
    assert recipients.resolve("not an address") is None
    assert recipients.resolve("") is None


def test_it_knows_a_hosted_domain_without_such_a_recipient(domain_a):
    assert recipients.resolve("nobody@a.example") == Resolution(
        address="nobody@a.example", known=False
    )


def test_it_resolves_an_account_by_any_of_its_addresses_in_any_case(make_mailbox):
    from apps.accounts.models import PrincipalEmail

    jane = make_mailbox("jane")
    PrincipalEmail.objects.create(principal=jane, address="j.doe@a.example", position=1)

    for address in ("jane@a.example", "Jane@A.Example", " j.doe@a.example "):
        resolution = recipients.resolve(address)
        assert resolution.known
        assert resolution.mailboxes == [jane]
        assert resolution.forward_to == []
    assert recipients.resolve("J.Doe@a.example").address == "j.doe@a.example"


def test_it_normalizes_unicode_domains(make_principal, tenant_a):
    from apps.accounts.models import PrincipalEmail

    make_principal(tenant=tenant_a, roles=(), name="xn--bcher-kva.example", type="domain")
    box = make_principal(tenant=tenant_a, roles=(), name="buecher", password="")
    PrincipalEmail.objects.create(principal=box, address="info@xn--bcher-kva.example")

    assert recipients.resolve("Info@Bücher.example").mailboxes == [box]


def test_it_refuses_a_disabled_account(make_mailbox):
    make_mailbox("gone", is_active=False)
    assert recipients.resolve("gone@a.example").known is False


def test_it_expands_a_list_to_members_and_external_members(make_mailbox, make_list):
    jane, john = make_mailbox("jane"), make_mailbox("john")
    disabled = make_mailbox("old", is_active=False)
    make_list(
        "team",
        jane,
        john,
        disabled,
        external_members=["Partner@Remote.example", "not-an-address", "partner@remote.example"],
    )

    resolution = recipients.resolve("team@a.example")

    assert resolution.known
    assert sorted(p.name for p in resolution.mailboxes) == [jane.name, john.name]
    assert resolution.forward_to == ["partner@remote.example"]


def test_it_expands_nested_groups_once_per_member(make_mailbox, make_list):
    jane, john, ann = make_mailbox("jane"), make_mailbox("john"), make_mailbox("ann")
    inner = make_list("inner", jane, ann, type="group", address=False)
    make_list("outer", inner, jane, john, type="group")

    resolution = recipients.resolve("outer@a.example")

    assert sorted(p.name for p in resolution.mailboxes) == sorted([jane.name, john.name, ann.name])


def test_it_stops_at_a_cycle(make_mailbox, make_list):
    jane = make_mailbox("jane")
    first = make_list("first", jane)
    second = make_list("second", first)
    first.member_of.add(second)  # first ⊂ second ⊂ first

    assert recipients.resolve("first@a.example").mailboxes == [jane]
    assert recipients.resolve("second@a.example").mailboxes == [jane]


def test_it_bounds_the_depth(make_mailbox, make_list, monkeypatch):
    monkeypatch.setattr(recipients, "MAX_EXPANSION_DEPTH", 3)
    shallow, deep = make_mailbox("shallow"), make_mailbox("deep")
    chain = make_list("l5", deep, type="group", address=False)
    for depth in (4, 3, 2):
        chain = make_list(f"l{depth}", chain, type="group", address=False)
    make_list("l1", chain, shallow)

    assert recipients.resolve("l1@a.example").mailboxes == [shallow]


def test_it_skips_disabled_lists_inside_lists(make_mailbox, make_list):
    jane, john = make_mailbox("jane"), make_mailbox("john")
    hidden = make_list("hidden", john, address=False, is_active=False)
    make_list("team", jane, hidden)

    assert recipients.resolve("team@a.example").mailboxes == [jane]


def test_it_takes_constant_queries_for_a_deep_list(
    make_mailbox, make_list, django_assert_max_num_queries
):
    members = [make_mailbox(f"m{i}") for i in range(30)]
    inner = make_list("inner", *members[10:], type="group", address=False)
    make_list("big", *members[:10], inner)

    with django_assert_max_num_queries(4):
        resolution = recipients.resolve("big@a.example")
    assert len(resolution.mailboxes) == 30


def test_it_delivers_a_copy_to_each_mailbox(make_mailbox, make_list):
    jane, john = make_mailbox("jane"), make_mailbox("john")
    make_list("team", jane, john)

    stored = recipients.deliver_to_address("team@a.example", message())

    assert sorted(m.principal.name for m in stored) == sorted([jane.name, john.name])
    assert {m.folder.name for m in stored} == {"INBOX"}
    assert len({m.blob_hash for m in stored}) == 1


def test_it_skips_a_full_mailbox_but_delivers_to_the_rest(make_mailbox, make_list):
    jane, full = make_mailbox("jane"), make_mailbox("full", quota=10)
    make_list("team", jane, full)

    stored = recipients.deliver_to_address("team@a.example", message())

    assert [m.principal for m in stored] == [jane]
    assert not Message.objects.filter(principal=full).exists()


def test_it_raises_quota_exceeded_when_no_mailbox_has_room(make_mailbox):
    full = make_mailbox("full", quota=100)
    services.deliver(full, b"x" * 90)

    with pytest.raises(QuotaExceeded, match="over quota: full-a.example"):
        recipients.deliver_to_address("full@a.example", message())
    assert Message.objects.filter(principal=full).count() == 1


def test_it_raises_for_unknown_and_unhosted_addresses(domain_a):
    with pytest.raises(recipients.UnknownRecipient):
        recipients.deliver_to_address("nobody@a.example", message())
    with pytest.raises(recipients.UnknownRecipient):
        recipients.deliver_to_address("x@elsewhere.example", message())


def test_it_stores_one_copy_per_mailbox_for_several_recipients(make_mailbox, make_list):
    jane, john = make_mailbox("jane"), make_mailbox("john")
    make_list("team", jane, john)
    mailboxes = [
        *recipients.resolve("jane@a.example").mailboxes,
        *recipients.resolve("team@a.example").mailboxes,
    ]

    stored, full = recipients.deliver_to_mailboxes(mailboxes, message(), folder="Junk")

    assert sorted(m.principal.name for m in stored) == sorted([jane.name, john.name])
    assert {m.folder.name for m in stored} == {"Junk"}
    assert full == []


def test_it_says_which_mailboxes_were_full(make_mailbox):
    jane, full = make_mailbox("jane"), make_mailbox("full", quota=10)

    stored, skipped = recipients.deliver_to_mailboxes([jane, full], message())

    assert [m.principal for m in stored] == [jane]
    assert skipped == [full]


def test_it_treats_an_address_of_a_non_mailbox_as_unknown(make_principal, tenant_a, domain_a):
    from apps.accounts.models import PrincipalEmail

    role = make_principal(tenant=tenant_a, roles=(), type="role", name="helpdesk", password="")
    PrincipalEmail.objects.create(principal=role, address="helpdesk@a.example")

    assert recipients.resolve("helpdesk@a.example").known is False


def test_it_checks_the_quota_of_many_mailboxes_in_one_query(
    make_mailbox, django_assert_num_queries
):
    boxes = [make_mailbox(f"m{i}", quota=1000) for i in range(10)]
    services.deliver(boxes[3], b"x" * 950)

    with django_assert_num_queries(1):
        used = services.used_bytes_by_principal(boxes)

    assert used[boxes[3].pk] == 950
    assert sum(used.values()) == 950
    stored, full = recipients.deliver_to_mailboxes(boxes, message())
    assert full == [boxes[3]]
    assert len(stored) == 9
