"""A role's page shows what holding it grants, by area."""

import re

import pytest

pytestmark = pytest.mark.django_db


def effective(page: str) -> list[str]:
    section = page.split('id="effective-permissions"', 1)[1].split("</dl>", 1)[0]
    return re.findall(r'data-permission="([^"]+)"', section)


def areas(page: str) -> list[str]:
    section = page.split('id="effective-permissions"', 1)[1].split("</dl>", 1)[0]
    return re.findall(r"<dt>([^<]+)</dt>", section)


def test_it_shows_a_tenant_roles_permissions_by_area(console_a, make_principal, tenant_a):
    role = make_principal(
        tenant=tenant_a,
        roles=(),
        name="dns-desk",
        type="role",
        password="",
        enabled_permissions=["dns-check", "principal-list", "domain-get", "dashboard"],
        disabled_permissions=["dashboard"],
    )
    page = console_a.get(f"/accounts/{role.pk}/").content.decode()
    assert effective(page) == ["principal-list", "domain-get", "dns-check"]
    assert areas(page) == ["Accounts and access", "Domains, DKIM and DNS"]
    assert "never server-wide permissions" in page


def test_it_never_shows_server_wide_permissions_for_a_tenants_role(
    console_a, make_principal, tenant_a
):
    # Written around the services (they refuse it); a stored value must still not show.
    role = make_principal(
        tenant=tenant_a,
        roles=(),
        name="sneaky",
        type="role",
        password="",
        enabled_permissions=["settings-update", "principal-list"],
    )
    page = console_a.get(f"/accounts/{role.pk}/").content.decode()
    assert effective(page) == ["principal-list"]


def test_it_shows_a_builtin_roles_permissions_and_marks_the_superadmin_only_ones(
    client, superadmin
):
    from apps.accounts.principals.services import builtin_role

    client.force_login(superadmin)
    page = client.get(f"/accounts/{builtin_role('tenant-admin').pk}/").content.decode()
    shown = effective(page)
    assert "principal-create" in shown and "dns-check" in shown
    assert "settings-update" not in shown and "superadmins only" not in page

    page = client.get(f"/accounts/{builtin_role('admin').pk}/").content.decode()
    assert "settings-update" in effective(page)
    assert (
        '<code data-permission="settings-update">settings-update</code> '
        '<small class="server-wide">superadmins only</small>'
    ) in page

    page = client.get(f"/accounts/{builtin_role('user').pk}/").content.decode()
    assert effective(page) == ["manage-passwords", "manage-encryption", *effective(page)[2:]]
    assert "spam-filter-train" in effective(page) and "principal-list" not in effective(page)


def test_it_still_shows_an_accounts_effective_permissions(console_a, world_a):
    page = console_a.get(f"/accounts/{world_a.account.pk}/").content.decode()
    assert "dashboard" in effective(page) and "principal-list" not in effective(page)
