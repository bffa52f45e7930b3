"""The spam filter API on odd input: never a 500, and the spec's own classify example."""

from __future__ import annotations

import pytest

from apps.spamfilter import rules

pytestmark = pytest.mark.django_db

SPEC_MESSAGE = (
    "From: user@foo.org\nTo: other@foo.org\nSubject: Testing, please ignore\n"
    'Content-Type: text/plain; charset="utf-8"\nContent-Transfer-Encoding: 8bit\n\n'
    "Testing 1, 2, 3\n"
)
SPEC_CLASSIFY = {
    "message": SPEC_MESSAGE,
    "remoteIp": "8.8.8.8",
    "ehloDomain": "foo.org",
    "authenticatedAs": None,
    "isTls": True,
    "envFrom": "bounce@bar.org",
    "envFromFlags": 0,
    "envRcptTo": ["other@foo.org"],
}
SPEC_TAGS = {
    "FROM_NO_DN", "MISSING_DATE", "MISSING_MID", "MISSING_MIME_VERSION", "FORGED_SENDER",
    "HELO_NORES_A_OR_MX", "FROMHOST_NORES_A_OR_MX", "HELO_IPREV_MISMATCH", "RCVD_COUNT_ZERO",
    "RCVD_TLS_LAST", "TO_DN_NONE", "TO_DOM_EQ_FROM_DOM", "FROM_NEQ_ENV_FROM",
    "SINGLE_SHORT_PART", "RCPT_COUNT_ONE", "AUTH_NA", "SPF_NA", "DKIM_NA", "DMARC_NA", "ARC_NA",
    "X_HDR_TO", "X_HDR_FROM", "X_HDR_SUBJECT", "X_HDR_CONTENT_TYPE",
    "X_HDR_CONTENT_TRANSFER_ENCODING",
}  # fmt: skip


def test_the_spec_example_gets_the_specs_tags(api_root, dns_server):
    response = api_root.post("/api/spam-filter/classify", SPEC_CLASSIFY, format="json")
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    missing = SPEC_TAGS - set(data["tags"])
    assert not missing, missing
    # X_HDR_<header> are made per header present; every other tag is a rule of the file.
    assert {t for t in SPEC_TAGS if not t.startswith("X_HDR_")} <= set(rules.current().rules)
    value = data["disposition"]["value"]
    assert value.startswith("X-Spam-Result: ") and value.endswith(f"score={data['score']:.2f}\r\n")


@pytest.mark.parametrize(
    "body",
    [
        {"message": 5},
        {"message": ["a"]},
        {"message": None},
        {"message": SPEC_MESSAGE, "remoteIp": "[8.8.8.8]"},
        {"message": SPEC_MESSAGE, "remoteIp": 8},
        {"message": SPEC_MESSAGE, "envRcptTo": "a@b.example"},
        {"message": SPEC_MESSAGE, "envRcptTo": [None]},
        {"message": SPEC_MESSAGE, "envFromFlags": -1},
        {"message": SPEC_MESSAGE, "envFromFlags": "x"},
        {"message": SPEC_MESSAGE, "isTls": "maybe"},
        {"message": SPEC_MESSAGE, "authenticatedAs": 5},
        {"message": SPEC_MESSAGE, "ehloDomain": ["x"]},
    ],
)
def test_bad_classify_fields_are_400(api_root, body):
    response = api_root.post("/api/spam-filter/classify", body, format="json")
    assert response.status_code == 400, response.content


@pytest.mark.parametrize(
    "message",
    [
        "no header at all, just words",
        "Subject: only headers",
        "From: \x00@\x00\r\n\r\nnul",
        "From: a@b.example\rTo: c@d.example\r\rlone CRs",
        "Subject: " + "x" * 100_000 + "\r\n\r\nlong",
        "From: =?utf-8?b?////?= <a@b.example>\r\nContent-Type: multipart/mixed\r\n\r\nno boundary",
        "From: a@b.example\r\nContent-Type: text/html; charset=nonesuch\r\n\r\n<a href=x>y</a>",
        "From: a@[127.0.0.1]\r\nReceived: from [::1]\r\nDKIM-Signature: v=1; d=; s=\r\n\r\nx",
    ],
)
def test_odd_messages_are_classified(api_root, dns_server, message):
    body = {"message": message, "remoteIp": "192.0.2.1", "ehloDomain": "[192.0.2.1]",
            "envFrom": "<>", "envRcptTo": ["x@y.example"]}  # fmt: skip
    response = api_root.post("/api/spam-filter/classify", body, format="json")
    assert response.status_code in (200, 400), response.content


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/spam-filter/classify", "message"),
        ("/api/troubleshoot/dmarc", "body"),
        ("/api/spam-filter/train/ham", None),
    ],
)
def test_a_lone_surrogate_in_json_is_not_a_500(api_root, dns_server, path, field):
    """JSON may escape a lone surrogate (\\ud800); UTF-8 cannot encode it."""
    text = '"From: a@b.example\\r\\n\\r\\n\\ud800 \\udcff"'
    raw = text if field is None else f'{{"{field}": {text}}}'
    response = api_root.post(path, raw.encode(), content_type="application/json")
    assert response.status_code in (200, 400), response.content


@pytest.mark.parametrize(
    "body",
    [
        {"remoteIp": "8.8.8.8", "ehloDomain": "[8.8.8.8]", "mailFrom": "", "body": SPEC_MESSAGE},
        {"remoteIp": "", "ehloDomain": "", "mailFrom": "<>", "body": SPEC_MESSAGE},
        {"remoteIp": "2001:db8::1", "ehloDomain": "x", "mailFrom": "a@", "body": "x"},
        {"remoteIp": "8.8.8.8", "mailFrom": "a@b@c", "body": SPEC_MESSAGE},
        {"remoteIp": "8.8.8.8", "ehloDomain": "a..b", "mailFrom": "a@..", "body": SPEC_MESSAGE},
        {"remoteIp": "8.8.8.8", "ehloDomain": "x" * 255, "body": SPEC_MESSAGE},
    ],
)
def test_odd_troubleshoot_requests_are_answered(api_root, dns_server, body):
    response = api_root.post("/api/troubleshoot/dmarc", body, format="json")
    assert response.status_code == 200, response.content


@pytest.mark.parametrize(
    "body",
    [{}, {"body": 5}, {"body": SPEC_MESSAGE, "remoteIp": "1.2.3"}, {"body": SPEC_MESSAGE, "x": 1}],
)
def test_bad_troubleshoot_requests_are_400(api_root, body):
    response = api_root.post("/api/troubleshoot/dmarc", body, format="json")
    assert response.status_code == 400, response.content


@pytest.mark.parametrize("account", ["%20", "0", "-1", "x" * 300, "..", "a%2Fb", "9" * 30])
def test_odd_account_ids_are_not_found(api_root, account, settings):
    settings.REDIS_URL = ""
    for response in (
        api_root.post(f"/api/spam-filter/train/spam/{account}", "x", content_type="text/plain"),
        api_root.get(f"/api/store/purge/in-memory/default/bayes-account/{account}"),
    ):
        assert response.status_code in (400, 404), response.content


def test_it_trains_from_the_specs_form_encoded_sample(api_root, settings):
    """The spec's code sample posts the raw message as application/x-www-form-urlencoded."""
    from apps.spamfilter import bayes

    settings.REDIS_URL = ""
    for kind in ("spam", "ham"):
        response = api_root.post(
            f"/api/spam-filter/train/{kind}",
            SPEC_MESSAGE.encode(),
            content_type="application/x-www-form-urlencoded",
        )
        assert (response.status_code, response.json()) == (200, {"data": None})
    assert bayes.learned(bayes.GLOBAL) == (1, 1)
