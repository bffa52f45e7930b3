"""API keys: apiKey principals in the creator's tenant, a subset of its permissions, shown once."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.accounts.auth.api_keys import api_key_create, api_key_revoke
from apps.accounts.auth.tokens import hash_token
from apps.accounts.models import AccessToken, Principal
from mailadmin.core.models import AuditEvent
from mailadmin.errors import NotFound, PermissionDenied, ServiceError

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


def test_without_permissions_a_key_gets_a_snapshot_of_the_creators(admin_a):
    key, _ = api_key_create(actor=admin_a, name="all")
    assert set(key.enabled_permissions) == set(admin_a.permissions)


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
    assert exc.value.message == "A principal named 'user-a' already exists."


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
    assert set(data) == {"id", "name", "secret"}
    assert data["name"] == "ci" and data["secret"].startswith("ma_")
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
    assert items[0]["lastUsedAt"] is None and items[0]["revoked"] is False


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
        "/account/api-keys/new/", {"name": "deploy", "permissions": ["principal-list"]}
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
    assert client.post("/account/api-keys/new/", {"name": "deploy"}).status_code == 200
    key = Principal.objects.get(name="deploy")
    assert set(key.enabled_permissions) == set(admin_a.permissions)


def test_the_page_offers_only_the_creators_permissions(client, admin_a):
    client.force_login(admin_a)
    html = client.get("/account/api-keys/").content.decode()
    assert 'value="principal-list"' in html
    assert 'value="settings-update"' not in html
    response = client.post(
        "/account/api-keys/new/", {"name": "deploy", "permissions": ["settings-update"]}
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
