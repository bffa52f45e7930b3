"""A rule override reaches another process that scans mail, without restarting it, within
MAILADMIN_SETTINGS_REFRESH_SECONDS (the probe is a real Python process on the test
database, like an SMTP listener or a worker)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from tests.support.worker import ROOT, database_url

pytestmark = pytest.mark.django_db(transaction=True)

MESSAGE = (
    "From: Jane <jane@example.org>\r\nTo: John <john@example.org>\r\n"
    "Subject: LUNCH ON FRIDAY AT NOON\r\nDate: Mon, 30 Nov 2026 10:00:00 +0000\r\n"
    "Message-ID: <1@example.org>\r\nMIME-Version: 1.0\r\n\r\nShall we?\r\n"
)


@pytest.fixture
def probe():
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "MAILADMIN_SETTINGS_REFRESH_SECONDS": "0.2",
        "REDIS_URL": "",
        # Nothing leaves the machine: no resolver answers there (an authenticated
        # submission is not checked against DNS anyway).
        "MAILADMIN_DNS_NAMESERVERS": "127.0.0.1:9",
        "MAILADMIN_SPAM_DNS_DEADLINE": "0.5",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.rules_probe"],
        cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert json.loads(process.stdout.readline()) == {"ready": True}

    def scan() -> dict:
        process.stdin.write(json.dumps(MESSAGE) + "\n")
        process.stdin.flush()
        return json.loads(process.stdout.readline())

    yield scan
    process.stdin.close()
    process.wait(timeout=10)


def _until(scan, condition, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        answer = scan()
        if condition(answer) or time.monotonic() > deadline:
            return answer
        time.sleep(0.05)


def test_another_process_scans_with_the_override_without_a_restart(api_root, probe):
    before = probe()
    assert "SUBJ_ALL_CAPS" in before["tags"]
    started = time.monotonic()
    response = api_root.post(
        "/api/settings",
        [{"type": "insert", "values": [["spam-filter.rule.SUBJ_ALL_CAPS.score", "12.5"]]}],
        format="json",
    )
    assert response.status_code == 200
    after = _until(probe, lambda a: a["tags"].get("SUBJ_ALL_CAPS") == 12.5)
    assert after["tags"]["SUBJ_ALL_CAPS"] == 12.5
    assert time.monotonic() - started < 5  # the refresh interval, not a restart
    response = api_root.post(
        "/api/settings",
        [{"type": "insert", "values": [["spam-filter.rule.SUBJ_ALL_CAPS.enabled", "false"]]}],
        format="json",
    )
    disabled = _until(probe, lambda a: "SUBJ_ALL_CAPS" not in a["tags"])
    assert "SUBJ_ALL_CAPS" not in disabled["tags"]
    assert disabled["score"] == pytest.approx(before["score"] - before["tags"]["SUBJ_ALL_CAPS"])


def test_another_process_scans_with_an_override_saved_in_the_rules_editor(
    client, superadmin, probe
):
    """The editor's row writes through the same store: another process takes it up too."""
    before = probe()
    assert "SUBJ_ALL_CAPS" in before["tags"]
    client.force_login(superadmin)
    response = client.post(
        "/spam-filter/rules/SUBJ_ALL_CAPS/", {"score": "7.25", "enabled": "on"},
        HTTP_HX_REQUEST="true",
    )  # fmt: skip
    assert response.status_code == 200
    after = _until(probe, lambda a: a["tags"].get("SUBJ_ALL_CAPS") == 7.25)
    assert after["tags"]["SUBJ_ALL_CAPS"] == 7.25
    client.post("/spam-filter/rules/SUBJ_ALL_CAPS/reset/", HTTP_HX_REQUEST="true")
    back = _until(
        probe, lambda a: a["tags"].get("SUBJ_ALL_CAPS") == before["tags"]["SUBJ_ALL_CAPS"]
    )
    assert back["tags"]["SUBJ_ALL_CAPS"] == before["tags"]["SUBJ_ALL_CAPS"]
