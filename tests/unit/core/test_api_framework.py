"""The API conventions every app relies on: envelope, problems, auth, XML, versions."""

import base64

import pytest
from defusedxml import ElementTree

from tests.conftest import TEST_PASSWORD

pytestmark = pytest.mark.django_db


def test_it_answers_401_with_the_problem_body_when_unauthenticated(anon_api):
    response = anon_api.get("/api/")
    assert response.status_code == 401
    assert response.json() == {
        "type": "about:blank",
        "status": 401,
        "title": "Unauthorized",
        "detail": "You have to authenticate first.",
    }
    assert response["WWW-Authenticate"] == 'Bearer realm="mailadmin"'


def test_it_renders_xml_when_asked(anon_api):
    response = anon_api.get("/api/", HTTP_ACCEPT="text/xml")
    assert response.status_code == 401
    assert response["Content-Type"].startswith("text/xml")
    root = ElementTree.fromstring(response.content)
    assert root.tag == "response"
    assert root.findtext("status") == "401"
    assert root.findtext("detail") == "You have to authenticate first."


def test_it_renders_xml_of_the_envelope(api_client_for, admin_a):
    response = api_client_for(admin_a).get("/api/", HTTP_ACCEPT="application/xml")
    root = ElementTree.fromstring(response.content)
    assert root.findtext("data/name") == "admin-a"
    assert "principal-list" in [e.text for e in root.findall("data/permissions/item")]


def test_it_falls_back_to_json_for_unknown_accept(api_client_for, admin_a):
    response = api_client_for(admin_a).get("/api/", HTTP_ACCEPT="image/png")
    assert response.status_code == 200
    assert response.json()["data"]["name"] == "admin-a"


def test_it_accepts_a_bearer_token_and_wraps_data(api_client_for, admin_a):
    response = api_client_for(admin_a).get("/api/")
    assert response.status_code == 200
    body = response.json()
    assert body["data"]["name"] == "admin-a"
    assert body["data"]["tenant"] == "tenant-a"
    assert "tenant-create" not in body["data"]["permissions"]
    assert response["x-api-version"] == "1"


def test_it_rejects_an_unknown_bearer_token(anon_api):
    response = anon_api.get("/api/", HTTP_AUTHORIZATION="Bearer ma_nonsense")
    assert response.status_code == 401
    assert response.json()["detail"] == "The bearer token is invalid or has expired."


def test_it_rejects_a_revoked_token(api_client_for, admin_a):
    from django.utils import timezone

    from apps.accounts.models import AccessToken

    client = api_client_for(admin_a)
    AccessToken.objects.filter(principal=admin_a).update(revoked_at=timezone.now())
    assert client.get("/api/").status_code == 401


def test_it_accepts_http_basic_with_the_password(anon_api, admin_a):
    credentials = base64.b64encode(f"admin-a:{TEST_PASSWORD}".encode()).decode()
    response = anon_api.get("/api/", HTTP_AUTHORIZATION=f"Basic {credentials}")
    assert response.status_code == 200
    assert response.json()["data"]["name"] == "admin-a"


def test_it_rejects_http_basic_with_a_wrong_password(anon_api, admin_a):
    credentials = base64.b64encode(b"admin-a:wrong").decode()
    response = anon_api.get("/api/", HTTP_AUTHORIZATION=f"Basic {credentials}")
    assert response.status_code == 401
    assert response.json()["detail"] == "Invalid username or password."


def test_it_rejects_malformed_basic_credentials(anon_api):
    response = anon_api.get("/api/", HTTP_AUTHORIZATION="Basic !!!")
    assert response.status_code == 401
    assert response.json()["detail"] == "Malformed Basic credentials."


def test_it_accepts_a_supported_api_version(api_client_for, admin_a):
    response = api_client_for(admin_a).get("/api/", HTTP_X_API_VERSION="1")
    assert response.status_code == 200


def test_it_rejects_an_unsupported_api_version(api_client_for, admin_a):
    response = api_client_for(admin_a).get("/api/", HTTP_X_API_VERSION="7")
    assert response.status_code == 400
    assert response.json()["detail"] == "Unsupported API version: 7. Supported: 1"


def test_it_names_the_missing_permission(api_client_for, user_a):
    response = api_client_for(user_a).post("/api/telemetry/self-check")
    assert response.status_code == 403
    body = response.json()
    assert body["permission"] == "troubleshoot"
    assert body["detail"] == "You do not have the permission 'troubleshoot' needed for this."


def test_it_serves_an_openapi_3_schema(anon_api):
    response = anon_api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert "/api/telemetry/self-check" in schema["paths"]
    assert set(schema["components"]["securitySchemes"]) == {
        "bearerAuth",
        "basicAuth",
        "cookieAuth",
    }


def test_it_serves_the_docs_page_from_vendored_assets(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    assert "cdn" not in html.lower()
    assert "/static/drf_spectacular_sidecar/" in html


def test_it_answers_404_with_the_spec_body_for_a_missing_task(api_client_for, admin_a):
    response = api_client_for(admin_a).get("/api/task/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404
    assert response.json() == {
        "type": "about:blank",
        "status": 404,
        "title": "Not Found",
        "detail": "The requested resource does not exist on this server.",
    }
