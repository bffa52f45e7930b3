"""Score thresholds in the settings store (spam-filter.threshold.spam|quarantine|reject|
discard over MAILADMIN_SPAM_THRESHOLD_*): checked with exact messages, kept in order, read
without a query per message, used by classify and reported by the rules reload."""

from __future__ import annotations

import secrets

import pytest

from apps.config import cache
from apps.config.models import Generation, Setting
from apps.spamfilter import rules, thresholds
from mailadmin.core.models import AuditEvent

pytestmark = pytest.mark.django_db

MESSAGE = (
    "From: Jane <jane@example.org>\r\nTo: John <john@example.org>\r\n"
    "Subject: FREE MONEY FOR YOU TODAY\r\nDate: Mon, 30 Nov 2026 10:00:00 +0000\r\n"
    "Message-ID: <1@example.org>\r\n\r\nYou are the beneficiary of 5 million dollars.\r\n"
)
ORDER = "thresholds that are on must keep the order spam <= quarantine <= reject <= discard"


@pytest.fixture(autouse=True)
def _fresh(settings):
    settings.REDIS_URL = ""  # Bayes in the database (unlearned: it does not vote)
    settings.MAILADMIN_SPAM_THRESHOLD_SPAM = 5.0
    settings.MAILADMIN_SPAM_THRESHOLD_QUARANTINE = 0.0
    settings.MAILADMIN_SPAM_THRESHOLD_REJECT = 15.0
    settings.MAILADMIN_SPAM_THRESHOLD_DISCARD = 0.0
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


def _post(api, changes):
    return api.post("/api/settings", changes, format="json")


def _set(api, *pairs):
    response = _post(api, [{"type": "insert", "values": [list(p) for p in pairs]}])
    assert response.status_code == 200, response.content


def test_it_defaults_to_the_environment():
    assert thresholds.current() == thresholds.Thresholds(
        spam=5.0, quarantine=0.0, reject=15.0, discard=0.0
    )


def test_a_threshold_set_in_the_store_changes_the_classify_disposition(api_root, dns_server):
    before = _classify(api_root)
    score = before["score"]
    assert 5 < score < 13, before  # spam by the environment's thresholds, under reject
    assert before["disposition"]["action"] == "allow"
    assert f"X-Spam-Status: Yes, score={score:.2f}" in before["disposition"]["value"]

    _set(api_root, ("spam-filter.threshold.spam", "13"), ("spam-filter.threshold.reject", "20"))
    ham = _classify(api_root)
    assert ham["score"] == score
    assert ham["disposition"]["action"] == "allow"
    assert f"X-Spam-Status: No, score={score:.2f}" in ham["disposition"]["value"]

    _set(api_root, ("spam-filter.threshold.spam", "5"), ("spam-filter.threshold.reject", "12"))
    assert _classify(api_root)["disposition"]["action"] == "reject"

    _set(api_root, ("spam-filter.threshold.discard", f"{score}"))
    assert _classify(api_root)["disposition"]["action"] == "discard"

    response = _post(api_root, [{"type": "clear", "prefix": "spam-filter.threshold."}])
    assert response.status_code == 200, response.content
    back = _classify(api_root)
    assert back["disposition"] == before["disposition"]


def test_it_stores_numbers_normalised(api_root):
    _set(api_root, ("spam-filter.threshold.reject", "12.50"))
    assert Setting.objects.get(key="spam-filter.threshold.reject").value == "12.5"
    assert thresholds.current().reject == 12.5
    assert thresholds.current().overridden == {"reject"}


@pytest.mark.parametrize(
    ("pairs", "field", "message"),
    [
        ([("spam-filter.threshold.spam", "high")], "spam-filter.threshold.spam",
         "Invalid value for spam-filter.threshold.spam: high is not a number from 0 to 1000 "
         "(0 turns the threshold off)"),
        ([("spam-filter.threshold.reject", "-3")], "spam-filter.threshold.reject",
         "Invalid value for spam-filter.threshold.reject: -3 is not a number from 0 to 1000 "
         "(0 turns the threshold off)"),
        ([("spam-filter.threshold.discard", "1e3")], "spam-filter.threshold.discard",
         "Invalid value for spam-filter.threshold.discard: 1e3 is not a number from 0 to 1000 "
         "(0 turns the threshold off)"),
        ([("spam-filter.threshold.junk", "3")], "spam-filter.threshold.junk",
         "Unknown spam-filter threshold: spam-filter.threshold.junk (spam-filter.threshold.spam, "
         "spam-filter.threshold.quarantine, spam-filter.threshold.reject or "
         "spam-filter.threshold.discard)"),
        # the environment's spam threshold is 5 and reject 15
        ([("spam-filter.threshold.reject", "4")], "spam-filter.threshold.reject",
         f"Invalid spam-filter thresholds: reject (4) is below spam (5); {ORDER} "
         "(0 turns one off)"),
        ([("spam-filter.threshold.spam", "20")], "spam-filter.threshold.spam",
         f"Invalid spam-filter thresholds: reject (15) is below spam (20); {ORDER} "
         "(0 turns one off)"),
        ([("spam-filter.threshold.quarantine", "8"), ("spam-filter.threshold.discard", "7")],
         "spam-filter.threshold.discard",
         f"Invalid spam-filter thresholds: discard (7) is below quarantine (8); {ORDER} "
         "(0 turns one off)"),
    ],
)  # fmt: skip
def test_it_refuses_bad_values_with_exact_messages(api_root, pairs, field, message):
    response = _post(api_root, [{"type": "insert", "values": [list(p) for p in pairs]}])
    assert response.status_code == 400, response.content
    problem = response.json()
    assert problem["detail"] == message
    assert problem["errors"][0] == {"field": field, "message": message}
    assert not Setting.objects.exists()
    assert not AuditEvent.objects.filter(action="settings.update").exists()


def test_the_order_is_judged_as_the_whole_write_leaves_it(api_root):
    # Raising both at once is fine, though either alone would break the order.
    _set(api_root, ("spam-filter.threshold.spam", "20"), ("spam-filter.threshold.reject", "30"))
    assert thresholds.current().as_dict() == {
        "spam": 20.0, "quarantine": 0.0, "reject": 30.0, "discard": 0.0
    }  # fmt: skip
    # Deleting reject would bring back the environment's 15, below spam's 20.
    response = _post(api_root, [{"type": "delete", "keys": ["spam-filter.threshold.reject"]}])
    assert response.status_code == 400
    assert response.json()["detail"] == (
        f"Invalid spam-filter thresholds: reject (15) is below spam (20); {ORDER} (0 turns one off)"
    )
    assert Setting.objects.filter(key="spam-filter.threshold.reject").exists()
    # 0 turns reject off: it is left out of the order.
    _set(api_root, ("spam-filter.threshold.reject", "0"))
    assert thresholds.current().reject == 0.0


def test_reload_settings_reports_thresholds_out_of_order(api_root):
    # Written around the checks (as a restored dump might): reload names the problem.
    Setting.objects.create(key="spam-filter.threshold.reject", value="2")
    data = api_root.get("/api/reload/").json()["data"]
    assert data["errors"] == {
        "spam-filter.threshold.reject": (
            f"Invalid spam-filter thresholds: reject (2) is below spam (5); {ORDER} "
            "(0 turns one off)"
        )
    }


def test_the_lookup_costs_no_query_once_cached(settings, django_assert_num_queries):
    settings.MAILADMIN_SETTINGS_REFRESH_SECONDS = 3600
    Setting.objects.create(key="spam-filter.threshold.reject", value="12")
    Generation.objects.update_or_create(pk=1, defaults={"value": secrets.randbits(62)})
    with django_assert_num_queries(2):  # the generation, then the thresholds
        assert thresholds.current().reject == 12.0
    with django_assert_num_queries(0):
        for _ in range(500):
            assert thresholds.current().reject == 12.0


def test_the_environment_still_applies_to_what_the_store_leaves_unset(settings, api_root):
    _set(api_root, ("spam-filter.threshold.reject", "12"))
    settings.MAILADMIN_SPAM_THRESHOLD_SPAM = 3.0
    assert thresholds.current().as_dict() == {
        "spam": 3.0, "quarantine": 0.0, "reject": 12.0, "discard": 0.0
    }  # fmt: skip


def test_the_reload_reports_the_thresholds(api_root):
    rules.reload()
    first = api_root.get("/api/update/spam-filter").json()["data"]
    assert first["thresholds"] == {"spam": 5.0, "quarantine": 0.0, "reject": 15.0, "discard": 0.0}
    assert first["thresholdOverrides"] == []
    _set(api_root, ("spam-filter.threshold.reject", "12"), ("spam-filter.threshold.spam", "4"))
    data = api_root.get("/api/update/spam-filter").json()["data"]
    assert data["thresholds"] == {"spam": 4.0, "quarantine": 0.0, "reject": 12.0, "discard": 0.0}
    assert data["thresholdOverrides"] == ["spam", "reject"]
    assert data["thresholdsChanged"] == {
        "spam": {"from": 5.0, "to": 4.0},
        "reject": {"from": 15.0, "to": 12.0},
    }
    again = api_root.get("/api/update/spam-filter").json()["data"]
    assert again["thresholdsChanged"] == {}


def test_the_scan_keeps_the_thresholds_in_force_when_the_database_fails(settings, monkeypatch):
    from django.db import DatabaseError

    settings.MAILADMIN_SETTINGS_REFRESH_SECONDS = 0
    Setting.objects.create(key="spam-filter.threshold.reject", value="12")
    Generation.objects.update_or_create(pk=1, defaults={"value": secrets.randbits(62)})
    assert thresholds.current().reject == 12.0

    def fails(prefix):
        raise DatabaseError("connection lost")

    monkeypatch.setattr(cache, "values_under", fails)
    assert thresholds.current().reject == 12.0
