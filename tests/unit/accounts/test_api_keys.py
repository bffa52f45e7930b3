"""API keys: they act for their owner with the owner's current reach, narrowed; shown once."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.accounts.auth.api_keys import api_key_create, api_key_revoke
from apps.accounts.auth.tokens import hash_token
from apps.accounts.models import AccessToken, Principal
from mailadmin.core.models import AuditEvent
from mailadmin.errors import NotFound, PermissionDenied, ServiceError
from tests.conftest import TEST_PASSWORD

pytestmark = pytest.mark.django_db


def _bearer(client, secret):
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


# --- service ---------------------------------------------------------------------------


def test_it_creates_an_api_key_principal_in_the_creators_tenant(admin_a, tenant_a):
    key, secret = api_key_create(
        actor=admin_a, name="deploy", permissions=["principal-list", "domain-list"]
    )
    assert key.type == "apiKey"
    assert key.tenant_id == tenant_a.pk
    assert key.created_by_id == admin_a.pk
    assert key.enabled_permissions == ["domain-list", "principal-list"]
    assert key.permissions == frozenset({"domain-list", "principal-list"})
    assert not key.has_usable_password()
    assert secret.startswith("ma_")
    token = AccessToken.objects.get(principal=key)
    assert token.kind == "apiKey"
    assert token.token_hash == hash_token(secret)
    assert secret not in token.token_hash


def test_without_permissions_a_key_gets_all_of_its_owners(admin_a):
    key, _ = api_key_create(actor=admin_a, name="all")
    assert key.all_owner_permissions and key.enabled_permissions == []
    assert key.permissions == admin_a.permissions


def test_it_refuses_a_permission_the_creator_does_not_have(admin_a):
    with pytest.raises(ServiceError) as exc:
        api_key_create(actor=admin_a, name="k", permissions=["principal-list", "settings-update"])
    assert (
        exc.value.message
        == "You cannot grant the permission 'settings-update': you do not have it."
    )
    assert not Principal.objects.filter(name="k").exists()


def test_it_refuses_an_unknown_permission(admin_a):
    with pytest.raises(ServiceError) as exc:
        api_key_create(actor=admin_a, name="k", permissions=["fly"])
    assert exc.value.message == "Unknown permission: fly"


def test_it_refuses_a_taken_name(admin_a, user_a):
    with pytest.raises(ServiceError) as exc:
        api_key_create(actor=admin_a, name="user-a", permissions=["principal-list"])
    assert exc.value.message == "The name 'user-a' is already taken."


def test_it_refuses_an_expiry_in_the_past(admin_a):
    with pytest.raises(ServiceError) as exc:
        api_key_create(
            actor=admin_a, name="k", permissions=[], expires_at=timezone.now() - timedelta(1)
        )
    assert exc.value.message == "The expiry must be in the future."


def test_it_needs_api_key_create(user_a):
    with pytest.raises(PermissionDenied):
        api_key_create(actor=user_a, name="k", permissions=[])


def test_a_key_of_another_tenant_cannot_be_revoked(admin_a, admin_b):
    key, _ = api_key_create(actor=admin_a, name="k", permissions=["principal-list"])
    with pytest.raises(NotFound):
        api_key_revoke(actor=admin_b, key=key)
    assert Principal.objects.get(pk=key.pk).is_active


def test_a_superadmin_key_has_no_tenant_and_may_hold_server_wide_permissions(superadmin):
    key, _ = api_key_create(actor=superadmin, name="ops", permissions=["settings-update"])
    assert key.tenant_id is None
    assert key.has_permission("settings-update")


def test_a_tenant_key_never_gets_server_wide_permissions(admin_a):
    key, _ = api_key_create(actor=admin_a, name="k", permissions=["principal-list"])
    Principal.objects.filter(pk=key.pk).update(enabled_permissions=["settings-update"])
    assert not Principal.objects.get(pk=key.pk).has_permission("settings-update")


# --- using a key -----------------------------------------------------------------------


def test_a_key_authenticates_and_records_its_last_use(anon_api, admin_a):
    key, secret = api_key_create(actor=admin_a, name="k", permissions=["principal-list"])
    response = _bearer(anon_api, secret).get("/api/")
    assert response.status_code == 200
    assert response.json()["data"]["permissions"] == ["principal-list"]
    assert AccessToken.objects.get(principal=key).last_used_at is not None


def test_a_key_is_limited_to_its_permissions(anon_api, admin_a):
    _, secret = api_key_create(actor=admin_a, name="k", permissions=["principal-list"])
    response = _bearer(anon_api, secret).post("/api/telemetry/self-check")
    assert response.status_code == 403
    assert response.json()["permission"] == "troubleshoot"


def test_a_revoked_key_stops_working(anon_api, admin_a):
    key, secret = api_key_create(actor=admin_a, name="k", permissions=["principal-list"])
    api_key_revoke(actor=admin_a, key=key)
    response = _bearer(anon_api, secret).get("/api/")
    assert response.status_code == 401
    key.refresh_from_db()
    assert not key.is_active
    assert AccessToken.objects.get(principal=key).revoked_at is not None
    assert AuditEvent.objects.filter(action="api-key.revoke", object_id=str(key.pk)).exists()


def test_an_expired_key_stops_working(anon_api, admin_a):
    key, secret = api_key_create(
        actor=admin_a,
        name="k",
        permissions=["principal-list"],
        expires_at=timezone.now() + timedelta(hours=1),
    )
    AccessToken.objects.filter(principal=key).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert _bearer(anon_api, secret).get("/api/").status_code == 401


# --- API -------------------------------------------------------------------------------


def test_the_api_creates_a_key_and_returns_the_secret_once(api_client_for, anon_api, admin_a):
    client = api_client_for(admin_a)
    response = client.post(
        "/api/account/api-keys",
        {"name": "ci", "permissions": ["principal-list"], "expiresAt": "2999-01-01T00:00:00Z"},
        format="json",
    )
    assert response.status_code == 200
    data = response.json()["data"]
    key = Principal.objects.get(pk=data["id"])
    assert data == {
        "id": key.pk,
        "name": "ci",
        "description": "",
        "tenant": "tenant-a",
        "owner": "admin-a",
        "permissions": ["principal-list"],
        "effectivePermissions": ["principal-list"],
        "status": "active",
        "createdAt": key.created_at.isoformat(),
        "lastUsedAt": None,
        "expiresAt": "2999-01-01T00:00:00+00:00",
        "secret": data["secret"],
    }
    assert data["secret"].startswith("ma_")
    key = Principal.objects.get(pk=data["id"])
    assert AccessToken.objects.get(principal=key).expires_at.year == 2999
    assert _bearer(anon_api, data["secret"]).get("/api/").json()["data"]["name"] == "ci"
    listing = client.get("/api/account/api-keys").content.decode()
    assert data["secret"] not in listing and hash_token(data["secret"]) not in listing
    event = AuditEvent.objects.get(action="api-key.create")
    assert data["secret"] not in str(event.changes)


def test_the_api_lists_keys_of_the_tenant_only(api_client_for, admin_a, admin_b):
    api_key_create(actor=admin_a, name="a-key", permissions=["principal-list"])
    api_key_create(actor=admin_b, name="b-key", permissions=["principal-list"])
    items = api_client_for(admin_a).get("/api/account/api-keys").json()["data"]["items"]
    assert [item["name"] for item in items] == ["a-key"]
    assert items[0]["lastUsedAt"] is None and items[0]["status"] == "active"


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({}, "Missing required field: name"),
        ({"name": "k", "scope": "x"}, "Unrecognized field: scope"),
        (
            {"name": "k", "permissions": "principal-list"},
            "Invalid value for field permissions: expected a list of permission names.",
        ),
        (
            {"name": "k", "permissions": ["logs-view"]},
            "You cannot grant the permission 'logs-view': you do not have it.",
        ),
        (
            {"name": "k", "expiresAt": "tomorrow"},
            "Invalid value for field expiresAt: use an ISO 8601 date and time.",
        ),
        (
            {"name": "bad name!"},
            "The name 'bad name!' is not valid: use letters, digits, '.', '_', '-' and '@' "
            "(at most 255 characters).",
        ),
        ({"name": "admin-a"}, "The name 'admin-a' is already taken."),
    ],
)
def test_the_api_validates_input(api_client_for, admin_a, body, detail):
    response = api_client_for(admin_a).post("/api/account/api-keys", body, format="json")
    assert response.status_code == 400
    assert response.json()["detail"] == detail
    assert not Principal.objects.filter(type="apiKey").exists()


def test_the_api_revokes_a_key(api_client_for, admin_a):
    key, _ = api_key_create(actor=admin_a, name="k", permissions=["principal-list"])
    response = api_client_for(admin_a).delete(f"/api/account/api-keys/{key.pk}")
    assert response.status_code == 200
    assert response.json() == {"data": None}
    assert not Principal.objects.get(pk=key.pk).is_active


def test_the_api_answers_404_for_another_tenants_key(api_client_for, admin_a, admin_b):
    key, _ = api_key_create(actor=admin_a, name="k", permissions=["principal-list"])
    for path in (f"/api/account/api-keys/{key.pk}", "/api/account/api-keys/nonsense"):
        response = api_client_for(admin_b).delete(path)
        assert response.status_code == 404
        assert response.json()["detail"] == "The requested resource does not exist on this server."
    assert Principal.objects.get(pk=key.pk).is_active


def test_the_api_needs_the_key_permissions(api_client_for, user_a):
    client = api_client_for(user_a)
    assert client.get("/api/account/api-keys").json()["permission"] == "api-key-list"
    assert (
        client.post("/api/account/api-keys", {"name": "k"}, format="json").json()["permission"]
        == "api-key-create"
    )
    assert client.delete("/api/account/api-keys/1").json()["permission"] == "api-key-delete"


# --- console page ----------------------------------------------------------------------


def test_the_page_creates_a_key_and_shows_the_secret_once(client, admin_a):
    client.force_login(admin_a)
    response = client.post(
        "/account/api-keys/new/",
        {"name": "deploy", "permissions": ["principal-list"], "password": TEST_PASSWORD},
    )
    html = response.content.decode()
    assert response.status_code == 200
    start = html.index('id="api-key-secret">') + len('id="api-key-secret">')
    secret = html[start : html.index("<", start)]
    assert secret.startswith("ma_")
    key = Principal.objects.get(name="deploy")
    assert key.enabled_permissions == ["principal-list"]
    page = client.get("/account/api-keys/").content.decode()
    assert "deploy" in page and secret not in page


def test_the_page_gives_all_own_permissions_when_none_are_ticked(client, admin_a):
    client.force_login(admin_a)
    response = client.post("/account/api-keys/new/", {"name": "deploy", "password": TEST_PASSWORD})
    assert response.status_code == 200
    key = Principal.objects.get(name="deploy")
    assert key.all_owner_permissions
    assert "all of the owner's" in client.get("/account/api-keys/").content.decode()


def test_the_page_needs_the_current_password(client, admin_a):
    client.force_login(admin_a)
    response = client.post("/account/api-keys/new/", {"name": "deploy", "password": "wrong"})
    assert response.status_code == 422
    assert "Your current password is not correct." in response.content.decode()
    assert not Principal.objects.filter(name="deploy").exists()


def test_the_page_offers_only_the_creators_permissions(client, admin_a):
    client.force_login(admin_a)
    html = client.get("/account/api-keys/").content.decode()
    assert 'value="principal-list"' in html
    assert 'value="settings-update"' not in html
    response = client.post(
        "/account/api-keys/new/",
        {"name": "deploy", "permissions": ["settings-update"], "password": TEST_PASSWORD},
    )
    assert response.status_code == 422
    assert (
        "Select a valid choice. settings-update is not one of the available choices."
        in response.content.decode()
    )
    assert not Principal.objects.filter(name="deploy").exists()


def test_the_page_lists_last_use_and_revokes(client, admin_a, anon_api):
    key, secret = api_key_create(actor=admin_a, name="deploy", permissions=["principal-list"])
    _bearer(anon_api, secret).get("/api/")
    client.force_login(admin_a)
    html = client.get("/account/api-keys/").content.decode()
    row = html[html.index(f'id="api-key-{key.pk}"') :]
    row = row[: row.index("</tr>")]
    assert "never" not in row.split("</td>")[3]  # last used is filled in
    response = client.post(f"/account/api-keys/{key.pk}/revoke/")
    assert response["Location"] == "/account/api-keys/"
    assert not Principal.objects.get(pk=key.pk).is_active


def test_the_page_answers_404_for_another_tenants_key(client, admin_a, admin_b):
    key, _ = api_key_create(actor=admin_a, name="k", permissions=["principal-list"])
    client.force_login(admin_b)
    assert client.post(f"/account/api-keys/{key.pk}/revoke/").status_code == 404
    assert "k" not in [k.name for k in Principal.objects.filter(tenant=admin_b.tenant)]
    html = client.get("/account/api-keys/").content.decode()
    assert f'id="api-key-{key.pk}"' not in html


def test_the_pages_declare_their_permissions(client, user_a):
    from apps.accounts.auth import views as auth_views

    assert auth_views.api_keys.required_permission == "api-key-list"
    assert auth_views.api_key_create.required_permission == "api-key-create"
    assert auth_views.api_key_revoke.required_permission == "api-key-delete"
    client.force_login(user_a)
    assert client.get("/account/api-keys/").status_code == 403


def test_the_list_page_runs_a_constant_number_of_queries(
    client, admin_a, django_assert_max_num_queries
):
    for i in range(3):
        api_key_create(actor=admin_a, name=f"k{i}", permissions=["principal-list"])
    client.force_login(admin_a)
    client.get("/account/api-keys/")
    with django_assert_max_num_queries(12) as few:
        client.get("/account/api-keys/")
    for i in range(3, 13):
        api_key_create(actor=admin_a, name=f"k{i}", permissions=["principal-list"])
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get("/account/api-keys/")


# --- the owner's reach, checked at every request ---------------------------------------

API_KEY_REFUSED = (
    "An API key cannot change passwords, two-factor authentication, app passwords, "
    "API keys or encryption settings. Sign in with your account password (and second "
    "factor) to do this."
)
INVALID_BEARER = "The bearer token is invalid or has expired."


def _names(client) -> list[str]:
    response = client.get("/api/principal", {"limit": 100})
    assert response.status_code == 200
    return [item["name"] for item in response.json()["data"]["items"]]


def test_a_key_stops_working_the_moment_its_owner_is_deleted(api_root, anon_api, admin_a):
    key, secret = api_key_create(actor=admin_a, name="ci", permissions=["principal-list"])
    client = _bearer(anon_api, secret)
    assert client.get("/api/principal").status_code == 200
    assert api_root.delete("/api/principal/admin-a").status_code == 200
    response = client.get("/api/principal")
    assert response.status_code == 401
    assert response.json()["detail"] == INVALID_BEARER
    key.refresh_from_db()
    assert key.created_by_id is None and not key.is_active  # revoked, kept for the audit log
    revoked = AuditEvent.objects.get(action="api-key.revoke", object_id=str(key.pk))
    assert revoked.changes == {"reason": "owner admin-a deleted"}


def test_a_key_whose_owner_is_gone_by_any_path_does_not_authenticate(anon_api, admin_a):
    key, secret = api_key_create(actor=admin_a, name="ci", permissions=["principal-list"])
    Principal.objects.filter(pk=admin_a.pk).delete()  # not through the services
    assert _bearer(anon_api, secret).get("/api/").status_code == 401
    assert Principal.objects.filter(pk=key.pk, created_by=None, is_active=True).exists()


def test_a_key_of_a_disabled_owner_does_not_authenticate(anon_api, api_root, admin_a):
    key, secret = api_key_create(actor=admin_a, name="ci", permissions=["principal-list"])
    Principal.objects.filter(pk=admin_a.pk).update(is_active=False)
    response = _bearer(anon_api, secret).get("/api/")
    assert response.status_code == 401
    assert response.json()["detail"] == INVALID_BEARER
    (item,) = api_root.get("/api/account/api-keys").json()["data"]["items"]
    assert item["status"] == "owner-disabled" and item["effectivePermissions"] == []


def test_a_key_loses_a_permission_the_moment_its_owner_does(api_root, anon_api, admin_a):
    from apps.accounts.permissions import USER_PERMISSIONS

    _, secret = api_key_create(actor=admin_a, name="ci")  # all of the owner's
    client = _bearer(anon_api, secret)
    assert client.get("/api/principal").status_code == 200
    response = api_root.patch(
        "/api/principal/admin-a",
        [{"action": "set", "field": "roles", "value": ["user"]}],
        format="json",
    )
    assert response.status_code == 200
    response = client.get("/api/principal")
    assert response.status_code == 403
    assert response.json()["permission"] == "principal-list"
    assert client.get("/api/").json()["data"]["permissions"] == sorted(USER_PERMISSIONS)


def test_a_key_gains_nothing_its_list_does_not_name(api_root, anon_api, admin_a):
    _, secret = api_key_create(actor=admin_a, name="ci", permissions=["principal-list"])
    api_root.patch(
        "/api/principal/admin-a",
        [{"action": "addItem", "field": "enabledPermissions", "value": "audit-log-view"}],
        format="json",
    )
    assert _bearer(anon_api, secret).get("/api/").json()["data"]["permissions"] == [
        "principal-list"
    ]


def test_a_superadmins_key_lists_what_the_superadmin_lists(
    api_root, anon_api, superadmin, world_a, world_b
):
    _, secret = api_key_create(actor=superadmin, name="ops", permissions=["principal-list"])
    everything = _names(api_root)
    assert "tenant-a" in everything and "jane-b" in everything
    assert _names(_bearer(anon_api, secret)) == everything


def test_a_superadmins_key_manages_tenants(anon_api, superadmin):
    _, secret = api_key_create(
        actor=superadmin, name="ops", permissions=["principal-create", "tenant-create"]
    )
    response = _bearer(anon_api, secret).post(
        "/api/principal", {"type": "tenant", "name": "tenant-z"}, format="json"
    )
    assert response.status_code == 200
    assert Principal.objects.get(pk=response.json()["data"]).type == "tenant"


def test_a_tenant_admins_key_sees_only_its_tenant(anon_api, admin_a, world_a, world_b):
    _, secret = api_key_create(
        actor=admin_a, name="ci", permissions=["principal-list", "principal-get"]
    )
    client = _bearer(anon_api, secret)
    assert set(_names(client)) == set(
        Principal.objects.filter(tenant=admin_a.tenant).values_list("name", flat=True)
    )
    assert client.get(f"/api/principal/{world_b.account.pk}").status_code == 404
    assert client.get(f"/api/principal/{world_a.account.pk}").status_code == 200


def test_a_narrowed_superadmin_key_cannot_grant_more_than_it_holds(anon_api, superadmin, world_a):
    _, secret = api_key_create(
        actor=superadmin, name="ops", permissions=["principal-create", "principal-list"]
    )
    client = _bearer(anon_api, secret)
    response = client.post(
        "/api/principal",
        {"type": "individual", "name": "mallory", "roles": ["admin"], "secrets": TEST_PASSWORD},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["detail"] == "Only a superadmin can grant the role admin."
    response = client.post(
        "/api/principal",
        {
            "type": "individual",
            "name": "mallory",
            "tenant": "tenant-a",
            "enabledPermissions": ["principal-delete"],
        },
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["detail"] == (
        "You can't grant the permission 'principal-delete' because you don't hold it."
    )
    assert not Principal.objects.filter(name="mallory").exists()


def test_a_key_cannot_make_or_revoke_keys(anon_api, admin_a):
    other, _ = api_key_create(actor=admin_a, name="other", permissions=["principal-list"])
    _, secret = api_key_create(
        actor=admin_a, name="ci", permissions=["api-key-create", "api-key-delete"]
    )
    client = _bearer(anon_api, secret)
    response = client.post("/api/account/api-keys", {"name": "child"}, format="json")
    assert response.status_code == 403
    assert response.json()["detail"] == API_KEY_REFUSED
    response = client.delete(f"/api/account/api-keys/{other.pk}")
    assert response.status_code == 403
    assert response.json()["detail"] == API_KEY_REFUSED
    assert not Principal.objects.filter(name="child").exists()
    assert Principal.objects.get(pk=other.pk).is_active


def test_a_key_cannot_change_its_owners_password_but_may_set_others(anon_api, admin_a, user_a):
    _, secret = api_key_create(
        actor=admin_a, name="ci", permissions=["principal-get", "principal-update"]
    )
    client = _bearer(anon_api, secret)
    new = [{"action": "set", "field": "secrets", "value": "a new long password 1"}]
    response = client.patch("/api/principal/admin-a", new, format="json")
    assert response.status_code == 403
    assert response.json()["detail"] == API_KEY_REFUSED
    assert Principal.objects.get(pk=admin_a.pk).check_password(TEST_PASSWORD)
    assert client.patch("/api/principal/user-a", new, format="json").status_code == 200
    assert Principal.objects.get(pk=user_a.pk).check_password("a new long password 1")


# --- POST/DELETE /api/principal: the same keys ------------------------------------------

NEW_SECRET = "k" * 8 + "3kQm9vT2xR7pL4sW8nB6yF1hJ5dG0cZ"


def test_post_principal_makes_the_same_key(api_client_for, anon_api, admin_a):
    client = api_client_for(admin_a)
    response = client.post(
        "/api/principal",
        {
            "type": "apiKey",
            "name": "deploy",
            "description": "CI",
            "enabledPermissions": ["principal-list"],
            "secrets": [NEW_SECRET],
        },
        format="json",
    )
    assert response.status_code == 200
    key = Principal.objects.get(pk=response.json()["data"])
    assert (key.type, key.tenant_id, key.created_by_id) == ("apiKey", admin_a.tenant_id, admin_a.pk)
    assert key.enabled_permissions == ["principal-list"] and not key.all_owner_permissions
    token = AccessToken.objects.get(principal=key)
    assert token.kind == "apiKey" and token.token_hash == hash_token(NEW_SECRET)
    assert _bearer(anon_api, NEW_SECRET).get("/api/").json()["data"]["permissions"] == [
        "principal-list"
    ]
    (item,) = client.get("/api/account/api-keys").json()["data"]["items"]
    assert (item["name"], item["owner"], item["description"]) == ("deploy", "admin-a", "CI")
    assert AuditEvent.objects.filter(action="api-key.create", object_id=str(key.pk)).exists()


def test_post_principal_without_a_list_gives_all_of_the_owners(api_client_for, admin_a):
    response = api_client_for(admin_a).post(
        "/api/principal",
        {"type": "apiKey", "name": "deploy", "secrets": NEW_SECRET},
        format="json",
    )
    key = Principal.objects.get(pk=response.json()["data"])
    assert key.all_owner_permissions and key.permissions == admin_a.permissions


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (
            {},
            "Missing required field: secrets (the key's bearer secret; POST "
            "/api/account/api-keys generates one instead)",
        ),
        (
            {"secrets": "short"},
            "Invalid value for field secrets: an API key's secret needs 32 to 256 characters.",
        ),
        (
            {"secrets": NEW_SECRET, "tenant": "tenant-b"},
            "An API key belongs to its owner's tenant: leave tenant out.",
        ),
        (
            {"secrets": NEW_SECRET, "roles": ["user"]},
            "The field roles does not apply when creating an API key.",
        ),
        (
            {"secrets": NEW_SECRET, "enabledPermissions": ["logs-view"]},
            "You cannot grant the permission 'logs-view': you do not have it.",
        ),
    ],
)
def test_post_principal_validates_a_key(api_client_for, admin_a, tenant_b, body, detail):
    response = api_client_for(admin_a).post(
        "/api/principal", {"type": "apiKey", "name": "deploy", **body}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["detail"] == detail
    assert not Principal.objects.filter(type="apiKey").exists()


def test_delete_principal_revokes_a_key_and_keeps_it(api_client_for, anon_api, admin_a):
    key, secret = api_key_create(actor=admin_a, name="ci", permissions=["principal-list"])
    client = api_client_for(admin_a)
    assert client.delete(f"/api/principal/{key.pk}").status_code == 200
    assert _bearer(anon_api, secret).get("/api/").status_code == 401
    assert not Principal.objects.get(pk=key.pk).is_active
    assert AccessToken.objects.get(principal=key).revoked_at is not None
    (item,) = client.get("/api/account/api-keys").json()["data"]["items"]
    assert item["status"] == "revoked"
    assert not AuditEvent.objects.filter(action="principal.delete").exists()
    assert AuditEvent.objects.filter(action="api-key.revoke", object_id=str(key.pk)).exists()


def test_setting_a_list_on_an_all_key_narrows_it(api_client_for, anon_api, admin_a):
    key, secret = api_key_create(actor=admin_a, name="ci")
    response = api_client_for(admin_a).patch(
        f"/api/principal/{key.pk}",
        [{"action": "set", "field": "enabledPermissions", "value": ["principal-list"]}],
        format="json",
    )
    assert response.status_code == 200
    assert not Principal.objects.get(pk=key.pk).all_owner_permissions
    assert _bearer(anon_api, secret).get("/api/").json()["data"]["permissions"] == [
        "principal-list"
    ]


def test_the_list_api_runs_a_constant_number_of_queries(
    api_client_for, admin_a, make_principal, tenant_a, django_assert_max_num_queries
):
    client = api_client_for(admin_a)
    api_key_create(actor=admin_a, name="k0")
    client.get("/api/account/api-keys")
    with django_assert_max_num_queries(12) as few:
        client.get("/api/account/api-keys")
    for i in range(1, 11):
        owner = make_principal(name=f"owner{i}", tenant=tenant_a, roles=["tenant-admin"])
        api_key_create(actor=owner, name=f"k{i}", permissions=["principal-list"])
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get("/api/account/api-keys")
    assert response.json()["data"]["total"] == 11


def test_the_accounts_pages_send_new_keys_to_the_api_key_page(client, admin_a):
    client.force_login(admin_a)
    response = client.get("/accounts/new/?type=apiKey")
    assert response.status_code == 302
    assert response["Location"] == "/account/api-keys/"


def test_a_superadmins_key_counts_as_a_superadmin_for_the_self_check(superadmin, admin_a):
    from apps.accounts.auth.tokens import principal_for_token
    from apps.telemetry.selectors import SuperadminOnly, require_superadmin

    _, secret = api_key_create(actor=superadmin, name="ops", permissions=["troubleshoot"])
    require_superadmin(principal_for_token(secret))
    _, secret = api_key_create(actor=admin_a, name="ci", permissions=["troubleshoot"])
    with pytest.raises(SuperadminOnly):
        require_superadmin(principal_for_token(secret))


def test_a_superadmins_key_makes_server_wide_principals_like_its_owner(anon_api, superadmin):
    _, secret = api_key_create(
        actor=superadmin, name="ops", permissions=["principal-create", "domain-create"]
    )
    response = _bearer(anon_api, secret).post(
        "/api/principal", {"type": "domain", "name": "example.org"}, format="json"
    )
    assert response.status_code == 200
    assert Principal.objects.get(pk=response.json()["data"]).tenant_id is None
