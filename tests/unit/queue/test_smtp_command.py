"""`manage.py smtp_listen` (what `manage.py serve` starts) runs both listeners."""

import os
import smtplib
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_it_runs_the_mx_and_submission_listeners_in_two_processes(tmp_path):
    inbound, submission = free_port(), free_port()
    env = {
        **os.environ,
        "MAILADMIN_VAR_DIR": str(tmp_path),
        "MAILADMIN_SMTP_BIND": f"127.0.0.1:{inbound}",
        "MAILADMIN_SUBMISSION_BIND": f"127.0.0.1:{submission}",
        "MAILADMIN_HOSTNAME": "mx.command.test",
    }
    process = subprocess.Popen(
        [sys.executable, "manage.py", "smtp_listen", "--processes", "2"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                client = smtplib.SMTP("127.0.0.1", submission, timeout=5)
                break
            except OSError:
                assert process.poll() is None, process.stderr.read().decode()
                assert time.monotonic() < deadline, "the listeners did not start"
                time.sleep(0.2)
        with client:
            client.ehlo("client.test")
            assert client.has_extn("starttls")
            assert client.esmtp_features["auth"] == " LOGIN PLAIN"  # loopback: no TLS needed
        for _ in range(10):  # whichever process the kernel picks
            with smtplib.SMTP("127.0.0.1", inbound, timeout=5) as client:
                assert client.ehlo("client.test")[1].startswith(b"mx.command.test")
                assert not client.has_extn("auth")
        assert (tmp_path / "smtp-tls-selfsigned.pem").is_file()  # generated for development
    finally:
        process.terminate()
        assert process.wait(timeout=20) == 0  # after stopping the other process
