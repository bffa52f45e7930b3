"""POST /api/oauth (a code for the caller) and the token endpoint (RFC 6749 §4.1.3)."""

import base64
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.utils import timezone

from apps.accounts.auth.tokens import hash_token
from apps.accounts.models import AccessToken, OAuthCode
from tests.conftest import TEST_PASSWORD

pytestmark = pytest.mark.django_db

SPEC_BODY = {
    "type": "code",
    "client_id": "webadmin",
    "redirect_uri": "stalwart://auth",
    "nonce": "ttsaXca3qx",
}


def _code(client) -> str:
    response = client.post("/api/oauth", SPEC_BODY, format="json")
    assert response.status_code == 200
    return response.json()["data"]["code"]


def _exchange(anon_api, the_code, **overrides):
    body = {
        "grant_type": "authorization_code",
        "code": the_code,
        "client_id": "webadmin",
        "redirect_uri": "stalwart://auth",
        **overrides,
    }
    return anon_api.post(  # form-encoded, as RFC 6749 says
        "/api/oauth/token", urlencode(body), content_type="application/x-www-form-urlencoded"
    )


def test_it_issues_a_code_with_the_callers_permissions(api_client_for, admin_a):
    response = api_client_for(admin_a).post("/api/oauth", SPEC_BODY, format="json")
    assert response.status_code == 200
    data = response.json()["data"]
    assert set(data) == {"code", "permissions", "version", "isEnterprise"}
    assert len(data["code"]) == 40
    assert data["permissions"] == sorted(admin_a.permissions)
    assert data["version"] == "0.1.0"
    assert data["isEnterprise"] is False
    row = OAuthCode.objects.get()
    assert row.code_hash == hash_token(data["code"])
    assert row.client_id == "webadmin" and row.redirect_uri == "stalwart://auth"
    assert timedelta(minutes=4) < row.expires_at - timezone.now() <= timedelta(minutes=5)


def test_it_issues_a_code_over_http_basic(anon_api, user_a):
    credentials = base64.b64encode(f"user-a:{TEST_PASSWORD}".encode()).decode()
    response = anon_api.post(
        "/api/oauth", SPEC_BODY, format="json", HTTP_AUTHORIZATION=f"Basic {credentials}"
    )
    assert response.status_code == 200
    assert "manage-passwords" in response.json()["data"]["permissions"]


def test_it_answers_401_with_the_spec_body_when_unauthenticated(anon_api):
    response = anon_api.post("/api/oauth", SPEC_BODY, format="json")
    assert response.status_code == 401
    assert response.json() == {
        "type": "about:blank",
        "status": 401,
        "title": "Unauthorized",
        "detail": "You have to authenticate first.",
    }


def test_it_only_knows_the_code_type(api_client_for, user_a):
    response = api_client_for(user_a).post("/api/oauth", {"type": "device"}, format="json")
    assert response.status_code == 400
    assert response.json()["detail"] == "Invalid value for field type: device (use code)"


def test_a_code_is_exchanged_for_a_bearer_token(api_client_for, anon_api, user_a):
    code = _code(api_client_for(user_a))
    response = _exchange(anon_api, code)
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    token = AccessToken.objects.get(token_hash=hash_token(body["access_token"]))
    assert token.kind == "oauth" and token.principal_id == user_a.pk
    assert timedelta(minutes=59) < token.expires_at - timezone.now() <= timedelta(hours=1)
    anon_api.credentials(HTTP_AUTHORIZATION=f"Bearer {body['access_token']}")
    assert anon_api.get("/api/").json()["data"]["name"] == "user-a"


def test_the_exchange_accepts_json_too(api_client_for, anon_api, user_a):
    code = _code(api_client_for(user_a))
    response = anon_api.post(
        "/api/oauth/token",
        {"grant_type": "authorization_code", "code": code, "client_id": "webadmin",
         "redirect_uri": "stalwart://auth"},
        format="json",
    )  # fmt: skip
    assert response.status_code == 200


def test_a_code_works_once_and_a_replay_revokes_its_token(api_client_for, anon_api, user_a):
    code = _code(api_client_for(user_a))
    token = _exchange(anon_api, code).json()["access_token"]
    response = _exchange(anon_api, code)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert AccessToken.objects.get(token_hash=hash_token(token)).revoked_at is not None


def test_an_expired_code_is_refused(api_client_for, anon_api, user_a):
    code = _code(api_client_for(user_a))
    OAuthCode.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = _exchange(anon_api, code)
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_grant",
        "error_description": "The code has expired.",
    }


@pytest.mark.parametrize(
    "overrides",
    [
        {"code": "made-up"},
        {"client_id": "someone-else"},
        {"redirect_uri": "https://evil.test/cb"},
    ],
)
def test_a_wrong_code_or_client_is_invalid_grant(api_client_for, anon_api, user_a, overrides):
    code = _code(api_client_for(user_a))
    response = _exchange(anon_api, code, **overrides)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert not AccessToken.objects.filter(
        kind="oauth", principal=user_a, name__startswith="oauth:"
    ).exists()


def test_rfc_6749_request_errors(anon_api):
    assert _exchange(anon_api, "x", grant_type="password").json() == {
        "error": "unsupported_grant_type"
    }
    empty = anon_api.post("/api/oauth/token", "", content_type="application/x-www-form-urlencoded")
    assert empty.json() == {
        "error": "invalid_request",
        "error_description": "Missing parameter: grant_type",
    }
    response = anon_api.post("/api/oauth/token", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_a_token_of_a_deactivated_account_is_not_issued(api_client_for, anon_api, user_a):
    code = _code(api_client_for(user_a))
    type(user_a).objects.filter(pk=user_a.pk).update(is_active=False)
    assert _exchange(anon_api, code).json()["error"] == "invalid_grant"


def test_an_expired_token_stops_working(api_client_for, anon_api, user_a):
    token = _exchange(anon_api, _code(api_client_for(user_a))).json()["access_token"]
    AccessToken.objects.filter(token_hash=hash_token(token)).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    anon_api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert anon_api.get("/api/").status_code == 401


def test_delete_revokes_the_callers_token(api_client_for, anon_api, user_a):
    token = _exchange(anon_api, _code(api_client_for(user_a))).json()["access_token"]
    anon_api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    response = anon_api.delete("/api/oauth/token")
    assert response.status_code == 200
    assert response.json() == {"data": None}
    assert anon_api.get("/api/").status_code == 401


def test_delete_does_not_revoke_an_api_key(anon_api, admin_a):
    from apps.accounts.auth.api_keys import api_key_create

    _, secret = api_key_create(actor=admin_a, name="k", permissions=["principal-list"])
    anon_api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    response = anon_api.delete("/api/oauth/token")
    assert response.status_code == 400
    assert anon_api.get("/api/").status_code == 200


def test_delete_needs_authentication(anon_api):
    assert anon_api.delete("/api/oauth/token").status_code == 401


def test_codes_and_tokens_never_reach_the_audit_log(api_client_for, anon_api, user_a):
    from mailadmin.core.models import AuditEvent

    code = _code(api_client_for(user_a))
    token = _exchange(anon_api, code).json()["access_token"]
    dump = str(list(AuditEvent.objects.values()))
    assert code not in dump and token not in dump
    assert AuditEvent.objects.filter(action="oauth-token.issue").exists()
