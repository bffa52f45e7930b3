"""The spam filter API: classify, train, Bayes purges, rules reload; permissions (owner,
member, outsider) and tenant isolation."""

from __future__ import annotations

import re

import pytest

from apps.spamfilter import bayes, rules
from apps.spamfilter.bayes import GLOBAL, account_scope
from tests.support.mime import nested_multipart

pytestmark = pytest.mark.django_db

MESSAGE = (
    "From: Jane <jane@example.org>\r\nTo: John <john@example.org>\r\nSubject: Lunch\r\n"
    "Date: Mon, 30 Nov 2026 10:00:00 +0000\r\nMessage-ID: <1@example.org>\r\n\r\n"
    "Shall we have lunch on Friday at the usual place?\r\n"
)


@pytest.fixture(autouse=True)
def _database_store(settings):
    """These tests look at the database store; test_bayes.py covers Redis too."""
    settings.REDIS_URL = ""


@pytest.fixture
def user_a2(make_principal, tenant_a):
    return make_principal(tenant=tenant_a, roles=["user"], name="user-a2")


@pytest.fixture
def user_b(make_principal, tenant_b):
    return make_principal(tenant=tenant_b, roles=["user"], name="user-b")


# --- classify ------------------------------------------------------------------------------


def test_it_classifies_for_a_plain_user(api_client_for, user_a, dns_server):
    response = api_client_for(user_a).post(
        "/api/spam-filter/classify",
        {"message": MESSAGE, "remoteIp": "192.0.2.1", "envRcptTo": ["john@example.org"]},
        format="json",
    )
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert data["tags"]["RCPT_COUNT_ONE"] == {"action": "allow", "value": 0.0}
    assert data["disposition"]["action"] == "allow"
    assert data["disposition"]["value"].endswith(
        f"X-Spam-Status: No, score={data['score']:.2f}\r\n"
    )
    assert data["authenticationResults"].startswith("Authentication-Results: mail.localhost;")


@pytest.mark.parametrize("flags, tagged", [(32, False), (0, True), (2, True)])
def test_env_from_flags_say_whether_the_message_came_with_smtputf8(
    api_client_for, user_a, dns_server, flags, tagged
):
    """envFromFlags are the MAIL FROM parameters as the spec's product numbers them:
    1 << 5 is SMTPUTF8, under which a raw UTF-8 Subject is what RFC 6532 allows."""
    message = MESSAGE.replace("Subject: ", "Subject: Gr\u00fc\u00dfe ", 1)
    assert message != MESSAGE
    response = api_client_for(user_a).post(
        "/api/spam-filter/classify",
        {"message": message, "envFromFlags": flags, "envRcptTo": ["john@example.org"]},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert ("SUBJ_NEEDS_ENCODING" in response.json()["data"]["tags"]) is tagged


def test_it_refuses_classify_without_the_permission(make_principal, api_client_for, anon_api):
    nobody = make_principal(roles=(), enabled_permissions=["dashboard"])
    response = api_client_for(nobody).post(
        "/api/spam-filter/classify", {"message": MESSAGE}, format="json"
    )
    assert response.status_code == 403
    assert response.json()["permission"] == "spam-filter-classify"
    assert anon_api.post("/api/spam-filter/classify", {}, format="json").status_code == 401


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({}, "Missing required field: message"),
        ({"message": MESSAGE, "spam": True}, "Unrecognized field: spam"),
        ({"message": "   "}, "The message is empty."),
    ],
)
def test_it_names_what_is_wrong_with_a_classify_request(api_root, body, detail):
    response = api_root.post("/api/spam-filter/classify", body, format="json")
    assert response.status_code == 400
    assert detail in response.json()["detail"]


def test_it_refuses_a_remote_ip_that_is_not_one(api_root):
    response = api_root.post(
        "/api/spam-filter/classify", {"message": MESSAGE, "remoteIp": "123"}, format="json"
    )
    assert response.status_code == 400
    assert "remoteIp" in response.json()["detail"]


# --- train ---------------------------------------------------------------------------------


def test_it_trains_the_global_model_from_a_raw_message(api_root):
    response = api_root.post(
        "/api/spam-filter/train/spam", MESSAGE.encode(), content_type="message/rfc822"
    )
    assert (response.status_code, response.json()) == (200, {"data": None})
    response = api_root.post("/api/spam-filter/train/ham", MESSAGE, content_type="text/plain")
    assert (response.status_code, response.json()) == (200, {"data": None})
    response = api_root.post("/api/spam-filter/train/ham", MESSAGE, format="json")
    assert response.status_code == 200
    assert bayes.learned(GLOBAL) == (1, 2)


def test_it_refuses_a_body_that_is_not_a_message(api_root):
    response = api_root.post("/api/spam-filter/train/spam", {"message": MESSAGE}, format="json")
    assert response.status_code == 400
    assert "JSON string" in response.json()["detail"]
    response = api_root.post("/api/spam-filter/train/spam", b"", content_type="message/rfc822")
    assert response.status_code == 400
    assert bayes.learned(GLOBAL) == (0, 0)


def test_it_keeps_the_shared_global_model_from_tenant_admins(api_a):
    response = api_a.post("/api/spam-filter/train/spam", MESSAGE, content_type="text/plain")
    assert response.status_code == 403
    assert "global Bayes model" in response.json()["detail"]
    assert bayes.learned(GLOBAL) == (0, 0)


def test_it_trains_an_account_model_by_name_or_id(api_a, user_a):
    for key in (user_a.name, str(user_a.pk)):
        response = api_a.post(
            f"/api/spam-filter/train/ham/{key}", MESSAGE, content_type="text/plain"
        )
        assert (response.status_code, response.json()) == (200, {"data": None})
    assert bayes.learned(account_scope(user_a.pk)) == (0, 2)
    assert bayes.learned(GLOBAL) == (0, 0)


def test_it_lets_a_user_train_only_its_own_model(api_client_for, user_a, user_a2):
    client = api_client_for(user_a)
    own = client.post(
        f"/api/spam-filter/train/spam/{user_a.name}", MESSAGE, content_type="text/plain"
    )
    assert own.status_code == 200
    other = client.post(
        f"/api/spam-filter/train/spam/{user_a2.name}", MESSAGE, content_type="text/plain"
    )
    assert other.status_code == 404
    assert bayes.learned(account_scope(user_a2.pk)) == (0, 0)


def test_a_users_api_key_trains_its_owners_model_only(anon_api, user_a, user_a2):
    """A key acts for its owner: with spam-filter-train it trains the owner's model (it
    was 'No such account' for the owner too, so the permission was of no use to a key)."""
    from apps.accounts.auth.api_keys import api_key_create

    user_a.enabled_permissions = ["api-key-create"]
    user_a.save(update_fields=["enabled_permissions"])
    _, secret = api_key_create(actor=user_a, name="a-key", permissions=["spam-filter-train"])
    anon_api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    for key in (user_a.name, str(user_a.pk)):
        response = anon_api.post(
            f"/api/spam-filter/train/spam/{key}", MESSAGE, content_type="text/plain"
        )
        assert (response.status_code, response.json()) == (200, {"data": None})
    assert bayes.learned(account_scope(user_a.pk)) == (2, 0)
    other = anon_api.post(
        f"/api/spam-filter/train/spam/{user_a2.name}", MESSAGE, content_type="text/plain"
    )
    assert (other.status_code, other.json()["detail"]) == (404, "No such account: user-a2")
    assert bayes.learned(account_scope(user_a2.pk)) == (0, 0)


def test_it_hides_other_tenants_accounts(api_a, user_b):
    response = api_a.post(
        f"/api/spam-filter/train/spam/{user_b.name}", MESSAGE, content_type="text/plain"
    )
    assert response.status_code == 404
    assert (
        api_a.get(f"/api/store/purge/in-memory/default/bayes-account/{user_b.name}").status_code
        == 404
    )
    assert bayes.learned(account_scope(user_b.pk)) == (0, 0)


def test_it_trains_only_accounts(api_a, tenant_a, make_principal):
    group = make_principal(tenant=tenant_a, roles=(), type="group", name="sales")
    response = api_a.post("/api/spam-filter/train/spam/sales", MESSAGE, content_type="text/plain")
    assert response.status_code == 404
    assert bayes.learned(account_scope(group.pk)) == (0, 0)


# --- purge ---------------------------------------------------------------------------------


def test_it_purges_the_global_model_for_a_superadmin_only(api_root, api_a):
    api_root.post("/api/spam-filter/train/spam", MESSAGE, content_type="text/plain")
    refused = api_a.get("/api/store/purge/in-memory/default/bayes-global")
    assert refused.status_code == 403
    assert bayes.learned(GLOBAL) == (1, 0)
    response = api_root.get("/api/store/purge/in-memory/default/bayes-global")
    assert (response.status_code, response.json()) == (200, {"data": None})
    assert bayes.learned(GLOBAL) == (0, 0)


def test_it_purges_one_account_model_and_no_other(api_a, user_a, user_a2):
    for user in (user_a, user_a2):
        api_a.post(f"/api/spam-filter/train/spam/{user.name}", MESSAGE, content_type="text/plain")
    response = api_a.get(f"/api/store/purge/in-memory/default/bayes-account/{user_a.name}")
    assert (response.status_code, response.json()) == (200, {"data": None})
    assert bayes.learned(account_scope(user_a.pk)) == (0, 0)
    assert bayes.learned(account_scope(user_a2.pk)) == (1, 0)


def test_it_needs_purge_account_to_purge_an_account_model(api_client_for, user_a):
    response = api_client_for(user_a).get(
        f"/api/store/purge/in-memory/default/bayes-account/{user_a.name}"
    )
    assert response.status_code == 403
    assert response.json()["permission"] == "purge-account"


# --- rules reload --------------------------------------------------------------------------


@pytest.fixture
def rules_file(settings, tmp_path):
    """A copy of the bundled rules, its version pinned to the one these tests change."""
    path = tmp_path / "rules.yaml"
    text = re.sub(r'(?m)^version: ".*"$', 'version: "2026.11.30-1"', rules.DEFAULT_FILE.read_text())
    path.write_text(text)
    settings.MAILADMIN_SPAM_RULES_FILE = str(path)
    yield path
    settings.MAILADMIN_SPAM_RULES_FILE = ""
    rules.reload()


def test_it_reloads_the_rules_and_says_what_changed(api_root, rules_file):
    first = api_root.get("/api/update/spam-filter")
    assert first.status_code == 200
    assert first.json()["data"]["version"] == "2026.11.30-1"
    text = rules_file.read_text()
    text = text.replace('version: "2026.11.30-1"', 'version: "2026.11.30-2"')
    text = text.replace("{tag: MISSING_DATE, score: 1.0,", "{tag: MISSING_DATE, score: 3.0,")
    text = text.replace(
        '  - {tag: EMPTY_SUBJECT, score: 1.0, description: "Subject is empty"}\n', ""
    )
    text += "  - {tag: SUBJ_WIN, score: 2.0, header: Subject, pattern: '\\bwinner\\b'}\n"
    rules_file.write_text(text)
    data = api_root.get("/api/update/spam-filter").json()["data"]
    assert data["version"] == "2026.11.30-2"
    assert data["previousVersion"] == "2026.11.30-1"
    assert data["added"] == ["SUBJ_WIN"]
    assert data["removed"] == ["EMPTY_SUBJECT"]
    assert data["changed"] == {
        "MISSING_DATE": {
            "from": {"score": 1.0, "enabled": True, "action": "allow"},
            "to": {"score": 3.0, "enabled": True, "action": "allow"},
        }
    }
    assert rules.current().find("SUBJ_WIN").score == 2.0


def test_it_keeps_the_rules_in_force_when_the_file_is_broken(api_root, rules_file):
    api_root.get("/api/update/spam-filter")
    rules_file.write_text('version: "x"\nrules:\n  - {tag: lower_case, score: 1}\n')
    response = api_root.get("/api/update/spam-filter")
    assert response.status_code == 400
    assert "tag must be capitals" in response.json()["detail"]
    assert rules.current().version == "2026.11.30-1"


def test_it_leaves_the_rules_to_superadmins(api_a):
    response = api_a.get("/api/update/spam-filter")
    assert response.status_code == 403
    assert response.json()["permission"] == "spam-filter-update"


# --- DMARC troubleshooter ------------------------------------------------------------------

TROUBLESHOOT = {
    "remoteIp": "8.8.8.8",
    "ehloDomain": "mx.google.com",
    "mailFrom": "jane@example.org",
    "body": "From: jane@example.org\nTo: john@example.net\nSubject: Testing\n\nTesting 1, 2, 3\n",
}


def test_it_troubleshoots_dmarc_against_live_dns(api_a, dns_server):
    dns_server.set_zone("8.8.8.8.in-addr.arpa", {"PTR": ["dns.google."]})
    dns_server.set_zone("dns.google", {"A": ["8.8.8.8"]})
    dns_server.set_zone("example.org", {"TXT": ["v=spf1 ~all"]})
    dns_server.set_zone("_dmarc.example.org", {"TXT": ["v=DMARC1; p=reject"]})
    response = api_a.post("/api/troubleshoot/dmarc", TROUBLESHOOT, format="json")
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert data.pop("elapsed") >= 0
    assert data == {
        "spfEhloDomain": "mx.google.com",
        "spfEhloResult": {"type": "none"},
        "spfMailFromDomain": "example.org",
        "spfMailFromResult": {"type": "softFail", "details": None},
        "ipRevResult": {"type": "pass"},
        "ipRevPtr": ["dns.google."],
        "dkimResults": [],
        "dkimPass": False,
        "arcResult": {"type": "none"},
        "dmarcResult": {"type": "fail"},
        "dmarcPass": False,
        "dmarcPolicy": "reject",
    }


def test_it_gives_the_subdomain_policy_and_temporary_errors(api_a, dns_server):
    dns_server.set_zone("_dmarc.example.org", {"TXT": ["v=DMARC1; p=none; sp=quarantine"]})
    dns_server.set_zone("8.8.8.8.in-addr.arpa", "SERVFAIL")
    body = TROUBLESHOOT | {
        "body": TROUBLESHOOT["body"].replace("@example.org", "@news.example.org")
    }
    data = api_a.post("/api/troubleshoot/dmarc", body, format="json").json()["data"]
    assert (data["dmarcResult"], data["dmarcPolicy"]) == ({"type": "fail"}, "quarantine")
    assert data["ipRevResult"] == {"type": "tempError"}


def test_it_gives_iprev_permerror_when_the_ip_has_no_ptr_record(api_a, dns_server):
    data = api_a.post("/api/troubleshoot/dmarc", TROUBLESHOOT, format="json").json()["data"]
    assert (data["ipRevResult"], data["ipRevPtr"]) == ({"type": "permError"}, [])


@pytest.mark.parametrize(
    ("record", "result", "policy"),
    [
        # RFC 7489 6.6.3: no valid p= and no valid rua= is no DMARC processing (was
        # permError); with a valid rua= the record is evaluated as p=none
        ("v=DMARC1; p=bogus", "none", "none"),
        ("v=DMARC1; p=reject; sp=bogus", "none", "none"),
        ("v=DMARC1; p=bogus; rua=mailto:dmarc@example.org", "fail", "none"),
    ],
)
def test_it_troubleshoots_a_record_without_a_valid_policy(
    api_a, dns_server, record, result, policy
):
    dns_server.set_zone("_dmarc.example.org", {"TXT": [record]})
    data = api_a.post("/api/troubleshoot/dmarc", TROUBLESHOOT, format="json").json()["data"]
    assert (data["dmarcResult"], data["dmarcPass"], data["dmarcPolicy"]) == (
        {"type": result},
        False,
        policy,
    )


def test_it_needs_troubleshoot(api_client_for, user_a):
    response = api_client_for(user_a).post("/api/troubleshoot/dmarc", TROUBLESHOOT, format="json")
    assert response.status_code == 403
    assert response.json()["permission"] == "troubleshoot"


@pytest.mark.parametrize("depth", [101, 1000])
def test_it_refuses_a_message_nested_past_100_mime_levels(api_root, depth):
    """1,000 levels overflowed the parser's recursion: a 500 from both."""
    detail = "The message's MIME parts are nested more than 100 levels deep."
    message = nested_multipart(depth)
    response = api_root.post(
        "/api/spam-filter/classify", {"message": message.decode()}, format="json"
    )
    assert (response.status_code, response.json()["errors"]) == (
        400, [{"field": "message", "message": detail}])  # fmt: skip
    response = api_root.post("/api/spam-filter/train/spam", message, content_type="message/rfc822")
    assert (response.status_code, response.json()["detail"]) == (400, detail)
    assert bayes.learned(GLOBAL) == (0, 0)


def test_a_redis_that_is_down_answers_503_and_learns_nothing_elsewhere(api_root, settings):
    """Nothing listens on the port REDIS_URL names: a passing outage, not a server error."""
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    for response in (
        api_root.post("/api/spam-filter/train/spam", MESSAGE, content_type="text/plain"),
        api_root.get("/api/store/purge/in-memory/default/bayes-global"),
    ):
        assert response.status_code == 503
        assert response["Retry-After"] == "30"
        assert response.json()["detail"] == (
            "The in-memory store (Redis) is unavailable: try again later."
        )
    settings.REDIS_URL = ""
    assert bayes.learned(GLOBAL) == (0, 0)
