"""The Django admin writes through the services (same checks, one audit row with interface
"admin") or not at all, and its pages cost the same with a few principals or thousands."""

from __future__ import annotations

import re

import pytest
from django.contrib import admin
from django.contrib.auth.hashers import make_password

from apps.accounts.models import (
    AccessToken,
    AppPassword,
    EncryptionSettings,
    LoginThrottle,
    OAuthCode,
    Principal,
    PrincipalEmail,
    RecoveryCode,
)
from apps.accounts.principals.services import builtin_role
from apps.domains import dkim
from apps.domains.models import DkimKey, DomainProfile
from apps.domains.services import dkim_key_create
from mailadmin import admin_base
from mailadmin.core.models import AuditEvent, TaskRun

pytestmark = pytest.mark.django_db
CROWD = 3_000
PRINCIPALS = "/admin/accounts/principal/"


@pytest.fixture
def operator(client, superadmin):
    client.force_login(superadmin)
    return client


def _change(obj) -> str:
    return f"/admin/{obj._meta.app_label}/{obj._meta.model_name}/{obj.pk}/change/"


def _delete(obj) -> str:
    return f"/admin/{obj._meta.app_label}/{obj._meta.model_name}/{obj.pk}/delete/"


def _messages(response) -> list[str]:
    return [str(m) for m in response.wsgi_request._messages]


def _crowd(tenant, count: int = CROWD, prefix: str = "bulk") -> None:
    Principal.objects.bulk_create(
        [
            Principal(name=f"{prefix}{i:05}", type="individual", tenant=tenant, password="!")
            for i in range(count)
        ],
        batch_size=1000,
    )


def _group_form(**changes) -> dict:
    data = {
        "name": "staff-a",
        "description": "",
        "quota": 0,
        "emails": "",
        "urls": "",
        "external_members": "",
    }
    data.update(changes)
    return data


# --- writes go through the services -----------------------------------------------------


def test_it_creates_a_principal_through_the_service(operator, superadmin, world_a):
    response = operator.post(
        f"{PRINCIPALS}add/",
        {
            "type": "individual",
            "tenant": world_a.tenant.pk,
            "name": "john-a",
            "description": "Made in the admin",
            "quota": 0,
            "roles": [builtin_role("user").pk],
            "member_of": [world_a.group.pk, world_a.mailing_list.pk],
            "emails": "John@A.example",
            "urls": "",
            "external_members": "",
            "new_password": "Tr0ub4dor&3-horse-staple",
        },
    )

    assert response.status_code == 302, response.content.decode()[:3000]
    john = Principal.objects.get(name="john-a")
    assert (john.tenant, john.created_by) == (world_a.tenant, superadmin)
    assert john.check_password("Tr0ub4dor&3-horse-staple")
    assert list(john.emails.values_list("address", flat=True)) == ["john@a.example"]
    assert set(john.member_of.all()) == {world_a.group, world_a.mailing_list}
    event = AuditEvent.objects.get(action="principal.create")
    assert (event.interface, event.tenant_id, event.actor) == ("admin", john.tenant_id, superadmin)
    assert event.changes["secrets"] == "<redacted>"
    assert event.changes["lists"] == ["all-a"] and event.changes["memberOf"] == ["staff-a"]


def test_it_shows_the_services_refusal_on_the_field_and_writes_nothing(operator, world_a):
    response = operator.post(
        _change(world_a.group), _group_form(description="x", emails="staff@b.example")
    )

    assert response.status_code == 200
    page = response.content.decode()
    assert "The domain b.example is not a domain of this tenant." in page
    assert re.search(r'errorlist[^>]*id="id_emails_error"', page) or "errors field-emails" in page
    world_a.group.refresh_from_db()
    assert world_a.group.description == ""
    assert not AuditEvent.objects.filter(action="principal.update").exists()


def test_it_applies_tenant_limits_in_the_admin_too(operator, world_a):
    Principal.objects.filter(pk=world_a.tenant.pk).update(max_accounts=3)  # admin, jane + 1
    Principal.objects.create(name="third-a", type="individual", tenant=world_a.tenant)
    response = operator.post(
        f"{PRINCIPALS}add/",
        {
            "type": "individual",
            "tenant": world_a.tenant.pk,
            "name": "fourth-a",
            "quota": 0,
            "emails": "",
            "urls": "",
            "external_members": "",
        },
    )
    assert response.status_code == 200
    assert "Tenant tenant-a has reached its limit of 3 accounts." in response.content.decode()
    assert not Principal.objects.filter(name="fourth-a").exists()


def test_it_refuses_a_permission_that_does_not_exist(operator, world_a):
    response = operator.post(
        _change(world_a.role),
        {
            "name": "helpdesk-a",
            "description": "",
            "quota": 0,
            "enabled_permissions": ["principal-list", "root-shell"],
            "emails": "",
            "urls": "",
            "external_members": "",
        },
    )
    assert response.status_code == 200
    assert "Select a valid choice. root-shell is not one of the available choices." in (
        response.content.decode()
    )


def test_it_sets_a_password_through_the_service(operator, world_a):
    response = operator.post(
        _change(world_a.account),
        {
            "name": "jane-a",
            "description": "Jane a",
            "quota": 0,
            "emails": "jane@a.example",
            "member_of": [world_a.group.pk, world_a.mailing_list.pk],
            "roles": [builtin_role("user").pk],
            "urls": "",
            "external_members": "",
            "new_password": "Tr0ub4dor&3-horse-staple",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    world_a.account.refresh_from_db()
    assert world_a.account.check_password("Tr0ub4dor&3-horse-staple")
    assert AuditEvent.objects.get(action="principal.update").changes == {"secrets": "<redacted>"}


def test_it_deletes_through_the_service_and_shows_its_refusal(operator, world_a):
    response = operator.post(_delete(world_a.domain), {"post": "yes"})

    assert response.status_code == 302
    assert response["Location"] == _change(world_a.domain)
    assert Principal.objects.filter(pk=world_a.domain.pk).exists()
    follow = operator.get(response["Location"])
    assert "The domain a.example still has 2 address(es); remove them first." in _messages(follow)

    assert operator.post(_delete(world_a.group), {"post": "yes"}).status_code == 302
    assert not Principal.objects.filter(pk=world_a.group.pk).exists()
    event = AuditEvent.objects.get(action="principal.delete")
    assert (event.interface, event.object_repr) == ("admin", "staff-a")


def test_it_bulk_deletes_through_the_service_row_by_row(operator, world_a):
    response = operator.post(
        PRINCIPALS,
        {
            "action": "delete_selected",
            "_selected_action": [world_a.group.pk, world_a.domain.pk],
            "post": "yes",
        },
    )

    assert response.status_code == 302
    assert not Principal.objects.filter(pk=world_a.group.pk).exists()
    assert Principal.objects.filter(pk=world_a.domain.pk).exists()
    assert _messages(operator.get(PRINCIPALS)) == [
        "a.example: The domain a.example still has 2 address(es); remove them first.",
        "Deleted 1 principal.",
    ]
    assert AuditEvent.objects.filter(action="principal.delete", interface="admin").count() == 1


def test_it_bulk_deletes_at_most_the_cap(operator, world_a, django_assert_max_num_queries):
    _crowd(world_a.tenant, admin_base.BULK_DELETE_CAP + 1)
    before = Principal.objects.count()
    with django_assert_max_num_queries(8):
        response = operator.post(
            f"{PRINCIPALS}?q=bulk",
            {
                "action": "delete_selected",
                "_selected_action": [world_a.group.pk],
                "select_across": "1",
                "index": "0",
                "post": "yes",
            },
        )
    assert response.status_code == 302
    assert Principal.objects.count() == before
    assert _messages(operator.get(PRINCIPALS)) == [
        "Select at most 100 principals to delete at once."
    ]


def test_it_confirms_a_tenant_delete_without_walking_what_it_holds(
    operator, world_a, django_assert_max_num_queries
):
    _crowd(world_a.tenant)
    with django_assert_max_num_queries(6):
        page = operator.get(_delete(world_a.tenant)).content.decode()
    assert "Tenant: tenant-a, with every principal, domain and key in it" in page
    assert "bulk00001" not in page


def test_it_never_edits_a_builtin_role_or_deletes_the_operator(operator, superadmin):
    role = builtin_role("user")
    assert operator.post(_change(role), _group_form(name="user", description="x")).status_code == (
        403
    )
    assert operator.post(_delete(superadmin), {"post": "yes"}).status_code == 403


def test_it_retires_a_dkim_key_and_deletes_it_through_the_service(operator, superadmin):
    tenant = Principal.objects.create(name="tenant-d", type="tenant")
    domain = Principal.objects.create(name="d.example", type="domain", tenant=tenant)
    key = dkim_key_create(actor=superadmin, domain=domain, algorithm=dkim.ED25519, selector="s1")

    changelist = "/admin/domains/dkimkey/"
    response = operator.post(changelist, {"action": "retire_keys", "_selected_action": [key.pk]})

    assert response.status_code == 302, response.content.decode()[:3000]
    key.refresh_from_db()
    assert (key.state, key.private_key) == ("retired", "")  # pending: withdrawn at once
    event = AuditEvent.objects.get(action="dkim.retire")
    assert (event.interface, event.tenant_id) == ("admin", tenant.pk)
    assert event.changes == {"state": {"from": "pending", "to": "retired"}}
    page = operator.get(_change(key)).content.decode()
    assert "PRIVATE" not in page and "private_key" not in page

    assert operator.post(_delete(key), {"post": "yes"}).status_code == 302
    assert not DkimKey.objects.filter(pk=key.pk).exists()
    assert AuditEvent.objects.get(action="dkim.delete").interface == "admin"


def test_it_unlocks_a_login_throttle_and_audits_it(operator):
    row = LoginThrottle.objects.create(key="account:jane-a", failures=5)
    assert operator.post(_delete(row), {"post": "yes"}).status_code == 302
    assert not LoginThrottle.objects.filter(pk=row.pk).exists()
    event = AuditEvent.objects.get(action="login-throttle.clear")
    assert event.interface == "admin"
    assert event.changes == {"key": "account:jane-a", "failures": 5}


def test_it_shows_rows_without_a_service_read_only(operator, world_a, superadmin):
    account = world_a.account
    rows = [
        PrincipalEmail.objects.get(address="jane@a.example"),
        AccessToken.objects.create(principal=account, kind="oauth", token_hash="h" * 64),
        AppPassword.objects.create(principal=account, name="phone", password=make_password("x")),
        RecoveryCode.objects.create(principal=account, code_hash="c" * 64),
        OAuthCode.objects.create(
            principal=account, code_hash="o" * 64, expires_at="2030-01-01T00:00:00Z"
        ),
        EncryptionSettings.objects.create(principal=account),
        DomainProfile.objects.create(domain=world_a.domain, tenant=world_a.tenant),
        TaskRun.objects.create(kind="dns", title="DNS check", actor=superadmin),
    ]
    for row in rows:
        model = type(row)
        base = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        assert operator.get(base).status_code == 200, base
        assert operator.get(_change(row)).status_code == 200, base  # the view page
        assert operator.post(_change(row), {}).status_code == 403, base
        assert operator.post(_delete(row), {"post": "yes"}).status_code == 403, base
        assert operator.get(f"{base}add/").status_code == 403, base
        assert model.objects.filter(pk=row.pk).exists()


def test_every_admin_writes_through_a_service_or_not_at_all():
    for model, model_admin in admin.site._registry.items():
        assert isinstance(model_admin, admin_base.ServiceAdmin | admin_base.ReadOnlyAdmin), model


def test_it_shows_no_secret_on_the_change_page(operator, world_a, superadmin):
    Principal.objects.filter(pk=world_a.account.pk).update(
        totp_secret="JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", otp_enabled=True
    )
    page = operator.get(_change(world_a.account)).content.decode()
    assert "JBSWY3DPEHPK3PXP" not in page and "gAAAAA" not in page
    assert 'name="totp_secret"' not in page and 'name="password"' not in page


# --- a million principals: nothing renders or counts the whole table -------------------


@pytest.fixture
def crowded(operator, world_a):
    """A few thousand accounts in tenant A, one of them with an address."""
    _crowd(world_a.tenant)
    PrincipalEmail.objects.create(
        principal=Principal.objects.get(name="bulk01234"), address="needle@a.example"
    )
    operator.get(PRINCIPALS)  # the session's first use writes nothing later
    return world_a


# session, user, capped count, page (tenant by select_related)
CHANGELIST_QUERIES = 4


def test_it_lists_principals_in_constant_queries_with_a_capped_count(
    operator, crowded, django_assert_num_queries, monkeypatch
):
    monkeypatch.setattr(admin_base.CappedPaginator, "cap", 1000)
    with django_assert_num_queries(CHANGELIST_QUERIES) as queries:
        response = operator.get(PRINCIPALS)
    page = response.content.decode()
    assert response.status_code == 200
    assert "more than 1000 principals" in page
    assert page.count('class="action-select"') == 50
    count_sql = queries.captured_queries[2]["sql"]
    assert "COUNT(" in count_sql and "LIMIT 1001" in count_sql
    assert "ORDER BY" not in count_sql  # any index counts; the list's order is not walked
    assert "DISTINCT" not in " ".join(q["sql"] for q in queries.captured_queries)


def test_it_searches_by_name_prefix_in_constant_queries(
    operator, crowded, django_assert_num_queries
):
    with django_assert_num_queries(CHANGELIST_QUERIES) as queries:
        response = operator.get(f"{PRINCIPALS}?q=BULK0123")
    page = response.content.decode()
    assert "10 results" in page  # bulk01230 ... bulk01239
    assert "bulk01234" in page and "bulk01240" not in page
    sql = " ".join(q["sql"] for q in queries.captured_queries)
    assert "bulk0123%'" in sql.lower()  # a prefix...
    assert not re.search(r"LIKE (UPPER\()?'%", sql)  # ...never a leading wildcard
    assert "DISTINCT" not in sql and "accounts_principalemail" not in sql


def test_it_searches_by_exact_address_with_one_more_query(
    operator, crowded, django_assert_num_queries
):
    with django_assert_num_queries(CHANGELIST_QUERIES + 1):
        response = operator.get(f"{PRINCIPALS}?q=Needle@A.example")
    page = response.content.decode()
    assert "1 result" in page and "bulk01234" in page
    assert "needle@a" not in operator.get(f"{PRINCIPALS}?q=needle@").content.decode()


# session, user, the principal, its roles and memberships (the form's initial value), its
# addresses, the chosen roles and memberships (the autocomplete widgets), its tenant.
CHANGE_FORM_QUERIES = 9


def _change_form(client, principal) -> str:
    return client.get(_change(principal)).content.decode()


def test_it_renders_the_change_form_without_listing_other_principals(
    operator, world_a, django_assert_num_queries
):
    jane = world_a.account
    jane.roles.add(builtin_role("user"))
    before = len(_change_form(operator, jane))
    _crowd(world_a.tenant)

    with django_assert_num_queries(CHANGE_FORM_QUERIES):
        page = _change_form(operator, jane)

    assert len(page) == before  # the HTML does not grow with the table
    assert "bulk00001" not in page
    assert 'data-ajax--url="/admin/autocomplete/"' in page
    assert "staff-a" in page and "all-a" in page  # the chosen memberships, and only those


def test_it_autocompletes_a_page_at_a_time_without_counting_everything(
    operator, crowded, django_assert_max_num_queries
):
    url = "/admin/autocomplete/?app_label=accounts&model_name=principal&field_name=member_of"
    with django_assert_max_num_queries(5) as queries:
        response = operator.get(f"{url}&term=bulk0")
    body = response.json()
    assert len(body["results"]) == 20 and body["pagination"] == {"more": True}
    assert body["results"][0]["text"] == "bulk00000"
    assert all("LIMIT" in q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"])
    tenants = operator.get(url.replace("member_of", "tenant") + "&term=").json()["results"]
    assert [t["text"] for t in tenants] == ["tenant-a"]  # limit_choices_to: tenants only


def test_the_list_order_and_the_name_search_are_served_by_the_prefix_index(crowded, superadmin):
    """EXPLAIN on the database in use: the admin's order and search read the index made
    for them (on PostgreSQL with sequential scans discouraged: a small table would not
    need it), however broad the prefix."""
    from django.db import connection, transaction
    from django.test import RequestFactory

    model_admin = admin.site._registry[Principal]
    request = RequestFactory().get(PRINCIPALS)
    request.user = superadmin
    for term in ("", "B", "BULK0123", "bulk01234"):
        found, _ = model_admin.get_search_results(request, model_admin.get_queryset(request), term)
        with transaction.atomic():
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL enable_seqscan = off")
            plan = found[:50].explain()
        assert "accounts_principal_name_prefix" in plan, (term, plan)
        assert "TEMP B-TREE" not in plan and "Sort Key" not in plan, (term, plan)


def test_every_changelist_and_its_search_cost_a_few_queries(
    operator, world_a, superadmin, django_assert_max_num_queries
):
    account = world_a.account
    for i in range(30):  # enough rows to show an N+1
        AccessToken.objects.create(principal=account, kind="oauth", token_hash=f"{i:064}")
        AppPassword.objects.create(principal=account, name=f"client{i}", password="!")
        LoginThrottle.objects.create(key=f"account:user{i}")
        TaskRun.objects.create(
            kind=f"dns:{i}", title="DNS check", actor=superadmin, tenant=world_a.tenant
        )
        AuditEvent.objects.create(action="x", object_type="y", interface="api", actor=superadmin)
    for name in ("s1", "s2"):
        dkim_key_create(
            actor=superadmin, domain=world_a.domain, algorithm=dkim.ED25519, selector=name
        )
    DomainProfile.objects.create(domain=world_a.domain, tenant=world_a.tenant)
    for model in admin.site._registry:
        url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        for query in ("", "?q=jane", "?q=a.example"):
            with django_assert_max_num_queries(6):
                assert operator.get(url + query).status_code == 200, url + query


@pytest.mark.parametrize(
    "path", ["/admin/", "/admin/accounts/principal/", "/admin/core/auditevent/", "/admin/login/"]
)
def test_admin_pages_name_the_console_icon(operator, path):
    """Without an icon link Chromium fetches /favicon.ico, a 404 in the console of every page."""
    page = operator.get(path, follow=True).content.decode()
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in page
