"""The API-key form: permissions grouped by area with a select-all per group; after a
create the address bar shows the list page."""

import re

import pytest

from apps.accounts.models import Principal
from tests.conftest import TEST_PASSWORD

pytestmark = pytest.mark.django_db


def test_it_groups_the_held_permissions_by_area(console_a):
    page = console_a.get("/account/api-keys/").content.decode()
    groups = re.findall(r'id="permissions-([a-z-]+)"', page)
    assert groups[:3] == ["accounts-and-access", "own-account", "domains-dkim-and-dns"]
    domains = page.split('id="permissions-domains-dkim-and-dns"', 1)[1].split("</fieldset>", 1)[0]
    assert 'value="dns-check"' in domains and 'value="principal-list"' not in domains
    assert "Select all" in domains and "data-select-all" in domains
    # A tenant admin holds no server-wide permission, so none is offered.
    assert 'value="settings-update"' not in page and "permissions-settings-and-server" not in page


def test_it_keeps_the_select_all_boxes_out_of_the_submitted_data(console_a):
    page = console_a.get("/account/api-keys/").content.decode()
    for tag in re.findall(r"<input[^>]*data-select-all[^>]*>", page):
        assert "name=" not in tag


def test_it_creates_a_key_with_the_ticked_permissions(console_a, admin_a):
    response = console_a.post(
        "/account/api-keys/new/",
        {"name": "deploy", "permissions": ["dns-check", "domain-get"], "password": TEST_PASSWORD},
    )
    assert response.status_code == 200
    key = Principal.objects.get(name="deploy")
    assert sorted(key.enabled_permissions) == ["dns-check", "domain-get"]


def test_it_pushes_the_list_url_after_an_htmx_create(console_a):
    response = console_a.post(
        "/account/api-keys/new/",
        {"name": "deploy", "password": TEST_PASSWORD},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    assert response["HX-Push-Url"] == "/account/api-keys/"
    assert 'id="api-key-secret"' in response.content.decode()


def test_it_sends_a_reload_of_the_create_url_back_to_the_list(console_a):
    response = console_a.get("/account/api-keys/new/")
    assert response.status_code == 302 and response["Location"] == "/account/api-keys/"


def test_it_pushes_the_list_url_after_an_htmx_app_password_create(console_a):
    response = console_a.post(
        "/account/app-passwords/",
        {"name": "phone", "password": TEST_PASSWORD},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    assert response["HX-Push-Url"] == "/account/app-passwords/"
    assert 'id="app-password-value"' in response.content.decode()
