"""The mailbox services on their own: the principal rules they reuse, the rules they add,
aliases and catch-alls, tenant isolation and audit."""

from __future__ import annotations

import pytest

from apps.accounts.models import Principal
from apps.domains import mailbox_fields, mailbox_selectors, mailbox_services
from apps.domains.models import CatchAll, DomainAlias, MailboxProfile
from mailadmin.core.models import AuditEvent
from mailadmin.errors import NotFound, PermissionDenied, ServiceError

pytestmark = pytest.mark.django_db

VALUES = {"display_name": "Jane Doe", "password": "Secret123!@#", "size": 100}


def _create(actor, domain, name="jane", **changes):
    return mailbox_services.mailbox_create(
        actor=actor, domain=domain, name=name, values={**VALUES, **changes}
    )


def test_the_mailbox_is_the_principal_and_the_profile_goes_with_it(admin_a, domain_a):
    mailbox = _create(admin_a, domain_a)
    principal = mailbox.principal
    assert (principal.name, principal.type, principal.tenant_id) == (
        "jane@a.example",
        "individual",
        domain_a.tenant_id,
    )
    mailbox_services.mailbox_delete(actor=admin_a, mailbox=mailbox)
    assert not MailboxProfile.objects.exists()
    assert not Principal.objects.filter(pk=principal.pk).exists()


def test_the_principal_name_rule_decides_the_user_name(admin_a, domain_a):
    for bad in ("jane doe", "12345", "jane+tag", "", "a" * 65, "x@y"):
        with pytest.raises(ServiceError) as refused:
            _create(admin_a, domain_a, name=bad)
        assert refused.value.message == "Invalid user name", bad


def test_a_tenant_quota_refusal_names_the_size(admin_a, domain_a, tenant_a):
    tenant_a.quota = 50 * 1024**2
    tenant_a.save()
    with pytest.raises(ServiceError) as refused:
        _create(admin_a, domain_a, size=100)
    assert refused.value.field == "size"
    assert "quota of tenant tenant-a" in refused.value.message


def test_the_tenant_account_limit_applies(admin_a, domain_a, tenant_a):
    tenant_a.max_accounts = Principal.objects.filter(tenant=tenant_a, type="individual").count()
    tenant_a.save()
    with pytest.raises(ServiceError, match="limit of"):
        _create(admin_a, domain_a)


def test_a_common_password_is_refused_by_the_principal_rules(admin_a, domain_a):
    with pytest.raises(ServiceError) as refused:
        _create(admin_a, domain_a, password="password")
    assert refused.value.field == "password"
    assert refused.value.message.startswith("Invalid password: ")


def test_another_tenants_domain_is_not_found(admin_b, domain_a):
    with pytest.raises(NotFound):
        _create(admin_b, domain_a)


def test_another_tenants_mailbox_is_not_found(admin_a, admin_b, domain_a):
    mailbox = _create(admin_a, domain_a)
    with pytest.raises(NotFound):
        mailbox_services.mailbox_update(actor=admin_b, mailbox=mailbox, values={"city": "X"})
    with pytest.raises(NotFound):
        mailbox_services.mailbox_delete(actor=admin_b, mailbox=mailbox)
    assert not mailbox_selectors.mailboxes_visible(admin_b).exists()


def test_a_user_may_not_create_mailboxes(user_a, domain_a):
    with pytest.raises(PermissionDenied):
        _create(user_a, domain_a)


def test_every_change_is_audited(admin_a, domain_a):
    mailbox = _create(admin_a, domain_a)
    mailbox_services.mailbox_update(
        actor=admin_a, mailbox=mailbox, values={"city": "Oslo", "enabled": False}
    )
    events = list(AuditEvent.objects.order_by("id").values_list("action", "changes"))
    assert events[-2] == ("principal.update", {"enabled": {"from": True, "to": False}})
    assert events[-1] == ("mailbox.update", {"city": {"from": "", "to": "Oslo"}})


def test_an_admin_cannot_disable_their_own_account(admin_a):
    with pytest.raises(ServiceError, match="your own account"):
        mailbox_services._set_enabled(admin_a, admin_a, False)


def test_the_parser_keeps_the_spec_order_of_refusals():
    with pytest.raises(ServiceError, match="Unrecognized field: x"):
        mailbox_fields.parse({"x": "1"}, creating=True)
    with pytest.raises(ServiceError, match="Missing required field: password"):
        mailbox_fields.parse({"displayName": "A", "size": "1"}, creating=True)
    assert mailbox_fields.parse({"size": " 12 ", "isHidden": "TRUE"}, creating=False) == {
        "size": 12,
        "is_hidden": True,
    }
    with pytest.raises(ServiceError, match="Invalid format for isHidden, input must be true"):
        mailbox_fields.parse({"isHidden": "yes"}, creating=False)
    with pytest.raises(ServiceError, match="positive integer"):
        mailbox_fields.parse({"size": "0"}, creating=False)


# --- aliases and catch-all ----------------------------------------------------------------


def test_an_alias_is_a_name_of_its_own(admin_a, domain_a, domain_b):
    alias = mailbox_services.domain_alias_create(
        actor=admin_a, domain=domain_a, alias="Bücher.Example"
    )
    assert (alias.alias, alias.tenant_id) == ("xn--bcher-kva.example", domain_a.tenant_id)
    for name, message in [
        ("a.example", "A domain can't be an alias of itself."),
        ("b.example", "registered here"),
        ("xn--bcher-kva.example", "already an alias"),
        ("not a domain", "not a valid domain name"),
    ]:
        with pytest.raises(ServiceError, match=message):
            mailbox_services.domain_alias_create(actor=admin_a, domain=domain_a, alias=name)


def test_aliases_and_catch_alls_stay_in_their_tenant(admin_a, admin_b, domain_a, domain_b):
    alias = mailbox_services.domain_alias_create(actor=admin_a, domain=domain_a, alias="x.example")
    with pytest.raises(NotFound):
        mailbox_services.domain_alias_delete(actor=admin_b, alias=alias)
    with pytest.raises(NotFound):
        mailbox_services.domain_alias_create(actor=admin_b, domain=domain_a, alias="y.example")
    with pytest.raises(NotFound):
        mailbox_services.catch_all_set(actor=admin_b, domain=domain_a, target="")
    assert not mailbox_selectors.domain_aliases_visible(admin_b).exists()
    assert DomainAlias.objects.count() == 1


def test_a_catch_all_goes_to_an_address_of_the_same_tenant(admin_a, domain_a, domain_b, admin_b):
    jane = _create(admin_a, domain_a)
    _create(admin_b, domain_b, name="bob")
    row = mailbox_services.catch_all_set(actor=admin_a, domain=domain_a, target="JANE@a.example")
    assert row.target == jane.principal
    with pytest.raises(ServiceError, match="No account of this tenant"):
        mailbox_services.catch_all_set(actor=admin_a, domain=domain_a, target="bob@b.example")
    # Deleting the target deletes the catch-all with it.
    mailbox_services.mailbox_delete(actor=admin_a, mailbox=jane)
    assert not CatchAll.objects.exists()


def test_a_superadmin_provisions_the_servers_own_domain(superadmin, make_principal, api_root):
    own = make_principal(tenant=None, roles=(), name="own.example", type="domain", password="")
    response = api_root.post(
        "/api/customers/-/domains/own.example/mailboxes/postmaster",
        {"displayName": "Postmaster", "password": "Secret123!@#", "size": "10"},
    )
    assert response.status_code == 200, response.content
    mailbox = MailboxProfile.objects.get(domain=own)
    assert mailbox.tenant_id is None and mailbox.principal.tenant_id is None


def test_a_domain_cannot_be_registered_under_an_alias_name(api_a, admin_a, domain_a):
    mailbox_services.domain_alias_create(actor=admin_a, domain=domain_a, alias="x.example")
    response = api_a.post("/api/domains", {"name": "X.example"}, format="json")
    assert response.status_code == 400
    assert response.json()["detail"] == (
        "The domain x.example is an alias of a.example; remove the alias first."
    )


def _rename(actor, mailbox, name, *more):
    from apps.accounts.principals.services import principal_update

    operations = [{"action": "set", "field": "name", "value": name}, *more]
    return principal_update(actor=actor, principal=mailbox.principal, operations=operations)


def test_a_rename_through_the_accounts_api_renames_the_mailbox(admin_a, domain_a):
    mailbox = _create(admin_a, domain_a)
    _rename(admin_a, mailbox, "joan@a.example")
    mailbox.refresh_from_db()
    assert mailbox.name == "joan"
    assert list(mailbox.principal.emails.values_list("address", flat=True)) == ["joan@a.example"]
    found = mailbox_selectors.mailboxes_visible(admin_a).filter(domain=domain_a, name="joan")
    assert list(found) == [mailbox]
    assert not mailbox_selectors.mailboxes_visible(admin_a).filter(name="jane").exists()


def test_a_rename_that_also_sets_the_addresses_keeps_them(admin_a, domain_a):
    mailbox = _create(admin_a, domain_a)
    kept = ["jane@a.example", "j@a.example"]
    _rename(admin_a, mailbox, "joan@a.example", {"action": "set", "field": "emails", "value": kept})
    mailbox.refresh_from_db()
    assert mailbox.name == "joan"
    assert list(mailbox.principal.emails.values_list("address", flat=True)) == kept


def test_a_mailbox_cannot_be_renamed_off_its_domain(admin_a, domain_a):
    mailbox = _create(admin_a, domain_a)
    for name in ("joan@elsewhere.example", "joan"):
        with pytest.raises(ServiceError) as refused:
            _rename(admin_a, mailbox, name)
        assert refused.value.message == (
            "jane@a.example is a mailbox of a.example: its name must stay an address @a.example."
        )
    mailbox.refresh_from_db()
    assert (mailbox.name, mailbox.principal.name) == ("jane", "jane@a.example")


def test_a_rename_onto_an_address_in_use_changes_nothing(admin_a, domain_a):
    _create(admin_a, domain_a, name="joan")
    mailbox = _create(admin_a, domain_a)
    with pytest.raises(ServiceError, match="already taken"):
        _rename(admin_a, mailbox, "joan@a.example")
    mailbox.refresh_from_db()
    assert mailbox.name == "jane"


def test_a_rename_onto_a_stale_mailbox_name_is_refused_not_a_500(admin_a, domain_a):
    # Renamed before profiles followed renames: its profile still says "jane".
    stale = _create(admin_a, domain_a)
    Principal.objects.filter(pk=stale.principal_id).update(name="joan@a.example")
    stale.principal.emails.update(address="joan@a.example")
    other = _create(admin_a, domain_a, name="max")
    with pytest.raises(ServiceError) as refused:
        _rename(admin_a, other, "jane@a.example")
    assert refused.value.message == "The name 'jane@a.example' is already taken."
    other.refresh_from_db()
    assert (other.name, other.principal.name) == ("max", "max@a.example")


# --- services that take a mailbox check its scope themselves (defence in depth) ------------


def test_address_changes_to_a_foreign_mailbox_are_not_found_alike(admin_a, admin_b, domain_a):
    """Handed another tenant's mailbox (a caller that forgot to scope it), the address
    services answer "not found" whether or not the address is there, and change nothing."""
    mailbox = _create(admin_a, domain_a)
    mailbox_services.mailbox_address_add(actor=admin_a, mailbox=mailbox, address="j@a.example")
    before = list(mailbox.principal.emails.values_list("address", flat=True))
    calls = [
        (mailbox_services.mailbox_address_add, "x@a.example"),
        (mailbox_services.mailbox_address_remove, "j@a.example"),
        (mailbox_services.mailbox_address_remove, "absent@a.example"),
    ]
    for call, address in calls:
        with pytest.raises(NotFound) as refused:
            call(actor=admin_b, mailbox=mailbox, address=address)
        assert refused.value.message == mailbox_selectors.MAILBOX_NOT_FOUND
    assert list(mailbox.principal.emails.values_list("address", flat=True)) == before


def test_sender_lists_and_spam_settings_of_a_foreign_mailbox_are_not_found(
    admin_a, admin_b, domain_a
):
    from apps.spamfilter import sender_lists
    from apps.spamfilter.models import MailboxSpamSetting, SenderListEntry

    principal = _create(admin_a, domain_a).principal
    sender_lists.entry_add(
        actor=admin_a, mailbox=principal, domain=domain_a, list_name="safelist", value="x.test"
    )
    calls = [
        lambda: sender_lists.entry_add(
            actor=admin_b, mailbox=principal, domain=domain_a, list_name="blacklist",
            value="spam.test",
        ),
        lambda: sender_lists.entry_remove(
            actor=admin_b, mailbox=principal, list_name="safelist", value="x.test"
        ),
        lambda: sender_lists.setting_update(
            actor=admin_b, mailbox=principal, raw={"filterlevel": "off"}
        ),
    ]  # fmt: skip
    for call in calls:
        with pytest.raises(NotFound):
            call()
    assert list(SenderListEntry.objects.values_list("list", "value")) == [("safelist", "x.test")]
    assert not MailboxSpamSetting.objects.exists()
    assert not AuditEvent.objects.filter(actor=admin_b).exists()
