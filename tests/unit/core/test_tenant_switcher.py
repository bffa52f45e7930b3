"""The superadmin's tenant switcher narrows the console's lists; it never widens anything."""

import re

import pytest

from apps.accounts.auth.api_keys import api_key_create
from apps.accounts.models import Principal
from mailadmin.audit import audit
from mailadmin.core.tenants import SESSION_KEY

pytestmark = pytest.mark.django_db
PLAIN_QUERIES = 9


@pytest.fixture
def two_tenants(make_principal, tenant_a, tenant_b, admin_a, admin_b):
    for tenant, prefix in ((tenant_a, "a"), (tenant_b, "b")):
        make_principal(
            tenant=tenant, roles=(), name=f"{prefix}.example", type="domain", password=""
        )
        make_principal(tenant=tenant, name=f"jane-{prefix}", password="")
        audit(actor=None, action=f"test.{prefix}", object_type="x", tenant_id=tenant.pk)
    api_key_create(actor=admin_a, name="key-a")
    api_key_create(actor=admin_b, name="key-b")


@pytest.fixture
def root(client, superadmin):
    client.force_login(superadmin)
    return client


def switch(client, tenant, next_url="/accounts/"):
    value = "" if tenant is None else str(tenant.pk)
    return client.post("/tenant/", {"tenant": value, "next": next_url})


def page(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def table(html: str) -> str:
    return html.split('id="principal-table"', 1)[1]


def test_it_offers_every_tenant_and_all_tenants_to_a_superadmin(root, two_tenants):
    html = page(root, "/")
    switcher = html.split('id="tenant-switcher"', 1)[1].split("</form>", 1)[0]
    assert re.findall(r"<option[^>]*>([^<]+)</option>", switcher) == [
        "All tenants",
        "tenant-a",
        "tenant-b",
    ]
    assert 'name="next" value="/"' in switcher and "data-autosubmit" in switcher


def test_it_narrows_the_lists_to_the_picked_tenant(root, tenant_a, two_tenants):
    response = switch(root, tenant_a, "/accounts/?q=jane&page=2")
    assert response.status_code == 302 and response["Location"] == "/accounts/?q=jane"
    assert root.session[SESSION_KEY] == tenant_a.pk
    accounts = table(page(root, "/accounts/"))
    assert "jane-a" in accounts and "jane-b" not in accounts and ">root<" not in accounts
    domains = page(root, "/domains/").split('id="domain-table"', 1)[1]
    assert "a.example" in domains and "b.example" not in domains
    log = page(root, "/accounts/audit/").split('id="audit-table"', 1)[1]
    assert "test.a" in log and "test.b" not in log
    keys = page(root, "/account/api-keys/").split('id="api-key-table"', 1)[1]
    assert "key-a" in keys and "key-b" not in keys
    tenants = table(page(root, "/accounts/?type=tenant"))
    assert ">tenant-a<" in tenants and ">tenant-b<" not in tenants
    switcher = page(root, "/").split('id="tenant-switcher"', 1)[1]
    assert f'<option value="{tenant_a.pk}" selected>tenant-a</option>' in switcher


def test_it_counts_the_picked_tenant_on_the_dashboard(root, tenant_a, two_tenants):
    everything = dict(root.get("/").context["cards"])
    assert everything["Tenants"] == 2 and everything["Accounts"] == 5  # root, 2 admins, 2 janes
    switch(root, tenant_a)
    narrowed = dict(root.get("/").context["cards"])
    assert "Tenants" not in narrowed
    assert narrowed["Accounts"] == 2 and narrowed["Domains"] == 1 and narrowed["API keys"] == 1


def test_it_goes_back_to_all_tenants(root, tenant_a, two_tenants):
    switch(root, tenant_a)
    switch(root, None)
    assert SESSION_KEY not in root.session
    accounts = table(page(root, "/accounts/"))
    assert "jane-a" in accounts and "jane-b" in accounts and ">root<" in accounts


def test_it_creates_in_the_picked_tenant_by_default(root, tenant_a, two_tenants):
    switch(root, tenant_a)
    form = page(root, "/accounts/new/?type=individual")
    assert '<option value="tenant-a" selected>tenant-a</option>' in form
    picker = form.split('id="id_emails"')[1]
    assert "a.example" in picker and "b.example" not in picker


def test_it_refuses_what_is_not_a_tenant(root, tenant_a, admin_a, two_tenants):
    for value in (str(admin_a.pk), "99999999", "abc", "1" * 30):
        response = root.post("/tenant/", {"tenant": value, "next": "/domains/"})
        assert response.status_code == 302 and response["Location"] == "/domains/"
        assert SESSION_KEY not in root.session
    assert "No such tenant." in page(root, "/domains/")


def test_it_redirects_only_within_the_site(root, tenant_a):
    for target in ("https://evil.example/", "//evil.example/x", ""):
        assert switch(root, tenant_a, target)["Location"] == "/"


def test_it_forgets_a_deleted_tenant(root, make_tenant, two_tenants):
    gone = make_tenant("gone")
    switch(root, gone)
    Principal.objects.filter(pk=gone.pk).delete()
    accounts = page(root, "/accounts/")
    assert "jane-a" in accounts and "jane-b" in accounts
    assert SESSION_KEY not in root.session


def test_a_tenant_admin_has_no_switcher_and_cannot_use_it(client, admin_a, tenant_b, two_tenants):
    client.force_login(admin_a)
    assert 'id="tenant-switcher"' not in page(client, "/")
    assert switch(client, tenant_b).status_code == 403
    assert SESSION_KEY not in client.session


def test_a_stored_choice_never_widens_a_tenant_admins_view(client, admin_a, tenant_b, two_tenants):
    client.force_login(admin_a)
    session = client.session
    session[SESSION_KEY] = tenant_b.pk  # e.g. left over from before a demotion
    session.save()
    accounts = page(client, "/accounts/")
    assert "jane-a" in accounts and "jane-b" not in accounts
    domains = page(client, "/domains/")
    assert "a.example" in domains and "b.example" not in domains


def test_it_leaves_the_api_alone(client, superadmin, api_root, tenant_a, two_tenants):
    client.force_login(superadmin)
    switch(client, tenant_a)
    names = [p["name"] for p in api_root.get("/api/principal?limit=100").json()["data"]["items"]]
    assert "jane-a" in names and "jane-b" in names


def test_it_needs_tenant_list_and_a_post(root):
    from mailadmin.core import views

    assert views.tenant_switch.required_permission == "tenant-list"
    assert root.get("/tenant/").status_code == 405


def test_the_narrowed_list_costs_one_query_more(
    root, tenant_a, make_principal, two_tenants, django_assert_max_num_queries
):
    # session, user, the page (its count too when full), 5 prefetches, the tenant menu
    root.get("/accounts/")
    with django_assert_max_num_queries(PLAIN_QUERIES):
        root.get("/accounts/")
    switch(root, tenant_a)
    for n in range(30):
        make_principal(tenant=tenant_a, name=f"more{n}", password="")
    with django_assert_max_num_queries(PLAIN_QUERIES + 1):  # + the picked tenant
        root.get("/accounts/")
