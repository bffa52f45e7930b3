"""Delivery troubleshooting against real loopback peers: the DNS fixture answers the MX
lookups, the SMTP sink is the remote MX; the steps arrive as Server-Sent Events."""

from __future__ import annotations

import hashlib
import json
import ssl

import pytest
from django.core import signing

from apps.queue import remote, tls_policy
from apps.telemetry import troubleshoot
from tests.support.smtp_sink import SmtpSink
from tests.support.tls_ca import Authority

pytestmark = pytest.mark.django_db

REMOTE = "remote.test"
INVALID_TOKEN = (
    "The troubleshooting token is missing, invalid or expired: get a new one from "
    "GET /api/troubleshoot/token."
)


@pytest.fixture(autouse=True)
def _fresh_caches(settings):
    settings.MAILADMIN_HOSTNAME = "mail.mailadmin.test"
    remote.clear_mx_cache()
    tls_policy.clear_caches()
    yield
    remote.clear_mx_cache()
    tls_policy.clear_caches()


@pytest.fixture
def mx(dns_server, smtp_sink, settings):
    dns_server.set_zone(REMOTE, {"MX": [(10, "mx.remote.test.")]})
    dns_server.set_zone("mx.remote.test", {"A": ["127.0.0.1"]})
    settings.MAILADMIN_SMTP_REMOTE_PORT = smtp_sink.port
    return smtp_sink


@pytest.fixture
def token(api_root) -> str:
    response = api_root.get("/api/troubleshoot/token")
    assert response.status_code == 200
    return response.json()["data"]


def events(client, recipient: str, token: str) -> list[dict]:
    response = client.get(
        f"/api/troubleshoot/delivery/{recipient}?token={token}", HTTP_ACCEPT="text/event-stream"
    )
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/event-stream"
    text = b"".join(response.streaming_content).decode()
    found = []
    for block in text.strip().split("\n\n"):
        kind, data = block.split("\n")
        assert kind.startswith("event: ") and data.startswith("data: ")
        event = json.loads(data.removeprefix("data: "))
        assert event["type"] == kind.removeprefix("event: ")
        found.append(event)
    return found


def steps(found: list[dict]) -> list[tuple[str, str]]:
    return [(e["step"], e["outcome"]) for e in found if e["type"] == "step"]


def test_it_walks_an_accepted_recipient_up_to_rcpt(anon_api, mx, token):
    found = events(anon_api, f"jane@{REMOTE}", token)
    assert steps(found) == [
        ("mx", "success"),
        ("mta-sts", "success"),
        ("addresses", "success"),
        ("dane", "success"),
        ("connect", "success"),
        ("ehlo", "success"),
        ("starttls", "warning"),
        ("mail-from", "success"),
        ("rcpt", "success"),
        ("quit", "success"),
    ]
    by_step = {e["step"]: e for e in found if e["type"] == "step"}
    assert by_step["mx"]["detail"] == "MX: 10 mx.remote.test"
    assert by_step["addresses"]["detail"] == "mx.remote.test: 127.0.0.1"
    assert by_step["connect"]["detail"].startswith(f"mx.remote.test[127.0.0.1]:{mx.port}: 220 ")
    assert by_step["starttls"]["detail"] == "Not offered: mail would travel in plain text."
    assert by_step["mail-from"]["detail"] == "MAIL FROM:<> 250 OK"
    assert by_step["rcpt"]["detail"] == f"RCPT TO:<jane@{REMOTE}> 250 2.1.5 OK"
    assert all(isinstance(e["elapsedMs"], int) and e["elapsedMs"] >= 0 for e in found)
    verdict = found[-1]
    assert verdict["type"] == "verdict"
    assert (verdict["outcome"], verdict["detail"]) == (
        "success",
        f"mx.remote.test accepts mail for jane@{REMOTE}: 250 2.1.5 OK",
    )
    assert mx.messages == []  # DATA is never sent


def test_it_reports_a_refused_recipient(anon_api, mx, token):
    mx.handler.rcpt_replies[f"nobody@{REMOTE}"] = "550 5.1.1 No such user"
    found = events(anon_api, f"nobody@{REMOTE}", token)
    assert ("rcpt", "failure") in steps(found)
    assert found[-1]["outcome"] == "failure"
    assert found[-1]["detail"] == f"mx.remote.test refuses nobody@{REMOTE}: 550 5.1.1 No such user"


def test_it_uses_the_domain_itself_without_an_mx(anon_api, dns_server, smtp_sink, settings, token):
    dns_server.set_zone("plain.test", {"A": ["127.0.0.1"]})
    settings.MAILADMIN_SMTP_REMOTE_PORT = smtp_sink.port
    found = events(anon_api, "jane@plain.test", token)
    assert found[0]["detail"] == "No MX record: plain.test itself is the mail host (implicit MX)."
    assert found[-1]["outcome"] == "success"


def test_it_stops_at_a_null_mx(anon_api, dns_server, token):
    dns_server.set_zone("nomail.test", {"MX": [(0, ".")]})
    found = events(anon_api, "jane@nomail.test", token)
    assert steps(found) == [("mx", "failure")]
    assert found[-1]["outcome"] == "failure"
    assert found[-1]["detail"] == (
        "Undeliverable: 556 5.1.10 Domain nomail.test does not accept mail (null MX)"
    )


def test_it_stops_at_a_domain_that_does_not_exist(anon_api, dns_server, token):
    found = events(anon_api, "jane@missing.test", token)
    assert (
        found[-1]["detail"]
        == "Undeliverable: 550 5.1.2 Host or domain name not found: missing.test"
    )


def test_it_says_when_no_mx_host_answers(anon_api, dns_server, settings, token):
    dns_server.set_zone(REMOTE, {"MX": [(10, "mx.remote.test.")]})
    dns_server.set_zone("mx.remote.test", {"A": ["127.0.0.1"]})
    settings.MAILADMIN_SMTP_REMOTE_PORT = 9  # nobody listens
    found = events(anon_api, f"jane@{REMOTE}", token)
    assert ("connect", "failure") in steps(found)
    assert found[-1]["outcome"] == "warning"
    assert found[-1]["detail"] == (
        "No MX host answered for the recipient; delivery would be retried later: "
        "mx.remote.test[127.0.0.1]:9"
    )


def test_it_reports_an_unverified_certificate_and_goes_on(
    anon_api, dns_server, settings, tmp_path, token
):
    sink = SmtpSink(tls_dir=str(tmp_path)).start()
    try:
        dns_server.set_zone(REMOTE, {"MX": [(10, "mx.remote.test.")]})
        dns_server.set_zone("mx.remote.test", {"A": ["127.0.0.1"]})
        settings.MAILADMIN_SMTP_REMOTE_PORT = sink.port
        found = events(anon_api, f"jane@{REMOTE}", token)
    finally:
        sink.stop()
    tls = [e for e in found if e.get("step") == "starttls"]
    assert tls[0]["outcome"] == "warning" and tls[0]["verified"] is False
    assert tls[0]["detail"].startswith("Certificate not verified: ")
    assert "opportunistic TLS" in tls[1]["detail"]
    assert found[-1]["outcome"] == "success"


def test_it_falls_back_to_plain_text_when_the_handshake_fails(
    anon_api, dns_server, settings, tmp_path, token
):
    sink = SmtpSink(tls_dir=str(tmp_path), tls_maximum_version=ssl.TLSVersion.TLSv1).start()
    try:
        dns_server.set_zone(REMOTE, {"MX": [(10, "mx.remote.test.")]})
        dns_server.set_zone("mx.remote.test", {"A": ["127.0.0.1"]})
        settings.MAILADMIN_SMTP_REMOTE_PORT = sink.port
        found = events(anon_api, f"jane@{REMOTE}", token)
    finally:
        sink.stop()
    tls = [e for e in found if e.get("step") == "starttls"]
    assert tls[0]["outcome"] == "warning" and tls[0]["detail"].startswith("STARTTLS failed: ")
    assert tls[1]["detail"] == (
        "Reconnected without TLS, as delivery would (opportunistic TLS, RFC 7435)."
    )
    assert found[-1]["outcome"] == "success"


@pytest.fixture
def tls_mx(dns_server, settings):
    """remote.test's MX is a sink speaking STARTTLS with the given server context."""
    started = []

    def start(context, *, tlsa: bytes | None = None) -> SmtpSink:
        sink = SmtpSink(tls_context=context).start()
        started.append(sink)
        dns_server.set_zone(REMOTE, {"MX": [(10, "mx.remote.test.")]})
        dns_server.set_zone("mx.remote.test", {"A": ["127.0.0.1"]})
        settings.MAILADMIN_SMTP_REMOTE_PORT = sink.port
        if tlsa is not None:
            name = f"_{sink.port}._tcp.mx.remote.test"
            dns_server.set_zone(name, {"TLSA": [(3, 1, 1, hashlib.sha256(tlsa).hexdigest())]})
            dns_server.authenticated.add(name)
        return sink

    yield start
    for sink in started:
        sink.stop()


def test_it_verifies_a_webpki_certificate(anon_api, tls_mx, tmp_path, settings, token):
    authority = Authority(tmp_path)
    settings.MAILADMIN_TLS_CA_FILE = str(authority.cert_file)
    tls_mx(authority.issue("mx.remote.test").server_context())
    found = events(anon_api, f"jane@{REMOTE}", token)
    [tls] = [e for e in found if e.get("step") == "starttls"]
    assert (tls["outcome"], tls["verified"]) == ("success", True)
    assert tls["detail"].endswith(": certificate verified for mx.remote.test")
    assert found[-1]["outcome"] == "success"


def test_it_matches_the_certificate_against_dane_tlsa(anon_api, tls_mx, tmp_path, token):
    issued = Authority(tmp_path, "nobody trusts this").issue("mx.remote.test")
    tls_mx(issued.server_context(), tlsa=issued.spki)
    found = events(anon_api, f"jane@{REMOTE}", token)
    dane = next(e for e in found if e.get("step") == "dane")
    assert dane["detail"] == (
        f"TLSA authenticated: 3 1 1 {hashlib.sha256(issued.spki).hexdigest()} TLS required by DANE."
    )
    [tls] = [e for e in found if e.get("step") == "starttls"]
    assert tls["outcome"] == "success"
    assert tls["detail"].endswith(": certificate matches a TLSA record")
    assert found[-1]["outcome"] == "success"


def test_a_dane_mismatch_is_a_deferral_before_mail_from(anon_api, tls_mx, tmp_path, token):
    issued = Authority(tmp_path).issue("mx.remote.test")
    sink = tls_mx(issued.server_context(), tlsa=b"some other key")
    found = events(anon_api, f"jane@{REMOTE}", token)
    assert steps(found)[-1] == ("starttls", "failure")
    assert found[-1]["outcome"] == "warning"
    assert found[-1]["detail"] == (
        "No MX host answered for the recipient; delivery would be retried later: "
        f"mx.remote.test[127.0.0.1]:{sink.port}: DANE: The certificate of mx.remote.test "
        "matches none of its TLSA records"
    )
    assert sink.messages == []


@pytest.mark.parametrize("bad", ["", "nonsense", "?"])
def test_it_refuses_an_invalid_token(anon_api, mx, bad):
    response = anon_api.get(f"/api/troubleshoot/delivery/jane@{REMOTE}?token={bad}")
    assert response.status_code == 401
    assert response.json()["detail"] == INVALID_TOKEN


def test_it_refuses_an_expired_or_foreign_token(anon_api, mx, superadmin, settings, monkeypatch):
    other_salt = signing.dumps({"p": superadmin.pk}, salt="another.purpose", compress=True)
    assert (
        anon_api.get(f"/api/troubleshoot/delivery/j@{REMOTE}?token={other_salt}").status_code == 401
    )
    monkeypatch.setattr(troubleshoot, "TOKEN_SECONDS", -1)
    expired = troubleshoot.token_issue(actor=superadmin)
    response = anon_api.get(f"/api/troubleshoot/delivery/j@{REMOTE}?token={expired}")
    assert response.status_code == 401


def test_a_token_dies_with_its_principals_rights(anon_api, mx, superadmin, token):
    superadmin.is_active = False
    superadmin.save(update_fields=["is_active"])
    response = anon_api.get(f"/api/troubleshoot/delivery/jane@{REMOTE}?token={token}")
    assert response.status_code == 401


def test_it_refuses_a_bad_recipient(anon_api, token):
    response = anon_api.get(f"/api/troubleshoot/delivery/not-an-address?token={token}")
    assert response.status_code == 400
    assert response.json()["detail"] == (
        "Invalid value for field recipient: 'not-an-address' is not an e-mail address."
    )


def test_a_bad_recipient_leaves_the_token_unspent_and_a_stream_spends_it(anon_api, mx, token):
    assert anon_api.get(f"/api/troubleshoot/delivery/bad?token={token}").status_code == 400
    assert events(anon_api, f"jane@{REMOTE}", token)[-1]["type"] == "verdict"
    again = anon_api.get(f"/api/troubleshoot/delivery/jane@{REMOTE}?token={token}")
    assert again.status_code == 401
    assert again.json()["detail"] == "This token was already used: obtain a new one."


def test_tenant_admins_get_no_token(api_a, anon_api):
    """Tenant admins hold `troubleshoot`, but the steps show the server's network path and
    resolver answers: superadmins only."""
    response = api_a.get("/api/troubleshoot/token")
    assert response.status_code == 403
    assert response.json()["detail"] == "Delivery troubleshooting is for superadmins only."
    assert anon_api.get("/api/troubleshoot/token").status_code == 401


def test_it_gives_up_after_the_time_budget(anon_api, mx, settings, token):
    settings.MAILADMIN_TROUBLESHOOT_TIMEOUT = 0
    found = events(anon_api, f"jane@{REMOTE}", token)
    assert found[-1]["outcome"] == "failure"
    assert found[-1]["detail"] == "Stopped after 0 s (MAILADMIN_TROUBLESHOOT_TIMEOUT)."
