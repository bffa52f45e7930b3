"""The rules editor (/spam-filter/rules/): the file's rules with their overrides, edited
inline (htmx row partials), 422 with the message on bad input, reset, superadmins only."""

from __future__ import annotations

import pytest

from apps.config import cache
from apps.config.models import Setting
from apps.spamfilter import rules

pytestmark = pytest.mark.django_db

KEY = "spam-filter.rule.SUBJ_ALL_CAPS."
FORM = "application/x-www-form-urlencoded"


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


@pytest.mark.parametrize(("typed", "stored"), [("0.00001", "0.00001"), ("-0", "0.0")])
def test_it_saves_a_score_as_typed_not_in_exponent_form(root, typed, stored):
    """str(1e-05) is "1e-05", which the store's own check refuses: the row answered 422
    saying 0.00001 was "not a number from -100 to 100"."""
    response = root.post(
        "/spam-filter/rules/SUBJ_ALL_CAPS/", {"score": typed, "enabled": "on"},
        HTTP_HX_REQUEST="true",
    )  # fmt: skip
    assert response.status_code == 200
    assert _stored() == {KEY + "score": stored}
    assert rules.current().rules["SUBJ_ALL_CAPS"].score == float(stored)


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
        ("1e309", "Enter a number from -100 to 100."),
        # Python's float() reads these; the settings store (and its API) refuses them, and
        # "1_0" read as ten would multiply a score by ten on a slip of the finger.
        ("1_0", "Enter a number from -100 to 100."),
        ("\u0663", "Enter a number from -100 to 100."),  # ARABIC-INDIC DIGIT THREE
        ("1e2", "Enter a number from -100 to 100."),
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


@pytest.fixture
def refused_file(settings, tmp_path):
    """A rules file on disk that the checks refuse (a tag defined twice)."""
    rules.current()  # what this process has in force
    text = rules.DEFAULT_FILE.read_text()
    text = text.replace("  - {tag: MISSING_MID,", "  - {tag: MISSING_DATE,")
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    settings.MAILADMIN_SPAM_RULES_FILE = str(path)
    yield "rules.yaml: rule 5: tag MISSING_DATE is defined twice"
    settings.MAILADMIN_SPAM_RULES_FILE = ""
    rules.reload()


def test_it_says_the_rules_file_on_disk_is_refused(root, refused_file):
    """The rules in force stay (scans go on), but the editor showed them as if the edited
    file were in force: the administrator learnt nothing of the refusal."""
    version = rules.bundled().version
    response = root.get("/spam-filter/rules/")
    assert response.status_code == 200
    page = response.content.decode()
    assert refused_file in page
    assert f"version <code>{version}</code>" in page
    assert page.count('<tr id="rule-') == len(rules.bundled().rules)


def test_it_answers_503_with_the_reason_when_no_rules_file_could_be_read(root, refused_file):
    """A process started on a refused file has no rules in force: the editor answered 500."""
    rules._loaded.rules = rules._loaded.key = rules._loaded.merged = None
    for response in (
        root.get("/spam-filter/rules/"),
        root.post("/spam-filter/rules/MISSING_DATE/", {"score": "1"}),
        root.post("/spam-filter/rules/MISSING_DATE/reset/", HTTP_HX_REQUEST="true"),
    ):
        assert response.status_code == 503
        assert refused_file in response.content.decode()
    assert not Setting.objects.exists()


# An override written while the file had the rule, which a later rules file dropped: the
# scan ignores it, but it stays in the store and comes back to life if the tag returns.
GONE = "spam-filter.rule.GONE_RULE."


def test_it_lists_overrides_of_rules_the_file_no_longer_has(root):
    Setting.objects.create(key=GONE + "score", value="5.0")
    Setting.objects.create(key=GONE + "enabled", value="false")
    page = root.get("/spam-filter/rules/").content.decode()
    row = page[page.index('<tr id="orphan-GONE_RULE"') :]
    row = row[: row.index("</tr>")]
    assert "<code>GONE_RULE</code>" in row
    assert "5.0" in row and "false" in row
    assert 'action="/spam-filter/rules/GONE_RULE/reset/"' in row
    assert page.count('<tr id="rule-') == len(rules.bundled().rules)  # not among the rules


def test_it_deletes_an_override_of_a_rule_the_file_no_longer_has(root):
    Setting.objects.create(key=GONE + "score", value="5.0")
    Setting.objects.create(key=KEY + "score", value="7.5")
    response = root.post("/spam-filter/rules/GONE_RULE/reset/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert response.content.decode().strip() == ""  # the row goes
    assert _stored() == {KEY + "score": "7.5"}
    Setting.objects.create(key=GONE + "score", value="5.0")
    response = root.post("/spam-filter/rules/GONE_RULE/reset/")
    assert (response.status_code, response["Location"]) == (302, "/spam-filter/rules/")
    assert _stored() == {KEY + "score": "7.5"}
    # Nothing stored and no such rule: still nothing there.
    assert root.post("/spam-filter/rules/GONE_RULE/reset/").status_code == 404
    assert root.post("/spam-filter/rules/GONE_RULE/", {"score": "1"}).status_code == 404


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


@pytest.mark.parametrize(
    "url",
    [
        "/spam-filter/rules/",
        "/spam-filter/rules/SUBJ_ALL_CAPS/",
        "/spam-filter/rules/SUBJ_ALL_CAPS/reset/",
        "/spam-filter/thresholds/spam/",
    ],
)
@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_it_answers_405_to_other_methods(root, url, method):
    """A DELETE of a reset or a PUT of a score answered as a GET does (the row, or back to
    the page), as if done, and changed nothing."""
    Setting.objects.create(key=KEY + "score", value="7.5")
    response = getattr(root, method)(url, "score=1", content_type=FORM)
    assert response.status_code == 405
    assert _stored() == {KEY + "score": "7.5"}


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


# --- thresholds -------------------------------------------------------------------------------


def test_it_shows_the_thresholds_with_their_source(root, settings, django_assert_max_num_queries):
    settings.MAILADMIN_SPAM_THRESHOLD_REJECT = 15.0
    Setting.objects.create(key="spam-filter.threshold.spam", value="4.5")
    with django_assert_max_num_queries(8):  # as the rules alone: session, user, roles, ...
        page = root.get("/spam-filter/rules/").content.decode()
    row = page[page.index('<tr id="threshold-spam"') :]
    row = row[: row.index("</tr>")]
    assert 'class="overridden"' in row
    assert 'value="4.5"' in row
    reject = page[page.index('<tr id="threshold-reject"') :]
    reject = reject[: reject.index("</tr>")]
    assert 'value=""' in reject and 'placeholder="15"' in reject


def test_it_saves_a_threshold_inline(root):
    response = root.post(
        "/spam-filter/thresholds/reject/", {"value": "12.50"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert page.lstrip().startswith('<tr id="threshold-reject" class="overridden">')
    assert 'value="12.5"' in page
    assert _stored() == {"spam-filter.threshold.reject": "12.5"}
    from apps.spamfilter import thresholds

    assert thresholds.current().reject == 12.5
    # Empty: back to the environment's.
    root.post("/spam-filter/thresholds/reject/", {"value": ""}, HTTP_HX_REQUEST="true")
    assert _stored() == {}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("high", "Invalid value for spam-filter.threshold.reject: high is not a number from 0 "
                 "to 1000 (0 turns the threshold off)"),
        ("2", "Invalid spam-filter thresholds: reject (2) is below spam (5); thresholds that "
              "are on must keep the order spam &lt;= quarantine &lt;= reject &lt;= discard "
              "(0 turns one off)"),
    ],
)  # fmt: skip
def test_a_bad_threshold_answers_422_with_the_message(root, settings, value, message):
    settings.MAILADMIN_SPAM_THRESHOLD_SPAM = 5.0
    response = root.post(
        "/spam-filter/thresholds/reject/", {"value": value}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 422
    page = response.content.decode()
    assert page.lstrip().startswith('<tr id="threshold-reject"')
    assert message in page
    assert f'value="{value}"' in page
    assert 'aria-invalid="true"' in page
    assert _stored() == {}


def test_a_threshold_is_stored_so_it_is_read_back(root):
    """repr() stored 0.00001 as "1e-05", which the thresholds' own reading then skipped."""
    root.post("/spam-filter/thresholds/spam/", {"value": "0.00001"}, HTTP_HX_REQUEST="true")
    assert _stored() == {"spam-filter.threshold.spam": "0.00001"}
    from apps.spamfilter import thresholds

    assert thresholds.current().spam == 0.00001


def test_a_threshold_in_other_digits_is_refused(root):
    response = root.post(
        "/spam-filter/thresholds/reject/", {"value": "\u0661\u0665"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 422
    assert "is not a number from 0 to 1000" in response.content.decode()
    assert _stored() == {}


def test_a_bad_threshold_without_htmx_shows_the_page(root):
    response = root.post("/spam-filter/thresholds/spam/", {"value": "x"})
    assert response.status_code == 422
    assert "Invalid value for spam-filter.threshold.spam: x is not a number" in (
        response.content.decode()
    )
    ok = root.post("/spam-filter/thresholds/spam/", {"value": "4"})
    assert (ok.status_code, ok["Location"]) == (302, "/spam-filter/rules/")


def test_an_unknown_threshold_is_404(root):
    assert root.post("/spam-filter/thresholds/junk/", {"value": "1"}).status_code == 404


def test_thresholds_are_for_superadmins_only(client, admin_a):
    client.force_login(admin_a)
    assert client.post("/spam-filter/thresholds/spam/", {"value": "1"}).status_code == 403
    assert not Setting.objects.exists()
