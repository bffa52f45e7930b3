"""Live SMTP listeners on loopback (fixtures the SMTP tests import) and the client side."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from apps.queue.smtp import ListenerThread
from apps.queue.smtp.tls import self_signed_pem

HOSTNAME = "mx.test"


@pytest.fixture(scope="session")
def tls_cert_file(tmp_path_factory) -> Path:
    """A certificate (with its key) the tests configure, so clients can verify it."""
    path = tmp_path_factory.mktemp("tls") / "mx.test.pem"
    path.write_text(self_signed_pem(HOSTNAME))
    return path


@pytest.fixture
def client_tls(tls_cert_file) -> ssl.SSLContext:
    """Trusts only the test certificate (the host name is 127.0.0.1, not mx.test)."""
    context = ssl.create_default_context(cafile=str(tls_cert_file))
    context.check_hostname = False
    return context


@pytest.fixture
def start_listeners(settings, tls_cert_file) -> Iterator[Callable[..., ListenerThread]]:
    """start_listeners("inbound", "submission", auth_require_tls=None) -> ListenerThread"""
    settings.MAILADMIN_HOSTNAME = HOSTNAME
    settings.MAILADMIN_TLS_CERT_FILE = str(tls_cert_file)
    settings.MAILADMIN_TLS_KEY_FILE = ""
    settings.MAILADMIN_SMTP_DB_THREADS = 2
    started: list[ListenerThread] = []

    def start(*names: str, auth_require_tls: bool | None = None) -> ListenerThread:
        binds = {name: ("127.0.0.1", 0) for name in names or ("inbound",)}
        thread = ListenerThread(binds, auth_require_tls=auth_require_tls).start()
        started.append(thread)
        return thread

    yield start
    for thread in started:
        thread.stop()


def connect(listener: ListenerThread, name: str = "inbound") -> smtplib.SMTP:
    client = smtplib.SMTP("127.0.0.1", listener.ports[name], timeout=10)
    client.ehlo("client.test")
    return client
