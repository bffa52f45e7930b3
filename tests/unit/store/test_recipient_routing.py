"""Recipient resolution through domain aliases, catch-all addresses and mailbox forwarding
(set up through the mailbox services, as the console and the provisioning API do)."""

from __future__ import annotations

import pytest

from apps.domains import mailbox_services
from apps.store import recipients
from apps.store.models import Message
from apps.store.recipients import Resolution
from tests.unit.store.conftest import message

pytestmark = pytest.mark.django_db

VALUES = {"display_name": "Jane", "password": "Secret123!@#", "size": 100}


@pytest.fixture
def jane(admin_a, domain_a):
    return mailbox_services.mailbox_create(
        actor=admin_a, domain=domain_a, name="jane", values=dict(VALUES)
    ).principal


def test_an_address_at_an_alias_reaches_the_same_local_part_at_the_domain(admin_a, domain_a, jane):
    mailbox_services.domain_alias_create(actor=admin_a, domain=domain_a, alias="Bücher.Example")
    resolution = recipients.resolve("JANE@bücher.example")
    assert resolution == Resolution(
        address="jane@xn--bcher-kva.example", known=True, mailboxes=[jane], forward_to=[]
    )
    # A hosted alias, but nobody at the domain: unknown (550), not relay denied.
    assert recipients.resolve("nobody@xn--bcher-kva.example") == Resolution(
        address="nobody@xn--bcher-kva.example", known=False
    )
    # An alias of another tenant's domain is not a name of this one.
    assert recipients.resolve("jane@elsewhere.example") is None


def test_mail_to_an_alias_is_stored_in_the_mailbox(admin_a, domain_a, jane):
    mailbox_services.domain_alias_create(actor=admin_a, domain=domain_a, alias="alias.example")
    stored = recipients.deliver_to_address("jane@alias.example", message())
    assert [m.principal_id for m in stored] == [jane.pk]
    assert Message.objects.filter(principal=jane).count() == 1


def test_an_unknown_address_goes_to_the_catch_all(admin_a, domain_a, jane, make_mailbox):
    bob = make_mailbox("bob")
    assert not recipients.resolve("whoever@a.example").known
    mailbox_services.catch_all_set(actor=admin_a, domain=domain_a, target="jane@a.example")
    assert recipients.resolve("whoever@a.example").mailboxes == [jane]
    # An address someone has is theirs, not the catch-all's.
    assert recipients.resolve("bob@a.example").mailboxes == [bob]
    # A disabled owner keeps its address: unknown, not caught.
    mailbox_services.catch_all_set(actor=admin_a, domain=domain_a, target="")
    assert not recipients.resolve("whoever@a.example").known


def test_a_disabled_owner_does_not_fall_through_to_the_catch_all(
    admin_a, domain_a, jane, make_mailbox
):
    bob = make_mailbox("bob", is_active=False)
    mailbox_services.catch_all_set(actor=admin_a, domain=domain_a, target="jane@a.example")
    assert recipients.resolve("bob@a.example") == Resolution(address="bob@a.example", known=False)
    assert bob.pk  # still there


def test_the_catch_all_works_through_an_alias(admin_a, domain_a, jane):
    mailbox_services.domain_alias_create(actor=admin_a, domain=domain_a, alias="alias.example")
    mailbox_services.catch_all_set(actor=admin_a, domain=domain_a, target="jane@a.example")
    assert recipients.resolve("anything@alias.example").mailboxes == [jane]


def test_a_list_member_that_forwards_forwards_too(admin_a, domain_a, jane, make_principal):
    from apps.accounts.models import PrincipalEmail

    staff = make_principal(tenant=admin_a.tenant, roles=(), name="staff", type="list", password="")
    PrincipalEmail.objects.create(principal=staff, address="staff@a.example")
    jane.member_of.add(staff)
    mailbox_services.mailbox_update(
        actor=admin_a, mailbox=jane.mailbox_profile, values={"forwarding_address": "j@h.example"}
    )
    resolution = recipients.resolve("staff@a.example")
    assert resolution.mailboxes == [jane]
    assert resolution.forward_to == ["j@h.example"]


def test_a_forwarding_mailbox_keeps_its_copy_and_forwards(admin_a, domain_a, jane):
    profile = jane.mailbox_profile
    mailbox_services.mailbox_update(
        actor=admin_a, mailbox=profile, values={"forwarding_address": "Jane@Home.Example"}
    )
    resolution = recipients.resolve("jane@a.example")
    assert resolution.mailboxes == [jane]
    assert resolution.forward_to == ["jane@home.example"]
    mailbox_services.mailbox_update(
        actor=admin_a, mailbox=profile, values={"forwarding_address": ""}
    )
    assert recipients.resolve("jane@a.example").forward_to == []


def test_resolving_costs_a_fixed_number_of_queries(
    admin_a, domain_a, jane, django_assert_max_num_queries
):
    mailbox_services.domain_alias_create(actor=admin_a, domain=domain_a, alias="alias.example")
    mailbox_services.catch_all_set(actor=admin_a, domain=domain_a, target="jane@a.example")
    # domain (miss), alias, address (miss), catch-all with its target and profile
    with django_assert_max_num_queries(4):
        assert recipients.resolve("x@alias.example").known
