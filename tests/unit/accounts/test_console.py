"""The HTML console of principals: list, forms, editors, delete; HTMX partials."""

import pytest

from apps.accounts.models import Principal
from tests.conftest import TEST_PASSWORD

pytestmark = pytest.mark.django_db
STRONG = "Tr0ub4dor&3-horse-staple"


def html(response) -> str:
    return response.content.decode()


def test_it_lists_accounts_of_the_own_tenant(console_a, world_a, world_b):
    response = console_a.get("/accounts/")
    assert response.status_code == 200
    page = html(response)
    assert "jane-a" in page and "jane@a.example" in page
    assert "jane-b" not in page
    assert "staff-a" not in page  # groups are on their own tab
    assert '<a href="?type=group"' in page
    assert "?type=tenant" not in page  # tenants tab is for superadmins


def test_it_shows_the_tenants_tab_to_superadmins(client, superadmin, world_a):
    client.force_login(superadmin)
    page = html(client.get("/accounts/?type=tenant"))
    assert "?type=tenant" in page and "tenant-a" in page


def test_it_switches_tabs(console_a, world_a):
    page = html(console_a.get("/accounts/?type=list"))
    assert "all-a" in page and "jane-a" not in page
    assert 'href="/accounts/new/?type=list"' in page


def test_it_answers_htmx_with_the_table_only(console_a, world_a):
    response = console_a.get("/accounts/?type=individual&q=jane", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    text = html(response).strip()
    assert text.startswith('<div id="principal-table">')
    assert "<html" not in text and "jane-a" in text and "admin-a" not in text


def test_it_sorts_and_pages(console_a, world_a, make_principal):
    for n in range(55):
        make_principal(tenant=world_a.tenant, name=f"bulk{n:02}", password="")
    first = html(console_a.get("/accounts/?sort=-name"))
    assert "bulk54" in first and "Page 1 of 2" in first
    second = html(console_a.get("/accounts/?sort=-name&page=2"))
    assert "Page 2 of 2" in second and "admin-a" in second and "bulk54" not in second


def test_it_needs_principal_list(client, user_a):
    client.force_login(user_a)
    assert client.get("/accounts/").status_code == 403


def test_it_redirects_anonymous_visitors_to_login(client):
    response = client.get("/accounts/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_it_creates_an_account_from_the_form(console_a, world_a):
    response = console_a.post(
        "/accounts/new/?type=individual",
        {
            "name": "john",
            "description": "John",
            "secrets": STRONG,
            "emails_local": ["john", "jd"],
            "emails_domain": ["a.example", "a.example"],
        },
    )
    john = Principal.objects.get(name="john")
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/{john.pk}/"
    assert john.tenant == world_a.tenant and john.check_password(STRONG)
    assert list(john.emails.values_list("address", flat=True)) == [
        "john@a.example",
        "jd@a.example",
    ]
    follow = html(console_a.get(response["Location"]))
    assert "Created account john." in follow


def test_it_shows_service_errors_beside_the_field(console_a, world_a):
    response = console_a.post(
        "/accounts/new/?type=individual",
        {"name": "john", "emails_local": "jane", "emails_domain": "a.example"},
    )
    assert response.status_code == 422
    page = html(response)
    assert 'id="id_emails_error"' in page
    assert "The email address jane@a.example is already in use." in page
    assert not Principal.objects.filter(name="john").exists()


def test_it_answers_htmx_form_posts_with_the_form_or_a_redirect(console_a, world_a):
    bad = console_a.post("/accounts/new/?type=group", {"name": "staff-a"}, HTTP_HX_REQUEST="true")
    assert bad.status_code == 422
    assert html(bad).strip().startswith('<form method="post" id="principal-form"')
    assert "The name &#x27;staff-a&#x27; is already taken." in html(bad)
    good = console_a.post("/accounts/new/?type=group", {"name": "team"}, HTTP_HX_REQUEST="true")
    team = Principal.objects.get(name="team")
    assert good.status_code == 204
    assert good["HX-Redirect"] == f"/accounts/{team.pk}/"


def test_it_edits_a_principal(console_a, world_a):
    form = html(console_a.get(f"/accounts/{world_a.account.pk}/edit/"))
    assert 'name="emails_local" value="jane"' in form and 'name="secrets"' in form
    response = console_a.post(
        f"/accounts/{world_a.account.pk}/edit/",
        {
            "name": "jane-a",
            "description": "Edited",
            "emails_local": "jane",
            "emails_domain": "a.example",
            "quota_0": "",
            "quota_1": "GB",
        },
    )
    assert response.status_code == 302
    world_a.account.refresh_from_db()
    assert world_a.account.description == "Edited"
    assert not world_a.account.has_usable_password()  # an empty password field keeps it


def test_it_edits_memberships_and_roles(console_a, world_a):
    page = html(console_a.get(f"/accounts/{world_a.account.pk}/memberships/"))
    assert 'value="helpdesk-a"' in page and 'value="tenant-admin"' in page
    assert 'value="admin"' not in page  # only superadmins may grant it
    response = console_a.post(
        f"/accounts/{world_a.account.pk}/memberships/",
        {"roles": ["user", "helpdesk-a"], "memberOf": "", "lists": "all-a"},
    )
    assert response.status_code == 302
    account = Principal.objects.get(pk=world_a.account.pk)
    assert sorted(r.name for r in account.roles.all()) == ["helpdesk-a", "user"]
    assert [g.name for g in account.member_of.all()] == ["all-a"]


def test_it_shows_membership_errors_inline(console_a, world_a, world_b):
    response = console_a.post(
        f"/accounts/{world_a.account.pk}/memberships/",
        {"roles": ["user"], "memberOf": "staff-b", "lists": ""},
    )
    assert response.status_code == 422
    assert "No such principal: staff-b" in html(response)


def test_it_edits_members_of_a_group(console_a, world_a):
    response = console_a.post(f"/accounts/{world_a.group.pk}/memberships/", {"members": "admin-a"})
    assert response.status_code == 302
    assert [m.name for m in world_a.group.members.all()] == ["admin-a"]


def test_it_shows_and_edits_permissions_with_the_effective_ones(console_a, world_a):
    page = html(console_a.get(f"/accounts/{world_a.account.pk}/permissions/"))
    assert 'name="enabledPermissions" value="principal-list"' in page
    # jane holds "user": dashboard is effective, principal-list is not (yet).
    assert 'data-effective="yes"' in page
    response = console_a.post(
        f"/accounts/{world_a.account.pk}/permissions/",
        {"enabledPermissions": ["principal-list"], "disabledPermissions": ["undelete"]},
    )
    assert response.status_code == 302
    account = Principal.objects.get(pk=world_a.account.pk)
    assert "principal-list" in account.permissions and "undelete" not in account.permissions
    detail = html(console_a.get(f"/accounts/{world_a.account.pk}/"))
    assert 'data-permission="principal-list"' in detail
    assert 'data-permission="undelete"' not in detail


def test_it_refuses_to_grant_what_the_actor_lacks_inline(console_a, world_a):
    response = console_a.post(
        f"/accounts/{world_a.account.pk}/permissions/", {"enabledPermissions": ["logs-view"]}
    )
    assert response.status_code == 422
    assert "You can&#x27;t grant the permission &#x27;logs-view&#x27;" in html(response)


def test_it_confirms_before_deleting(console_a, world_a):
    confirm = console_a.get(f"/accounts/{world_a.group.pk}/delete/")
    assert confirm.status_code == 200
    assert "Delete group staff-a?" in html(confirm)
    assert Principal.objects.filter(pk=world_a.group.pk).exists()
    response = console_a.post(f"/accounts/{world_a.group.pk}/delete/")
    assert response.status_code == 302 and response["Location"] == "/accounts/?type=group"
    assert not Principal.objects.filter(pk=world_a.group.pk).exists()
    assert "Deleted group staff-a." in html(console_a.get(response["Location"]))


def test_it_shows_delete_refusals(console_a, world_a):
    response = console_a.post(f"/accounts/{world_a.domain.pk}/delete/")
    assert response.status_code == 422
    assert "still has 2 address(es)" in html(response)


def test_it_answers_404_for_a_missing_principal(console_a):
    for suffix in ("", "edit/", "memberships/", "permissions/", "delete/"):
        assert console_a.get(f"/accounts/999999/{suffix}").status_code == 404


def test_it_renders_every_admin_page_of_accounts_models(client, superadmin, world_a, api_a):
    from django.apps import apps

    api_a.patch(
        "/api/principal/jane-a",
        [{"action": "set", "field": "description", "value": "x"}],
        format="json",
    )
    client.force_login(superadmin)
    models = [*apps.get_app_config("accounts").get_models(), apps.get_model("core.AuditEvent")]
    for model in models:
        url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        assert client.get(url).status_code == 200, url
        row = model.objects.first()
        if row is not None:
            assert client.get(f"{url}{row.pk}/change/").status_code == 200, url
    page = html(client.get(f"/admin/accounts/principal/{world_a.account.pk}/change/"))
    assert 'name="password"' not in page and 'name="totp_secret"' not in page


def test_it_offers_only_the_editors_that_apply_to_the_type(console_a, world_a):
    domain = console_a.get(f"/accounts/{world_a.domain.pk}/").content.decode()
    assert f"/accounts/{world_a.domain.pk}/permissions/" not in domain
    assert f"/accounts/{world_a.domain.pk}/memberships/" not in domain
    assert console_a.get(f"/accounts/{world_a.domain.pk}/permissions/").status_code == 404
    assert console_a.get(f"/accounts/{world_a.group.pk}/permissions/").status_code == 404
    role = console_a.get(f"/accounts/{world_a.role.pk}/").content.decode()
    assert f"/accounts/{world_a.role.pk}/permissions/" in role


FORMS_WITH_BAD_INPUT = [
    # (url, posted data, the message the page shows) -- every console form of a tenant admin
    ("/accounts/new/?type=individual", {"name": "jane doe"}, "The name &#x27;jane doe&#x27;"),
    ("/accounts/new/?type=domain", {"name": "a b"}, "&#x27;a b&#x27; is not a valid domain name."),
    ("/accounts/{account}/edit/", {"name": ""}, "This field is required."),
    ("/accounts/{account}/memberships/", {"memberOf": "nobody"}, "No such principal: nobody"),
    (
        "/accounts/{account}/permissions/",
        {"enabledPermissions": ["logs-view"]},
        "You can&#x27;t grant the permission &#x27;logs-view&#x27;",
    ),
    ("/accounts/{domain}/delete/", {}, "still has 2 address(es)"),
    (
        "/account/api-keys/new/",
        {"name": "deploy", "expires_at": "2001-01-01T00:00"},
        "The expiry must be in the future.",
    ),
    ("/account/app-passwords/", {"name": ""}, "This field is required."),
    (
        "/account/security/totp/",
        {"code": "000000", "password": TEST_PASSWORD},
        "The code is not valid. Check the time on your device.",
    ),
    ("/account/security/totp/disable/", {}, "Two-factor authentication is already off."),
    ("/account/security/recovery-codes/", {}, "Turn on two-factor authentication first."),
    ("/domains/{domain}/dkim/", {"algorithm": "ed25519", "selector": "-"}, "is not a DNS label"),
]


@pytest.mark.parametrize(("url", "data", "message"), FORMS_WITH_BAD_INPUT)
def test_every_console_form_answers_bad_input_with_422_and_its_message(
    console_a, world_a, url, data, message
):
    url = url.format(account=world_a.account.pk, domain=world_a.domain.pk)
    response = console_a.post(url, data)
    assert response.status_code == 422
    assert message in html(response)
    assert 'class="errorlist' in html(response)


def test_the_login_forms_answer_bad_input_with_422(client, admin_a):
    response = client.post("/login/", {"username": "admin-a", "password": ""})
    assert response.status_code == 422
    assert 'id="password-errors"' in html(response)
    assert "This field is required." in html(response)
