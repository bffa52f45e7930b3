"""Security headers of the console: a Content-Security-Policy with a nonce per request, a
Permissions-Policy, and the htmx config that keeps htmx working under them."""

import json
import re

import pytest

pytestmark = pytest.mark.django_db


def _policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {d.split()[0]: d.split()[1:] for d in header.split("; ")}


def _nonce(response) -> str:
    (nonce,) = re.findall(r"'nonce-([^']+)'", _policy(response)["script-src"][1])
    return nonce


@pytest.fixture
def root(client, superadmin):
    client.force_login(superadmin)
    return client


PAGES = [
    "/",
    "/accounts/",
    "/accounts/new/?type=individual",
    "/accounts/audit/",
    "/account/security/",
    "/account/app-passwords/",
    "/account/api-keys/",
    "/domains/",
    "/telemetry/",
    "/queue/",
    "/api/docs/",
    "/api/schema/",
    "/api/principal",
    "/admin/",
    "/admin/accounts/principal/",
    "/accounts/999999/",  # our 404 page
    "/api/nowhere",
]


@pytest.mark.parametrize("path", PAGES)
def test_every_response_carries_both_policies(root, path):
    response = root.get(path)
    policy = _policy(response)
    assert policy["script-src"][0] == "'self'"
    assert policy["script-src"][1].startswith("'nonce-")
    assert len(policy["script-src"]) == 2  # never 'unsafe-inline' or 'unsafe-eval'
    assert policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["default-src"] == ["'self'"]
    for feature in ("camera", "microphone", "geolocation", "payment", "usb"):
        assert f"{feature}=()" in response["Permissions-Policy"]


def test_the_login_page_and_anonymous_redirects_carry_them_too(client):
    for response in (client.get("/login/"), client.get("/accounts/")):
        assert "script-src 'self' 'nonce-" in response["Content-Security-Policy"]
        assert "camera=()" in response["Permissions-Policy"]


def test_console_pages_allow_no_inline_style_without_the_nonce(root):
    policy = _policy(root.get("/"))
    assert policy["style-src"][0] == "'self'" and policy["style-src"][1].startswith("'nonce-")
    assert policy["img-src"] == ["'self'", "data:"]


def test_the_django_admin_may_use_inline_styles_but_not_scripts(root):
    policy = _policy(root.get("/admin/accounts/principal/"))
    assert policy["style-src"] == ["'self'", "'unsafe-inline'"]
    assert policy["script-src"][0] == "'self'" and len(policy["script-src"]) == 2


def test_each_request_gets_its_own_nonce(root):
    assert _nonce(root.get("/")) != _nonce(root.get("/"))


def test_swagger_ui_runs_its_inline_script_and_style_with_the_nonce(root):
    response = root.get("/api/docs/")
    page = response.content.decode()
    nonce = _nonce(response)
    assert page.count(f'nonce="{nonce}"') == 2
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", page) == [f'<script nonce="{nonce}">']
    assert '"validatorUrl": null' in page  # no badge fetched from validator.swagger.io


def test_console_templates_hold_no_inline_script_or_style(client, admin_a):
    client.force_login(admin_a)
    for path in (
        "/",
        "/accounts/",
        f"/accounts/{admin_a.pk}/permissions/",
        "/account/api-keys/",
        "/account/security/totp/",
        "/domains/",
    ):
        page = client.get(path).content.decode()
        assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", page) == [], path
        assert "<style" not in page and " style=" not in page, path


def test_django_debug_pages_go_without_the_policy(client, settings):
    settings.DEBUG = True
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert "Content-Security-Policy" not in response
    assert "camera=()" in response["Permissions-Policy"]


def test_htmx_swaps_422_and_runs_without_eval_or_injected_styles(root):
    page = root.get("/").content.decode()
    (raw,) = re.findall(r"<meta name=\"htmx-config\" content='([^']+)'>", page)
    config = json.loads(raw)
    codes = [(rule["code"], rule["swap"]) for rule in config["responseHandling"]]
    assert codes.index(("422", True)) < codes.index(("[45]..", False))
    assert config["includeIndicatorStyles"] is False
    assert config["allowEval"] is False
    assert config["allowScriptTags"] is False
