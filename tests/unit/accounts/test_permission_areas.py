"""The console groups the permission vocabulary by area (API-key form, a role's page)."""

from apps.accounts.permissions import ALL_PERMISSIONS, PERMISSION_AREAS, Perm, by_area


def test_it_puts_every_permission_in_exactly_one_area():
    placed = [p for members in PERMISSION_AREAS.values() for p in members]
    assert sorted(placed) == sorted(ALL_PERMISSIONS)
    assert len(placed) == len(set(placed))


def test_it_groups_in_vocabulary_order_and_leaves_out_empty_areas():
    groups = by_area({"dns-check", "dashboard", "domain-list", "principal-get"})
    assert groups == [
        ("Accounts and access", ["principal-get"]),
        ("Domains, DKIM and DNS", ["domain-list", "dns-check"]),
        ("Console", ["dashboard"]),
    ]


def test_it_keeps_a_permission_without_an_area_under_other():
    assert by_area({"principal-list", "brand-new"}) == [
        ("Accounts and access", ["principal-list"]),
        ("Other", ["brand-new"]),
    ]


def test_it_returns_plain_strings():
    [(_, names)] = by_area({Perm.DASHBOARD})
    assert type(names[0]) is str
