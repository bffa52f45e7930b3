"""Administrators' overrides of the rules (settings store keys spam-filter.rule.<TAG>.score
/ .enabled): they change what classify scores and tags, reach the scan path without a
restart and without a query per message, and the rules reload reports them."""

from __future__ import annotations

import secrets

import pytest

from apps.config import cache
from apps.config.models import Generation, Setting
from apps.spamfilter import rules

pytestmark = pytest.mark.django_db

MESSAGE = (
    "From: Jane <jane@example.org>\r\nTo: John <john@example.org>\r\n"
    "Subject: FREE MONEY FOR YOU TODAY\r\nDate: Mon, 30 Nov 2026 10:00:00 +0000\r\n"
    "Message-ID: <1@example.org>\r\n\r\nYou are the beneficiary of 5 million dollars.\r\n"
)


@pytest.fixture(autouse=True)
def _fresh(settings):
    settings.REDIS_URL = ""  # Bayes in the database (unlearned: it does not vote)
    cache.invalidate()
    yield
    cache.invalidate()


def _classify(api):
    response = api.post(
        "/api/spam-filter/classify",
        {"message": MESSAGE, "remoteIp": "192.0.2.1", "envRcptTo": ["john@example.org"]},
        format="json",
    )
    assert response.status_code == 200, response.content
    return response.json()["data"]


def _set(api, *pairs):
    response = api.post(
        "/api/settings", [{"type": "insert", "values": [list(p) for p in pairs]}], format="json"
    )
    assert response.status_code == 200, response.content


def test_it_scores_a_tag_with_its_override(api_root, dns_server):
    before = _classify(api_root)
    bundled = rules.bundled().rules["SUBJ_ALL_CAPS"].score
    assert before["tags"]["SUBJ_ALL_CAPS"]["value"] == bundled
    _set(api_root, ("spam-filter.rule.SUBJ_ALL_CAPS.score", "9.5"))
    after = _classify(api_root)
    assert after["tags"]["SUBJ_ALL_CAPS"] == {"action": "allow", "value": 9.5}
    assert after["score"] == pytest.approx(before["score"] - bundled + 9.5)
    assert "SUBJ_ALL_CAPS (9.50)" in after["disposition"]["value"]


def test_it_drops_the_tag_of_a_disabled_rule(api_root, dns_server):
    before = _classify(api_root)
    assert {"SUBJ_ALL_CAPS", "ADVANCE_FEE"} <= set(before["tags"])  # computed, body pattern
    _set(
        api_root,
        ("spam-filter.rule.SUBJ_ALL_CAPS.enabled", "false"),
        ("spam-filter.rule.ADVANCE_FEE.enabled", "false"),
    )
    after = _classify(api_root)
    assert "SUBJ_ALL_CAPS" not in after["tags"]
    assert "ADVANCE_FEE" not in after["tags"]
    dropped = before["tags"]["SUBJ_ALL_CAPS"]["value"] + before["tags"]["ADVANCE_FEE"]["value"]
    assert after["score"] == pytest.approx(before["score"] - dropped)
    assert rules.current().find("ADVANCE_FEE") not in rules.current().matchers


def test_it_enables_a_rule_the_file_disables(settings, tmp_path, api_root, dns_server):
    text = rules.DEFAULT_FILE.read_text().replace(
        "  - {tag: SUBJ_ALL_CAPS, score:", "  - {tag: SUBJ_ALL_CAPS, enabled: false, score:"
    )
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    settings.MAILADMIN_SPAM_RULES_FILE = str(path)
    try:
        assert "SUBJ_ALL_CAPS" not in _classify(api_root)["tags"]
        _set(api_root, ("spam-filter.rule.SUBJ_ALL_CAPS.enabled", "true"))
        assert "SUBJ_ALL_CAPS" in _classify(api_root)["tags"]
    finally:
        settings.MAILADMIN_SPAM_RULES_FILE = ""
        rules.reload()


def test_the_reload_reports_overrides_as_changes(api_root):
    rules.reload()  # what this process reports against from now on
    _set(
        api_root,
        ("spam-filter.rule.MISSING_DATE.score", "4"),
        ("spam-filter.rule.SUBJ_FREE.enabled", "false"),
    )
    data = api_root.get("/api/update/spam-filter").json()["data"]
    base = rules.bundled().rules
    assert data["changed"] == {
        "MISSING_DATE": {
            "from": base["MISSING_DATE"].summary(),
            "to": {**base["MISSING_DATE"].summary(), "score": 4.0},
        },
        "SUBJ_FREE": {
            "from": base["SUBJ_FREE"].summary(),
            "to": {**base["SUBJ_FREE"].summary(), "enabled": False},
        },
    }
    assert data["overrides"] == {"MISSING_DATE": {"score": 4.0}, "SUBJ_FREE": {"enabled": False}}
    assert (data["added"], data["removed"]) == ([], [])
    again = api_root.get("/api/update/spam-filter").json()["data"]
    assert again["changed"] == {}  # nothing since the last reload
    api_root.post(
        "/api/settings", [{"type": "clear", "prefix": "spam-filter.rule."}], format="json"
    )
    back = api_root.get("/api/update/spam-filter").json()["data"]
    assert sorted(back["changed"]) == ["MISSING_DATE", "SUBJ_FREE"]
    assert back["overrides"] == {}
    rules.reload()


def test_an_override_survives_a_new_rules_file(settings, tmp_path, api_root):
    """A new version of the file (another rule's score changed) is reloaded: the override
    still holds, the reload reports the file's change and the override in force."""
    rules.reload()
    _set(api_root, ("spam-filter.rule.MISSING_DATE.score", "4"))
    text = rules.DEFAULT_FILE.read_text()
    version = rules.bundled().version
    text = text.replace(f'version: "{version}"', 'version: "test-2"', 1)
    before = rules.bundled().rules["MISSING_MID"].score
    old = f"  - {{tag: MISSING_MID, score: {before},"
    assert old in text
    path = tmp_path / "rules.yaml"
    path.write_text(text.replace(old, f"  - {{tag: MISSING_MID, score: {before + 1},"))
    settings.MAILADMIN_SPAM_RULES_FILE = str(path)
    try:
        data = api_root.get("/api/update/spam-filter").json()["data"]
        assert (data["previousVersion"], data["version"]) == (version, "test-2")
        assert data["changed"]["MISSING_MID"]["to"]["score"] == before + 1
        assert data["overrides"] == {"MISSING_DATE": {"score": 4.0}}
        assert rules.current().version == "test-2"
        assert rules.current().rules["MISSING_DATE"].score == 4.0
        assert rules.current().rules["MISSING_MID"].score == before + 1
    finally:
        settings.MAILADMIN_SPAM_RULES_FILE = ""
        rules.reload()


def test_a_file_change_to_an_overridden_rule_is_reported(settings, tmp_path, api_root):
    """The file's score of a rule whose score is overridden changed (and the enabled flag
    of one whose flag is): the rules in force are the same, and the reload said nothing,
    so whoever set the override never heard that the default under it had moved. The
    entry keeps its shape (from/to: the rules in force) and adds `file` (from/to: the
    file's own values)."""
    rules.reload()
    _set(
        api_root,
        ("spam-filter.rule.MISSING_DATE.score", "4"),
        ("spam-filter.rule.SUBJ_FREE.enabled", "false"),
    )
    base = rules.bundled().rules
    assert base["SUBJ_FREE"].enabled
    reported = api_root.get("/api/update/spam-filter").json()["data"]
    assert sorted(reported["changed"]) == ["MISSING_DATE", "SUBJ_FREE"]
    assert "file" not in reported["changed"]["MISSING_DATE"]  # the file did not change
    score = base["MISSING_DATE"].score
    text = rules.DEFAULT_FILE.read_text()
    old_date = f"  - {{tag: MISSING_DATE, score: {score},"
    old_free = "  - tag: SUBJ_FREE\n"
    assert old_date in text and old_free in text
    text = text.replace(old_date, f"  - {{tag: MISSING_DATE, score: {score + 1},")
    text = text.replace(old_free, old_free + "    enabled: false\n")
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    settings.MAILADMIN_SPAM_RULES_FILE = str(path)
    try:
        data = api_root.get("/api/update/spam-filter").json()["data"]
        in_force = {**base["MISSING_DATE"].summary(), "score": 4.0}
        assert data["changed"]["MISSING_DATE"] == {
            "from": in_force,
            "to": in_force,
            "file": {
                "from": base["MISSING_DATE"].summary(),
                "to": {**base["MISSING_DATE"].summary(), "score": score + 1},
            },
        }
        # the file now says what the override said: the override still holds
        free = {**base["SUBJ_FREE"].summary(), "enabled": False}
        assert data["changed"]["SUBJ_FREE"] == {
            "from": free,
            "to": free,
            "file": {"from": base["SUBJ_FREE"].summary(), "to": free},
        }
        assert sorted(data["changed"]) == ["MISSING_DATE", "SUBJ_FREE"]
        assert data["overrides"] == {
            "MISSING_DATE": {"score": 4.0},
            "SUBJ_FREE": {"enabled": False},
        }
        again = api_root.get("/api/update/spam-filter").json()["data"]
        assert again["changed"] == {}  # reported once
    finally:
        settings.MAILADMIN_SPAM_RULES_FILE = ""
        rules.reload()


def _written_by_another_process(key: str, value: str) -> None:
    """What a write in another process leaves: the row and a new generation, with this
    process's cached copy untouched."""
    Setting.objects.update_or_create(key=key, defaults={"value": value})
    Generation.objects.update_or_create(pk=1, defaults={"value": secrets.randbits(62)})


def test_another_processes_change_applies_after_the_refresh_interval(settings):
    settings.MAILADMIN_SETTINGS_REFRESH_SECONDS = 3600
    assert (
        rules.current().rules["MISSING_DATE"].score == rules.bundled().rules["MISSING_DATE"].score
    )
    _written_by_another_process("spam-filter.rule.MISSING_DATE.score", "7")
    assert rules.current().rules["MISSING_DATE"].score != 7.0  # the copy holds until...
    settings.MAILADMIN_SETTINGS_REFRESH_SECONDS = 0  # ...the interval has passed
    assert rules.current().rules["MISSING_DATE"].score == 7.0


def test_it_asks_the_database_once_per_interval_not_per_message(
    settings, django_assert_num_queries
):
    settings.MAILADMIN_SETTINGS_REFRESH_SECONDS = 3600
    _written_by_another_process("spam-filter.rule.MISSING_DATE.score", "7")
    with django_assert_num_queries(2):  # the generation, then the overrides
        rules.current()
    with django_assert_num_queries(0):
        for _ in range(500):
            assert rules.current().rules["MISSING_DATE"].score == 7.0


def test_an_unchanged_generation_reuses_the_merged_rules(settings):
    settings.MAILADMIN_SETTINGS_REFRESH_SECONDS = 0
    _written_by_another_process("spam-filter.rule.MISSING_DATE.score", "7")
    first = rules.current()
    assert rules.current() is first  # re-checked, not rebuilt


def test_a_tiny_score_is_stored_so_it_is_read_back(api_root):
    """The store's check normalised 0.00001 to repr() "1e-05", which the scan's reading of
    the override then refused: the API answered 200 and the override was never applied."""
    _set(api_root, ("spam-filter.rule.MISSING_DATE.score", "0.00001"))
    assert Setting.objects.get(key="spam-filter.rule.MISSING_DATE.score").value == "0.00001"
    assert rules.current().overrides == {"MISSING_DATE": {"score": 0.00001}}


def test_it_ignores_an_override_the_checks_refuse():
    base = rules.bundled()
    merged = rules.apply_overrides(
        base,
        {
            "spam-filter.rule.MISSING_DATE.score": "lots",
            "spam-filter.rule.NO_SUCH.score": "1",
            "spam-filter.rule.MISSING_MID.enabled": "false",
        },
    )
    assert merged.overrides == {"MISSING_MID": {"enabled": False}}
    assert merged.rules["MISSING_DATE"] is base.rules["MISSING_DATE"]


def test_the_scan_keeps_the_rules_in_force_when_the_database_fails(settings, monkeypatch):
    from django.db import DatabaseError

    settings.MAILADMIN_SETTINGS_REFRESH_SECONDS = 0
    _written_by_another_process("spam-filter.rule.MISSING_DATE.score", "7")
    assert rules.current().rules["MISSING_DATE"].score == 7.0

    def fails(prefix):
        raise DatabaseError("connection lost")

    monkeypatch.setattr(cache, "values_under", fails)
    assert rules.current().rules["MISSING_DATE"].score == 7.0  # the overrides last read
    rules._loaded.merged = None  # a process that never read them: the file's rules
    assert rules.current().rules["MISSING_DATE"] is rules.bundled().rules["MISSING_DATE"]
