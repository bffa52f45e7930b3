"""No server errors, and every error under /api/ in the API's shape (problem JSON).

The inputs are the ones found by probing from outside; each used to be a 500.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from django.urls import include, path
from rest_framework.test import APIClient

from apps.accounts.models import AppPassword, Principal
from mailadmin.api.permissions import PUBLIC
from mailadmin.api.views import MethodPermissionApi

pytestmark = pytest.mark.django_db

HUGE = "99999999999999999999"


def problem(response, status: int) -> dict:
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["status"] == status and body["type"] == "about:blank"
    return body


def assert_field_error(response, field: str, message: str) -> None:
    body = problem(response, 400)
    assert body["detail"] == message
    assert body["errors"] == [{"field": field, "message": message}]


# --- numbers too large to store or count ---------------------------------------------------


@pytest.mark.parametrize("url", ["/api/principal", "/api/audit", "/api/dkim"])
def test_it_refuses_a_page_past_the_last_possible_one(api_root, url):
    assert_field_error(
        api_root.get(url, {"page": HUGE}),
        "page",
        "Invalid value for field page: Ensure this value is less than or equal to 1000000.",
    )


def test_it_refuses_a_huge_max_total_naming_it_as_spelled(api_root):
    assert_field_error(
        api_root.get("/api/principal", {"max-total": HUGE}),
        "max-total",
        "Invalid value for field max-total: Ensure this value is less than or equal to 1000000.",
    )


@pytest.mark.parametrize("url", ["/accounts/", "/accounts/audit/", "/domains/"])
def test_it_shows_the_first_page_of_a_console_list_for_a_huge_page(client, superadmin, url):
    client.force_login(superadmin)
    assert client.get(url, {"page": HUGE}).status_code == 200


def test_it_refuses_a_tenant_limit_the_database_cant_hold(api_root):
    response = api_root.post(
        "/api/principal",
        {"type": "tenant", "name": "big", "maxAccounts": 18446744073709551616},
        format="json",
    )
    assert_field_error(
        response,
        "maxAccounts",
        "Invalid value for field maxAccounts: "
        "Ensure this value is less than or equal to 2147483647.",
    )
    assert not Principal.objects.filter(name="big").exists()


def test_it_refuses_a_huge_quota_in_a_patch(api_root, tenant_a):
    response = api_root.patch(
        f"/api/principal/{tenant_a.pk}",
        [{"action": "set", "field": "quota", "value": 2**64}],
        format="json",
    )
    assert_field_error(
        response,
        "quota",
        "Invalid value for field quota: "
        "Ensure this value is less than or equal to 9223372036854775807.",
    )


@pytest.mark.parametrize(
    "url", ["/api/dkim/" + HUGE, "/accounts/" + HUGE + "/", "/domains/" + HUGE + "/"]
)
def test_it_answers_404_for_an_id_too_long_to_exist(api_root, client, superadmin, url):
    if url.startswith("/api/"):
        problem(api_root.delete(url), 404)
    else:
        client.force_login(superadmin)
        assert client.get(url).status_code == 404


# --- bodies nested too deep, too large, or of the wrong shape --------------------------------


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_it_refuses_a_body_nested_a_thousand_levels(api_root):
    response = api_root.post("/api/principal", nested(1000), content_type="application/json")
    assert_field_error(response, "body", "Malformed request body: nested deeper than 32 levels.")


def test_it_names_the_field_that_is_nested_too_deep(api_root):
    body = '{"type": "group", "name": ' + nested(1000) + "}"
    response = api_root.post("/api/principal", body, content_type="application/json")
    assert_field_error(response, "body", "Malformed request body: nested deeper than 32 levels.")
    body = '{"type": "group", "name": ' + nested(100) + "}"
    response = api_root.post("/api/principal", body, content_type="application/json")
    assert_field_error(
        response, "name", "Invalid value for field name: nested deeper than 32 levels."
    )


def test_it_refuses_malformed_json_naming_the_body(api_root):
    response = api_root.post("/api/principal", '{"type": ', content_type="application/json")
    body = problem(response, 400)
    assert body["detail"].startswith("Malformed request body: Expecting value")
    assert body["errors"][0]["field"] == "body"


def test_it_answers_413_for_a_body_over_the_limit(api_root, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    body = json.dumps({"type": "group", "name": "g", "description": "x" * 2000})
    response = api_root.post("/api/principal", body, content_type="application/json")
    body = problem(response, 413)
    assert body["detail"] == "The request body is larger than the limit of 1024 bytes."
    assert body["title"] == "Payload Too Large"


def test_it_answers_413_for_a_form_over_the_limit(anon_api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    response = anon_api.post(
        "/api/oauth/token",
        urlencode({"grant_type": "authorization_code", "code": "x" * 2000}),
        content_type="application/x-www-form-urlencoded",
    )
    body = problem(response, 413)
    assert body["detail"] == "The request body is larger than the limit of 1024 bytes."


def test_it_refuses_an_action_type_that_is_not_a_string(api_client_for, user_a):
    response = api_client_for(user_a).post("/api/account/auth", [{"type": {}}], format="json")
    assert_field_error(response, "[0].type", "Invalid value for field type: expected a string.")


def test_it_refuses_a_nul_byte_in_an_app_password_name(api_client_for, user_a):
    response = api_client_for(user_a).post(
        "/api/account/auth",
        [{"type": "addAppPassword", "name": "phone\x00", "password": "a-long-app-password"}],
        format="json",
    )
    assert_field_error(
        response, "name", "Invalid value for field name: Null characters are not allowed."
    )
    assert not AppPassword.objects.exists()


def test_it_refuses_nul_bytes_like_every_other_field(api_root):
    response = api_root.post(
        "/api/principal", {"type": "group", "name": "g", "description": "a\x00"}, format="json"
    )
    assert_field_error(
        response,
        "description",
        "Invalid value for field description: Null characters are not allowed.",
    )
    response = api_root.post("/api/account/api-keys", {"name": "k\x00"}, format="json")
    assert_field_error(
        response, "name", "Invalid value for field name: Null characters are not allowed."
    )


def test_it_refuses_nul_and_lone_surrogates_anywhere_in_a_json_body(api_root):
    """The parser refuses them under the key they stand under, nested or in a list: no
    column can hold either, and fields no DRF CharField checks reached the database."""
    for body, field, what in [
        (b'{"message": "x", "envRcptTo": ["a\\u0000"]}', "envRcptTo", "Null characters"),
        (b'{"message": "x\\udcff"}', "message", "Surrogate characters"),
        (b'{"message": "x", "a\\u0000": 1}', "body", "Null characters"),
    ]:
        response = api_root.post("/api/spam-filter/classify", body, content_type="application/json")
        assert response.status_code == 400
        assert response.json()["errors"][0]["field"] == field
        assert what in response.json()["detail"]


def test_it_answers_404_for_a_nul_byte_in_the_path(api_root):
    problem(api_root.get("/api/principal/a%00b"), 404)


# --- the format parameter ---------------------------------------------------------------


def test_it_renders_the_format_the_query_asks_for(api_root):
    response = api_root.get("/api/principal", {"format": "xml", "types": "tenant"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/xml")
    response = api_root.get("/api/principal", {"format": "json"}, HTTP_ACCEPT="text/xml")
    assert response.json()["data"]["total"] >= 0


@pytest.mark.parametrize("value", ["yaml", ""])
def test_it_refuses_a_format_it_does_not_have(api_root, value):
    assert_field_error(
        api_root.get("/api/principal", {"format": value}),
        "format",
        "Invalid value for field format: use json or xml.",
    )


# --- errors outside the API views: still problem JSON ----------------------------------------


class BoomApi(MethodPermissionApi):
    method_permissions = {"GET": PUBLIC}

    def get(self, request):
        raise RuntimeError("boom")


def boom_page(request):
    raise RuntimeError("boom")


urlpatterns = [
    path("api/boom", BoomApi.as_view()),
    path("api/boom-page", boom_page),
    path("", include("mailadmin.urls")),
]


def test_it_answers_an_unknown_api_path_with_problem_json(anon_api, api_root):
    for client in (anon_api, api_root):
        body = problem(client.get("/api/no/such/thing"), 404)
        assert body["detail"] == "The requested resource does not exist on this server."


def test_it_answers_a_method_not_allowed_with_problem_json(api_root):
    body = problem(api_root.delete("/api/principal"), 405)
    assert body["detail"] == 'Method "DELETE" not allowed.'


@pytest.mark.urls(__name__)
@pytest.mark.parametrize("url", ["/api/boom", "/api/boom-page"])
def test_it_answers_a_server_error_with_problem_json(url, caplog):
    client = APIClient()
    client.raise_request_exception = False
    body = problem(client.get(url), 500)
    assert body["title"] == "Internal Server Error"
    assert (
        body["detail"] == "The server failed to carry out the request; the error has been logged."
    )
    assert "boom" not in json.dumps(body)
    assert any(r.exc_info and "boom" in str(r.exc_info[1]) for r in caplog.records)


@pytest.mark.urls(__name__)
def test_it_leaves_the_console_error_pages_alone(client):
    client.raise_request_exception = False
    assert client.get("/no/such/page/").status_code == 404
    assert "text/html" in client.get("/no/such/page/")["Content-Type"]


def test_it_keeps_xml_well_formed_when_echoing_control_characters(api_root):
    from defusedxml import ElementTree

    response = api_root.get("/api/principal", {"bad\x01": "1"}, HTTP_ACCEPT="application/xml")
    assert response.status_code == 400
    root = ElementTree.fromstring(response.content)
    assert root.findtext("detail") == "Unrecognized field: bad\ufffd"


def test_it_reads_an_empty_query_filter_as_no_filter(api_root):
    response = api_root.get("/api/audit", {"action": "", "since": "", "interface": ""})
    assert response.status_code == 200
