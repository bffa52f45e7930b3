"""The rules editor (/spam-filter/rules/): the file's rules with their overrides, edited
inline (htmx row partials), 422 with the message on bad input, reset, superadmins only."""

from __future__ import annotations

import pytest

from apps.config import cache
from apps.config.models import Setting
from apps.spamfilter import rules

pytestmark = pytest.mark.django_db

KEY = "spam-filter.rule.SUBJ_ALL_CAPS."


@pytest.fixture(autouse=True)
def _fresh():
    cache.invalidate()
    yield
    cache.invalidate()


@pytest.fixture
def root(client, superadmin):
    client.force_login(superadmin)
    return client


def _stored() -> dict[str, str]:
    return dict(Setting.objects.values_list("key", "value"))


def test_it_lists_every_rule_with_its_file_score(root, django_assert_max_num_queries):
    Setting.objects.create(key=KEY + "score", value="7.5")
    with django_assert_max_num_queries(8):  # session, user, roles, the overrides
        response = root.get("/spam-filter/rules/")
    assert response.status_code == 200
    page = response.content.decode()
    assert page.count('<tr id="rule-') == len(rules.bundled().rules)
    assert 'id="rule-X_HDR_-any"' in page  # a family's row
    row = page[page.index('<tr id="rule-SUBJ_ALL_CAPS"') :]
    row = row[: row.index("</tr>")]
    assert 'class="overridden"' in row
    assert 'value="7.5"' in row
    assert "Reset" in row


def test_it_searches_tags_and_descriptions(root):
    response = root.get("/spam-filter/rules/?q=capitals", HTTP_HX_REQUEST="true")
    page = response.content.decode()
    assert page.lstrip().startswith('<div id="rules-table">')
    assert '<tr id="rule-SUBJ_ALL_CAPS"' in page
    assert '<tr id="rule-MISSING_DATE"' not in page


def test_it_saves_an_override_and_answers_the_row(root):
    response = root.post(
        "/spam-filter/rules/SUBJ_ALL_CAPS/", {"score": "6.25", "enabled": "on"},
        HTTP_HX_REQUEST="true",
    )  # fmt: skip
    assert response.status_code == 200
    page = response.content.decode()
    assert page.lstrip().startswith('<tr id="rule-SUBJ_ALL_CAPS" class="overridden">')
    assert _stored() == {KEY + "score": "6.25"}  # enabled as in the file: no override
    assert rules.current().rules["SUBJ_ALL_CAPS"].score == 6.25


def test_it_toggles_a_rule_off_and_back(root):
    root.post("/spam-filter/rules/SUBJ_ALL_CAPS/", {"score": ""}, HTTP_HX_REQUEST="true")
    assert _stored() == {KEY + "enabled": "false"}
    assert rules.current().rules["SUBJ_ALL_CAPS"].enabled is False
    root.post("/spam-filter/rules/SUBJ_ALL_CAPS/", {"enabled": "on"}, HTTP_HX_REQUEST="true")
    assert _stored() == {}
    assert rules.current().rules["SUBJ_ALL_CAPS"].enabled is True


@pytest.mark.parametrize(
    ("score", "message"),
    [
        ("high", "Enter a number from -100 to 100."),
        ("250", "Ensure this value is less than or equal to 100.0."),
        ("nan", "Enter a number from -100 to 100."),
    ],
)
def test_it_answers_422_with_the_message(root, score, message):
    response = root.post(
        "/spam-filter/rules/SUBJ_ALL_CAPS/", {"score": score, "enabled": "on"},
        HTTP_HX_REQUEST="true",
    )  # fmt: skip
    assert response.status_code == 422
    page = response.content.decode()
    assert page.lstrip().startswith('<tr id="rule-SUBJ_ALL_CAPS"')
    assert message in page
    assert f'value="{score}"' in page  # what was typed stays
    assert 'aria-invalid="true"' in page
    assert _stored() == {}


def test_it_shows_the_error_on_the_full_page_without_htmx(root):
    response = root.post("/spam-filter/rules/SUBJ_ALL_CAPS/", {"score": "x"})
    assert response.status_code == 422
    assert "Enter a number from -100 to 100." in response.content.decode()
    ok = root.post("/spam-filter/rules/SUBJ_ALL_CAPS/", {"score": "1", "enabled": "on"})
    assert (ok.status_code, ok["Location"]) == (302, "/spam-filter/rules/")


def test_it_resets_to_the_file(root):
    Setting.objects.create(key=KEY + "score", value="7.5")
    Setting.objects.create(key=KEY + "enabled", value="false")
    response = root.post("/spam-filter/rules/SUBJ_ALL_CAPS/reset/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert 'class="overridden"' not in response.content.decode()
    assert _stored() == {}


def test_it_answers_404_for_a_tag_not_in_the_file(root):
    assert root.post("/spam-filter/rules/NO_SUCH/", {"score": "1"}).status_code == 404


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", "/spam-filter/rules/"),
        ("post", "/spam-filter/rules/SUBJ_ALL_CAPS/"),
        ("post", "/spam-filter/rules/SUBJ_ALL_CAPS/reset/"),
    ],
)
def test_it_is_for_superadmins_only(client, admin_a, method, url):
    client.force_login(admin_a)
    response = getattr(client, method)(url, {"score": "1"})
    assert response.status_code == 403
    assert not Setting.objects.exists()


def test_it_refuses_a_global_account_granted_the_permissions(client, make_principal):
    granted = make_principal(
        roles=(),
        enabled_permissions=["spam-filter-update", "settings-list", "settings-update"],
    )
    client.force_login(granted)
    assert client.get("/spam-filter/rules/").status_code == 403
    response = client.post("/spam-filter/rules/SUBJ_ALL_CAPS/", {"score": "1"})
    assert response.status_code == 403
    assert not Setting.objects.exists()
