"""Principal search: every plan the pager may pick answers what a plain scan answers, and
the address match stays inside the actor's tenant."""

from __future__ import annotations

import pytest
from django.db.models import Q

from apps.accounts.models import Principal, PrincipalEmail
from apps.accounts.principals import selectors, services
from mailadmin.api import pagination
from mailadmin.api.pagination import LAST, paginate
from tests.support.planner import analyze

pytestmark = pytest.mark.django_db
FIRST = ["anna", "ben", "clara", "david", "emma", "felix", "greta", "hans"]


@pytest.fixture
def directory(world_a, world_b):
    """400 accounts in tenant A named <first>.<n>, ordered by first name, so a first name
    is a block of the list by name (a term clustered away from the start); descriptions
    "Person <n>"; addresses <first><n>@a.example. Tenant B has a few look-alikes."""
    rows = [
        Principal(
            name=f"{FIRST[i // 50]}.{i:03}",
            description=f"Person {i}",
            type="individual",
            tenant=world_a.tenant,
            password="!",
        )
        for i in range(400)
    ]
    Principal.objects.bulk_create(rows)
    created = Principal.objects.filter(tenant=world_a.tenant, name__contains=".")
    PrincipalEmail.objects.bulk_create(
        PrincipalEmail(principal=p, address=f"{p.name.replace('.', '')}@a.example") for p in created
    )
    for i in range(5):
        other = Principal.objects.create(
            name=f"hans.b{i}", type="individual", tenant=world_b.tenant, password="!"
        )
        PrincipalEmail.objects.create(principal=other, address=f"hans{i}@b.example")
    analyze(Principal, PrincipalEmail)
    return world_a


def plain(actor, term: str) -> list[str]:
    """The answer by definition: a scan with no index and no plan."""
    queryset = selectors.principal_scope(actor).filter(type="individual")
    match = Q(name__icontains=term) | Q(description__icontains=term)
    match |= Q(emails__address__icontains=term)
    return list(queryset.filter(match).distinct().order_by("name").values_list("name", flat=True))


def searched(actor, term: str, limit: int = 20) -> list[str]:
    """Every page of the search, by page number and then by cursor."""
    listing = selectors.principal_list(actor=actor, types=["individual"], search=term)
    page = paginate(listing, page=1, limit=limit)
    seen = [p.name for p in page.items]
    if len(seen) > limit // 2:  # a second page by number, then on by cursor
        page = paginate(listing, page=2, limit=limit)
        seen += [p.name for p in page.items]
    while page.next_cursor:
        page = paginate(listing, limit=limit, cursor=page.next_cursor)
        seen += [p.name for p in page.items]
    return seen


@pytest.fixture
def plans(monkeypatch):
    """Force a plan: shrink the pager's bounds so the earlier plans give up, and record
    which plan answered."""
    used: list[str] = []
    for name in ("_index_ordered", "_windowed", "_sorted_union"):
        real = getattr(pagination, name)

        def spy(*args, _real=real, _name=name, **kwargs):
            result = _real(*args, **kwargs)
            used.append(_name)
            return result

        monkeypatch.setattr(pagination, name, spy)

    def force(plan: str) -> list[str]:
        later = {"NARROW": 0, "WINDOW": 1, "FULL_SORT": 0}  # all walk, if step 0 gives up
        bounds = {
            "ordered": later,
            "narrow": {"ORDERED_DEPTH": 0, "NARROW": 10_000},
            "window": {"ORDERED_DEPTH": 0, "NARROW": 0, "WINDOW": 150},
            "sorted": {"ORDERED_DEPTH": 0, "NARROW": 0, "WINDOW": 1},
            "walk": {"ORDERED_DEPTH": 0, **later},
        }[plan]
        for name, value in bounds.items():
            monkeypatch.setattr(pagination, name, value)
        return used

    return force


TERMS = [
    "clara",  # a block in the middle of the list
    "person 1",  # descriptions, spread over the whole list
    "a.example",  # every address of the tenant
    "hans",  # tenant B has hans too, in names and addresses
    "nna00@a.ex",  # spans the @ of an address
    "zzz",  # nothing
    "e",  # shorter than a trigram
    "CLARA.0",  # case
    "rson 2",  # mid-word
    "a.012",  # a name ending, "." and digits
]
PLANS = ["ordered", "narrow", "window", "sorted", "walk"]


def rum_answers(term: str) -> bool:
    """Whether step 0 (the RUM table, PostgreSQL with the rum extension) takes `term`."""
    from django.db import connection

    from apps.accounts.principals import search_rum

    return len(term) >= 3 and term.isascii() and search_rum.usable(connection)


@pytest.mark.parametrize("plan", PLANS)
@pytest.mark.parametrize("term", TERMS)
def test_every_plan_finds_what_a_plain_scan_finds(directory, admin_a, plans, plan, term):
    used = plans(plan)
    assert searched(admin_a, term) == plain(admin_a, term)
    if plan == "ordered" and rum_answers(term):
        assert set(used) == {"_index_ordered"}
    if plan == "window" and term == "a.example":
        assert "_windowed" in used
    if plan == "sorted" and term in ("clara", "hans"):
        assert "_sorted_union" in used


def test_the_window_gives_up_on_a_term_clustered_away_from_the_start(directory, admin_a, plans):
    used = plans("window")
    assert searched(admin_a, "greta")[:2] == ["greta.300", "greta.301"]
    assert "_sorted_union" in used  # 150 rows from the start hold no greta


@pytest.mark.parametrize("plan", ["ordered", "sorted"])
def test_the_last_page_of_a_search(directory, admin_a, plans, plan):
    plans(plan)
    listing = selectors.principal_list(actor=admin_a, types=["individual"], search="person 1")
    page = paginate(listing, limit=20, cursor=LAST)
    assert [p.name for p in page.items] == plain(admin_a, "person 1")[-20:]
    before = paginate(listing, limit=20, cursor=page.previous_cursor)
    assert [p.name for p in before.items] == plain(admin_a, "person 1")[-40:-20]


@pytest.mark.parametrize("plan", ["ordered", "sorted", "walk"])
def test_a_search_by_name_downwards(directory, admin_a, plans, plan):
    plans(plan)
    listing = selectors.principal_list(
        actor=admin_a, types=["individual"], search="greta", order_by="-name"
    )
    first = paginate(listing, page=1, limit=20)
    second = paginate(listing, page=2, limit=20)
    following = paginate(listing, limit=20, cursor=second.next_cursor)
    names = [p.name for p in (*first.items, *second.items, *following.items)]
    assert names == plain(admin_a, "greta")[::-1][:60]


@pytest.mark.parametrize("plan", PLANS)
def test_an_address_of_another_tenant_is_never_a_match(
    directory, admin_a, admin_b, superadmin, plans, plan
):
    plans(plan)
    assert searched(admin_b, "hans1@b") == ["hans.b1"]
    assert searched(admin_b, "anna000@a.example") == []
    assert searched(admin_a, "hans1@b") == []
    assert searched(superadmin, "hans1@b") == ["hans.b1"]


@pytest.mark.parametrize("plan", ["ordered", "walk"])
def test_wildcards_in_the_term_are_plain_characters(directory, admin_a, plans, plan):
    plans(plan)
    Principal.objects.filter(name="anna.001").update(description="done 100% of it")
    Principal.objects.filter(name="anna.002").update(description=r"back\slash_under")
    assert searched(admin_a, "100%") == ["anna.001"]
    assert searched(admin_a, "%") == ["anna.001"]
    assert searched(admin_a, "a_000") == []
    assert searched(admin_a, "a.00_") == []
    assert searched(admin_a, r"k\sl") == ["anna.002"]
    assert searched(admin_a, "H_UN") == ["anna.002"]
    assert searched(admin_a, "h%un") == []


@pytest.mark.parametrize("plan", ["ordered", "walk"])
def test_non_ascii_terms_match_as_icontains_does(directory, admin_a, plans, plan):
    """A non-ASCII term is also looked for in its IDNA form among the addresses: step 0
    leaves it to the other plans, which find the same."""
    plans(plan)
    Principal.objects.filter(name="anna.003").update(description="Jürgen Müller")
    Principal.objects.filter(name="anna.004").update(description="JÜRGEN MÜLLER")
    for term in ("müller", "MÜLLER", "Jürgen M", "ürg", "Müller"):
        assert searched(admin_a, term) == plain(admin_a, term)
    assert "anna.003" in searched(admin_a, "Müller")


def test_the_search_follows_renames_and_new_addresses(directory, admin_a, world_a):
    account = world_a.account
    services.principal_update(
        actor=admin_a,
        principal=account,
        operations=[
            {"action": "set", "field": "name", "value": "janet-a"},
            {"action": "set", "field": "description", "value": "Janet Quux"},
            {"action": "set", "field": "emails", "value": ["quuxbox@a.example"]},
        ],
    )
    assert searched(admin_a, "janet-a") == ["janet-a"]
    assert searched(admin_a, "quux") == ["janet-a"]
    assert searched(admin_a, "quuxbox@a") == ["janet-a"]
    assert searched(admin_a, "jane@a.example") == []
    services.principal_delete(actor=admin_a, principal=Principal.objects.get(name="janet-a"))
    assert searched(admin_a, "quux") == []


def test_the_api_searches_with_the_same_plans(directory, api_a, admin_a):
    body = api_a.get("/api/principal?types=individual&filter=clara&limit=20").json()["data"]
    assert [i["name"] for i in body["items"]] == plain(admin_a, "clara")[:20]
    following = api_a.get(
        f"/api/principal?types=individual&filter=clara&limit=20&cursor={body['next']}"
    ).json()["data"]
    assert [i["name"] for i in following["items"]] == plain(admin_a, "clara")[20:40]


def test_the_sqlite_index_is_made_again_when_a_migration_drops_its_triggers(directory, admin_a):
    from django.db import connection

    from apps.accounts.principals import search_index

    if connection.vendor != "sqlite":
        pytest.skip("the FTS5 index is SQLite's")
    with connection.cursor() as cursor:  # as rebuilding the table for a new column does
        cursor.execute(f"DROP TRIGGER {search_index.TRIGGERS[1]}")
    Principal.objects.filter(name="anna.001").update(description="Quokka keeper")
    search_index.ensure(connection)  # what every `migrate` runs last
    assert searched(admin_a, "quokka") == ["anna.001"]
    Principal.objects.filter(name="anna.001").update(description="Wombat keeper")
    assert searched(admin_a, "wombat") == ["anna.001"]
