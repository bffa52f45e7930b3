"""The settings page (/settings/): keys by group a page at a time, add, inline edit with
422 and the message on a bad value, delete; superadmins only."""

from __future__ import annotations

import pytest

from apps.config.models import Setting

pytestmark = pytest.mark.django_db


@pytest.fixture
def root(client, superadmin):
    client.force_login(superadmin)
    return client


def test_it_lists_keys_by_group_in_constant_queries(root, django_assert_max_num_queries):
    Setting.objects.bulk_create(
        Setting(key=f"server.listener.l{i:03}.bind", value=f"[::]:{i}") for i in range(250)
    )
    Setting.objects.create(key="spam-filter.rule.MISSING_DATE.score", value="2.0")
    with django_assert_max_num_queries(8):
        response = root.get("/settings/")
    assert response.status_code == 200
    page = response.content.decode()
    assert page.count('<tr id="setting-') == 100
    assert 'scope="rowgroup">server.listener.l000</th>' in page
    assert 'value="[::]:0"' in page  # each row's value in its input
    assert "Page 1 of 3 · 251 in all" in page
    with django_assert_max_num_queries(8):
        last = root.get("/settings/?page=3", HTTP_HX_REQUEST="true").content.decode()
    assert last.lstrip().startswith('<div id="settings-table">')
    assert "<code>spam-filter.rule.MISSING_DATE.score</code>" in last


def test_it_narrows_to_a_prefix(root):
    Setting.objects.bulk_create(
        [
            Setting(key="a.b.c", value="1"),
            Setting(key="a.bc", value="2"),
            Setting(key="x", value="3"),
        ]
    )
    page = root.get("/settings/?q=a.b").content.decode()
    assert "<code>a.b.c</code>" in page and "<code>a.bc</code>" in page
    assert "<code>x</code>" not in page


def test_it_adds_a_setting(root):
    response = root.post("/settings/save/", {"key": "server.hostname", "value": "mx.example.org"})
    assert response.status_code == 302
    assert Setting.objects.get(key="server.hostname").value == "mx.example.org"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"key": "a..b", "value": "1"},
         "Invalid key: a..b (names of letters, digits, &quot;-&quot;, &quot;_&quot; and "
         "&quot;*&quot;, joined by dots)"),
        ({"key": "spam-filter.rule.MISSING_DATE.score", "value": "lots"},
         "Invalid value for spam-filter.rule.MISSING_DATE.score: lots is not a number from "
         "-100 to 100"),
        ({"key": "", "value": "1"}, "This field is required."),
    ],
)  # fmt: skip
def test_the_add_form_answers_422_with_the_message(root, data, message):
    response = root.post("/settings/save/", data, HTTP_HX_REQUEST="true")
    assert response.status_code == 422
    page = response.content.decode()
    assert page.lstrip().startswith('<div id="setting-add">')
    assert message in page
    assert not Setting.objects.exists()


def test_it_saves_a_row_inline(root):
    Setting.objects.create(key="spam-filter.rule.MISSING_DATE.score", value="2.0")
    data = {"key": "spam-filter.rule.MISSING_DATE.score", "value": "3.50", "row": "1"}
    response = root.post("/settings/save/", data, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    page = response.content.decode()
    assert page.lstrip().startswith('<tr id="setting-')
    assert 'value="3.5"' in page  # as stored (normalised)
    bad = root.post("/settings/save/", {**data, "value": "many"}, HTTP_HX_REQUEST="true")
    assert bad.status_code == 422
    assert "many is not a number from -100 to 100" in bad.content.decode()
    assert 'value="many"' in bad.content.decode()
    assert Setting.objects.get().value == "3.5"


def test_it_deletes_a_row(root):
    Setting.objects.create(key="a.b", value="1")
    response = root.post("/settings/delete/", {"key": "a.b"}, HTTP_HX_REQUEST="true")
    assert (response.status_code, response.content) == (200, b"")
    assert not Setting.objects.exists()


@pytest.mark.parametrize(
    ("method", "url"),
    [("get", "/settings/"), ("post", "/settings/save/"), ("post", "/settings/delete/")],
)
def test_it_is_for_superadmins_only(client, admin_a, make_principal, method, url):
    client.force_login(admin_a)
    assert getattr(client, method)(url, {"key": "a.b", "value": "1"}).status_code == 403
    granted = make_principal(
        roles=(), enabled_permissions=["settings-list", "settings-update", "settings-delete"]
    )
    client.force_login(granted)
    response = getattr(client, method)(url, {"key": "a.b", "value": "1"})
    assert response.status_code == 403
    assert not Setting.objects.exists()
