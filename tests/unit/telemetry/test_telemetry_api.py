"""The telemetry API: metrics, stored traces, live tokens and the two live streams
(Server-Sent Events), for superadmins only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core import signing
from django.core.cache import cache
from django.db import DatabaseError
from django.utils import timezone

from apps.telemetry import events, live
from apps.telemetry.models import MetricBucket, Trace, TraceEvent
from apps.telemetry.traces import telemetry_purge
from mailadmin.api import streams

pytestmark = pytest.mark.django_db

FORBIDDEN = "Metrics and traces are for superadmins only: they cover every tenant of the server."


@pytest.fixture(autouse=True)
def _empty_buffer():
    events.reset()
    yield
    events.reset()


@pytest.fixture
def smtp_trace():
    events.emit(
        "smtp.connection-start",
        "smtp-1",
        listenerId="smtp",
        localPort=25,
        remoteIp="192.0.2.1",
        remotePort=40000,
    )
    events.emit("smtp.mail-from", "smtp-1", **{"from": "a@remote.test"})
    events.emit("smtp.rcpt-to", "smtp-1", to="jane@example.test", reply="250")
    events.emit("smtp.message-accepted", "smtp-1", queueId="ABC", size=1200, recipients=1)
    events.emit("delivery.attempt", "delivery-9", domain="remote.test")
    events.flush()
    return "smtp-1"


def test_it_answers_the_metrics_since_a_time(api_root, smtp_trace):
    body = api_root.get("/api/telemetry/metrics").json()
    by_name = {item["name"]: item for item in body["data"]}
    assert by_name["smtp.message-accepted"]["type"] == "counter"
    assert by_name["smtp.message-accepted"]["value"] == 1
    size = by_name["message.size"]
    assert (size["type"], size["count"], size["sum"]) == ("histogram", 1, 1200.0)
    datetime.fromisoformat(size["timestamp"])
    later = (timezone.now() + timedelta(minutes=1)).isoformat()
    assert api_root.get("/api/telemetry/metrics", {"after": later}).json() == {"data": []}


def test_it_refuses_a_bad_after_with_a_problem(api_root):
    response = api_root.get("/api/telemetry/metrics", {"after": "yesterday"})
    assert response.status_code == 400
    assert response.json()["detail"] == (
        "Invalid value for field after: 'yesterday' is not an ISO 8601 date and time."
    )
    response = api_root.get("/api/telemetry/metrics", {"after": "2026-13-45T00:00:00"})
    assert response.status_code == 400


def test_it_lists_traces_with_a_type_filter_and_their_values(api_root, smtp_trace):
    body = api_root.get("/api/telemetry/traces").json()["data"]
    assert body["total"] == 2
    assert {item["id"] for item in body["items"]} == {"smtp-1", "delivery-9"}
    body = api_root.get(
        "/api/telemetry/traces", {"type": "smtp.rcpt-to", "values": "1", "limit": 10}
    ).json()["data"]
    [item] = body["items"]
    assert item["id"] == "smtp-1"
    assert item["kind"] == "smtp"
    assert item["values"] == {
        "remoteIp": "192.0.2.1",
        "from": "a@remote.test",
        "to": "jane@example.test",
        "queueId": "ABC",
    }
    assert api_root.get("/api/telemetry/traces", {"type": "nope"}).json()["data"]["total"] == 0
    assert api_root.get("/api/telemetry/traces", {"values": "2"}).status_code == 400


def test_it_answers_a_trace_in_the_specs_event_shape(api_root, smtp_trace):
    data = api_root.get("/api/telemetry/trace/smtp-1").json()["data"]
    assert [e["type"] for e in data] == [
        "smtp.connection-start",
        "smtp.mail-from",
        "smtp.rcpt-to",
        "smtp.message-accepted",
    ]
    first = data[0]
    assert first["text"] == "SMTP connection started"
    assert first["details"] == "A new SMTP connection was started"
    assert first["createdAt"].endswith("Z")
    assert first["data"] == {
        "listenerId": "smtp",
        "localPort": 25,
        "remoteIp": "192.0.2.1",
        "remotePort": 40000,
    }
    response = api_root.get("/api/telemetry/trace/unknown")
    assert response.status_code == 404
    assert response.json()["detail"] == (
        "No trace 'unknown': unknown, or purged after its retention."
    )


@pytest.mark.parametrize(
    "url",
    [
        "/api/telemetry/metrics",
        "/api/telemetry/traces",
        "/api/telemetry/trace/smtp-1",
        "/api/telemetry/live/metrics-token",
        "/api/telemetry/live/tracing-token",
    ],
)
def test_it_refuses_a_tenant_admin(api_a, smtp_trace, url):
    response = api_a.get(url)
    assert response.status_code == 403
    assert response.json()["status"] == 403


def test_it_tells_a_tenant_admin_why(api_a):
    assert api_a.get("/api/telemetry/metrics").json()["detail"] == FORBIDDEN
    assert api_a.get("/api/telemetry/traces").json()["detail"] == FORBIDDEN


def test_it_streams_live_metrics_then_ends(api_root, anon_api, smtp_trace, settings):
    settings.MAILADMIN_TELEMETRY_LIVE_SECONDS = 0
    token = api_root.get("/api/telemetry/live/metrics-token").json()["data"]
    response = anon_api.get(
        "/api/telemetry/metrics/live",
        {"token": token, "interval": "1", "metrics": "smtp.message-accepted"},
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    body = b"".join(response.streaming_content).decode()
    assert body == (
        'event: metrics\ndata: {"smtp.message-accepted":{"type":"counter","value":1}}\n\n'
        'event: end\ndata: {"reason":"Stream time is up; reconnect with a new token."}\n\n'
    )


def test_it_streams_new_trace_events_matching_the_filter(api_root, anon_api, settings):
    settings.MAILADMIN_TELEMETRY_LIVE_SECONDS = 0
    token = api_root.get("/api/telemetry/live/tracing-token").json()["data"]
    response = anon_api.get("/api/telemetry/traces/live", {"token": token, "filter": "smtp."})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    stream = iter(response.streaming_content)
    assert next(stream).startswith(b"event: start\n")
    # Stored after the stream started: the stream's first poll finds them.
    events.emit("smtp.connection-start", "smtp-2", remoteIp="192.0.2.7")
    events.emit("delivery.attempt", "delivery-2", domain="remote.test")
    events.flush()
    rest = b"".join(stream).decode()
    assert rest.count("event: trace\n") == 1
    assert '"traceId":"smtp-2"' in rest
    assert '"type":"smtp.connection-start"' in rest
    assert rest.endswith("event: end\n" + 'data: {"reason":"Stream time is up; reconnect '
                         'with a new token."}\n\n')  # fmt: skip


def test_it_bounds_the_live_streams_one_process_serves(api_root, anon_api, settings):
    settings.MAILADMIN_TELEMETRY_LIVE_SECONDS = 0
    settings.MAILADMIN_LIVE_STREAMS_MAX = 1
    token = api_root.get("/api/telemetry/live/metrics-token").json()["data"]
    tracing = api_root.get("/api/telemetry/live/tracing-token").json()["data"]
    first = anon_api.get("/api/telemetry/metrics/live", {"token": token})
    assert first.status_code == 200
    assert streams.open_streams() == 1
    for url, key in (("metrics", token), ("traces", tracing)):
        refused = anon_api.get(f"/api/telemetry/{url}/live", {"token": key})
        assert refused.status_code == 429, url
        assert refused.json()["detail"] == (
            "Too many live streams are open (1); close one or try again later."
        )
    assert b"".join(first.streaming_content).endswith(b'reconnect with a new token."}\n\n')
    assert streams.open_streams() == 0  # a stream that ended frees its slot
    again = anon_api.get("/api/telemetry/traces/live", {"token": tracing})
    assert again.status_code == 200
    b"".join(again.streaming_content)


def test_a_stream_closed_unread_frees_its_slot(settings):
    # What the server does when the client goes away before the first event.
    settings.MAILADMIN_LIVE_STREAMS_MAX = 1
    started = []

    def events():
        started.append(True)
        yield b"x"

    response = streams.event_stream(events(), token="t", seconds=60)
    assert streams.open_streams() == 1
    for closer in response._resource_closers:  # what HttpResponse.close() runs (less the
        closer()  # request_finished signal, which would close the test's database)
    assert (streams.open_streams(), started) == (0, [])


def test_a_token_opens_one_stream(api_root, anon_api, settings):
    # The token rides in the URL, where proxies and access logs keep it.
    settings.MAILADMIN_TELEMETRY_LIVE_SECONDS = 0
    token = api_root.get("/api/telemetry/live/tracing-token").json()["data"]
    assert token != api_root.get("/api/telemetry/live/tracing-token").json()["data"]
    first = anon_api.get("/api/telemetry/traces/live", {"token": token})
    assert first.status_code == 200
    b"".join(first.streaming_content)
    cache.clear()  # kept in a table: no cache eviction or cull forgets it
    again = anon_api.get("/api/telemetry/traces/live", {"token": token})
    assert again.status_code == 401
    assert again.json()["detail"] == "This token was already used: obtain a new one."


def test_a_failure_to_spend_the_token_gives_the_slot_back(settings, monkeypatch):
    settings.MAILADMIN_LIVE_STREAMS_MAX = 1

    def broken(token, *, seconds):
        raise DatabaseError("database is locked")

    monkeypatch.setattr(streams, "spend", broken)
    with pytest.raises(DatabaseError):
        streams.event_stream(iter([b"x"]), token="t", seconds=60)
    assert streams.open_streams() == 0


def test_the_streams_leave_threads_for_the_console():
    # serve runs MAILADMIN_WEB_THREADS threads per web process; streams may take half.
    from django.conf import settings

    assert 1 <= settings.MAILADMIN_LIVE_STREAMS_MAX < settings.MAILADMIN_WEB_THREADS


def test_it_refuses_a_live_stream_without_a_valid_token(api_root, anon_api, settings):
    metrics_token = api_root.get("/api/telemetry/live/metrics-token").json()["data"]
    cases = [
        ("/api/telemetry/metrics/live", "", "Missing token: obtain one from "
         "/api/telemetry/live/*-token."),
        ("/api/telemetry/metrics/live", "garbage", "Invalid token."),
        ("/api/telemetry/traces/live", metrics_token, "This token does not open the tracing "
         "stream."),
    ]  # fmt: skip
    for url, token, detail in cases:
        response = anon_api.get(url, {"token": token})
        assert response.status_code == 401, url
        assert response.json()["detail"] == detail


def test_it_refuses_an_expired_token(api_root, anon_api, superadmin, settings, monkeypatch):
    old = datetime.now(UTC) - timedelta(minutes=10)
    monkeypatch.setattr(signing.time, "time", lambda: old.timestamp())
    token = live.token_issue(actor=superadmin, stream="metrics")
    monkeypatch.undo()
    response = anon_api.get("/api/telemetry/metrics/live", {"token": token})
    assert response.status_code == 401
    assert response.json()["detail"] == "The token has expired: obtain a new one."


def test_it_refuses_a_token_whose_principal_lost_its_reach(api_root, anon_api, superadmin):
    token = api_root.get("/api/telemetry/live/metrics-token").json()["data"]
    superadmin.is_active = False
    superadmin.save(update_fields=["is_active"])
    response = anon_api.get("/api/telemetry/metrics/live", {"token": token})
    assert response.status_code == 401


def test_it_refuses_a_bad_interval(api_root, anon_api):
    token = api_root.get("/api/telemetry/live/metrics-token").json()["data"]
    for interval in ("0", "61", "soon"):
        response = anon_api.get(
            "/api/telemetry/metrics/live", {"token": token, "interval": interval}
        )
        assert response.status_code == 400
        assert response.json()["detail"].startswith("Invalid value for field interval")


def test_it_purges_traces_and_metrics_past_their_retention(smtp_trace):
    later = timezone.now() + timedelta(days=8)
    events.emit("smtp.connection-start", "smtp-new")
    events.flush()
    Trace.objects.filter(id="smtp-new").update(started_at=later)
    MetricBucket.objects.filter(name="smtp.connection-start").update(minute=later)
    traces, buckets = telemetry_purge(now=later, days=7)
    assert traces == 2
    assert buckets > 0
    assert list(Trace.objects.values_list("id", flat=True)) == ["smtp-new"]
    assert set(TraceEvent.objects.values_list("trace_id", flat=True)) == {"smtp-new"}
    assert list(MetricBucket.objects.values_list("name", flat=True)) == ["smtp.connection-start"]
    assert telemetry_purge(now=later, days=0) == (0, 0)


def test_it_lists_traces_with_values_in_constant_queries(api_root):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries(n: int) -> int:
        for i in range(n):
            events.emit("smtp.connection-start", f"smtp-q{n}-{i}", remoteIp="192.0.2.1")
            events.emit("smtp.mail-from", f"smtp-q{n}-{i}", **{"from": "a@remote.test"})
        events.flush()
        with CaptureQueriesContext(connection) as captured:
            body = api_root.get("/api/telemetry/traces", {"values": "1"}).json()["data"]
        assert all(item["values"] for item in body["items"])
        return len(captured)

    api_root.get("/api/telemetry/traces")  # the first request's one-off reads
    assert queries(3) == queries(30) == 3  # who asks, the page, its events (short: no count)
