"""mailadmin's own log: records written by the logging handler, read back by superadmins
through GET /api/logs (newest first, paged, filtered), never holding a secret."""

from __future__ import annotations

import json
import logging
import multiprocessing

import pytest

from apps.telemetry.logs import JsonLinesHandler, event_id

pytestmark = pytest.mark.django_db

log = logging.getLogger("apps.queue.remote")


@pytest.fixture
def store(settings, tmp_path):
    """A JSON-lines store on the root logger, as settings' LOGGING installs it."""
    path = tmp_path / "logs" / "mailadmin.jsonl"
    handler = JsonLinesHandler(path, max_bytes=1_000_000, backups=2)
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    settings.MAILADMIN_LOG_FILE = path
    yield path
    root.removeHandler(handler)
    root.setLevel(old_level)
    handler.close()


def lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_it_writes_records_in_the_specs_shape(store):
    log.warning(
        "STARTTLS with %s failed (%s)", "mx.remote.test", "timeout", extra={"port": 25, "tls": True}
    )
    [entry] = lines(store)
    assert entry["level"] == "WARNING"
    assert entry["event"] == "STARTTLS with mx.remote.test failed (timeout)"
    assert entry["event_id"] == "queue.remote.starttls-with-failed"
    assert entry["details"] == "port = 25, tls = true"
    assert entry["timestamp"].endswith("Z") and len(entry["timestamp"]) == 20


def test_it_takes_an_explicit_event_key_and_quotes_strings(store):
    logging.getLogger("mailadmin.api").info(
        "HTTP request URL", extra={"event": "request-url", "url": "/api/logs?page=1"}
    )
    [entry] = lines(store)
    assert entry["event_id"] == "api.request-url"
    assert entry["details"] == 'url = "/api/logs?page=1"'


def test_it_never_stores_a_secret(store):
    log.info("login for %s with password=%s", "jane", "hunter2-secret")
    log.info("request with Authorization: Bearer abcdefghijklmnop1234 failed")
    log.info("basic auth header Basic amFuZTpodW50ZXIy seen")
    log.info("api key", extra={"password": "p4ss-word", "api_key": "k3y-value", "token": "t0k3n"})
    log.info("reset", extra={"note": "token=s3cr3t-tok"})
    text = store.read_text()
    for secret in (
        "hunter2-secret", "abcdefghijklmnop1234", "amFuZTpodW50ZXIy", "p4ss-word", "k3y-value",
        "t0k3n", "s3cr3t-tok",
    ):  # fmt: skip
        assert secret not in text
    assert lines(store)[0]["event"] == "login for jane with password=[redacted]"
    assert lines(store)[1]["event"] == "request with Authorization: Bearer [redacted] failed"


def test_a_refused_request_leaves_its_token_out_of_the_log(anon_api, store):
    """django.request logs a 401 with the request, query string and all."""
    response = anon_api.get("/api/troubleshoot/delivery/jane@remote.test?token=SeCrEt-T0ken-42")
    assert response.status_code == 401
    text = store.read_text()
    assert "Unauthorized: /api/troubleshoot/delivery/jane@remote.test" in text
    assert "SeCrEt-T0ken-42" not in text


def test_it_leaves_ordinary_words_alone(store):
    log.info("Basic authentication failed for %s", "jane")
    assert lines(store)[0]["event"] == "Basic authentication failed for jane"


def test_it_records_the_exception_of_an_error(store):
    try:
        raise ValueError("broken pipe")
    except ValueError:
        log.exception("delivery to %s failed", "remote.test")
    [entry] = lines(store)
    assert (entry["level"], entry["details"]) == ("ERROR", 'error = "ValueError: broken pipe"')


def test_it_rotates_by_size_and_keeps_n_files(tmp_path):
    path = tmp_path / "mailadmin.jsonl"
    handler = JsonLinesHandler(path, max_bytes=2000, backups=2)
    logger = logging.getLogger("tests.rotation")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        for n in range(200):
            logger.warning("record %s", n)
    finally:
        logger.removeHandler(handler)
        handler.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == [".mailadmin.jsonl.lock", "mailadmin.jsonl", "mailadmin.jsonl.1",
                     "mailadmin.jsonl.2"]  # fmt: skip
    assert all(p.stat().st_size <= 2000 for p in tmp_path.iterdir())


def _write_records(path, writer: int, count: int) -> None:
    handler = JsonLinesHandler(path, max_bytes=3000, backups=1000)
    logger = logging.getLogger(f"tests.rotation.{writer}")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        for n in range(count):
            logger.warning("writer %s record %s", writer, n)
    finally:
        logger.removeHandler(handler)
        handler.close()


def test_processes_sharing_the_file_rotate_it_once_and_lose_no_record(tmp_path):
    path = tmp_path / "mailadmin.jsonl"
    context = multiprocessing.get_context("fork")
    writers = [context.Process(target=_write_records, args=(path, w, 300)) for w in range(3)]
    for process in writers:
        process.start()
    for process in writers:
        process.join(60)
        assert process.exitcode == 0
    logs = [p for p in tmp_path.iterdir() if p.name.startswith("mailadmin.jsonl")]
    events = [json.loads(line)["event"] for p in logs for line in p.read_text().splitlines()]
    assert sorted(events) == sorted(f"writer {w} record {n}" for w in range(3) for n in range(300))
    assert len(logs) > 10  # it did rotate, many times
    assert all(p.stat().st_size <= 3000 for p in logs)


def test_it_derives_event_ids():
    assert event_id("apps.queue.delivery", "Delivered %(count)d to {host}") == (
        "queue.delivery.delivered-to"
    )
    assert event_id("django.request", "%s") == "django.request.message"


def test_it_lists_the_newest_first_with_paging(api_root, store):
    for n in range(7):
        log.warning("record %s", n)
    response = api_root.get("/api/logs?page=2&limit=3")
    assert response.status_code == 200
    body = response.json()["data"]
    assert body["total"] >= 7
    assert set(body["items"][0]) == {"timestamp", "level", "event", "event_id", "details"}
    ours = [
        i["event"] for i in api_root.get("/api/logs?text=record&limit=50").json()["data"]["items"]
    ]
    assert ours == [f"record {n}" for n in range(6, -1, -1)]
    page2 = [
        i["event"]
        for i in api_root.get("/api/logs?text=record&page=2&limit=3").json()["data"]["items"]
    ]
    assert page2 == ["record 3", "record 2", "record 1"]


def test_it_filters_by_minimum_level_text_and_since(api_root, store):
    log.debug("chatty detail")
    log.info("routine work")
    log.error("a real problem")
    data = api_root.get("/api/logs?level=warning").json()["data"]
    assert [i["event"] for i in data["items"]] == ["a real problem"]
    assert data["total"] == 1
    data = api_root.get("/api/logs?text=ROUTINE").json()["data"]
    assert [i["event"] for i in data["items"]] == ["routine work"]
    assert api_root.get("/api/logs?since=2999-01-01T00:00:00Z").json()["data"] == {
        "items": [],
        "total": 0,
    }


def test_it_caps_the_total(api_root, store):
    for n in range(12):
        log.info("many %s", n)
    data = api_root.get("/api/logs?text=many&limit=2&max-total=5").json()["data"]
    assert (len(data["items"]), data["total"]) == (2, 5)


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        (
            "level=loud",
            "Invalid value for field level: use DEBUG, INFO, WARNING, ERROR or CRITICAL.",
        ),
        ("since=yesterday", "Invalid value for field since: use an ISO 8601 date and time."),
        ("since=", "Invalid value for field since: use an ISO 8601 date and time."),
    ],
)
def test_it_refuses_bad_filters(api_root, store, query, detail):
    response = api_root.get(f"/api/logs?{query}")
    assert response.status_code == 400
    assert response.json()["detail"] == detail


def test_it_refuses_bad_paging(api_root, store):
    response = api_root.get("/api/logs?limit=0")
    assert response.status_code == 400


def test_it_is_for_superadmins_only(api_a, anon_api, store):
    response = api_a.get("/api/logs")
    assert response.status_code == 403
    assert (
        response.json()["detail"] == "You do not have the permission 'logs-view' needed for this."
    )
    assert anon_api.get("/api/logs").status_code == 401
