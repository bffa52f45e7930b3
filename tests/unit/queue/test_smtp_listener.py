"""The listeners' plumbing: greeting, ESMTP extensions, STARTTLS with the configured or a
generated certificate, size and line limits. Real sockets on loopback."""

import smtplib
import socket
import ssl
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from apps.queue.smtp import tls
from tests.support.smtp_listeners import connect


def test_it_greets_with_220_naming_the_host_and_the_listener(start_listeners):
    listener = start_listeners("inbound", "submission")
    for name in ("inbound", "submission"):
        with socket.create_connection(("127.0.0.1", listener.ports[name]), timeout=5) as sock:
            assert sock.recv(200) == f"220 mx.test mailadmin {name}\r\n".encode()


def test_it_offers_size_8bitmime_smtputf8_and_starttls_but_no_auth_on_the_mx(
    start_listeners, settings
):
    settings.MAILADMIN_MAX_MESSAGE_SIZE = 1000
    listener = start_listeners("inbound")
    with connect(listener) as client:
        assert client.esmtp_features["size"] == "1000"
        assert client.has_extn("8bitmime")
        assert client.has_extn("smtputf8")
        assert client.has_extn("starttls")
        assert not client.has_extn("auth")
        code, reply = client.docmd("AUTH", "PLAIN AGEAYg==")
        assert (code, reply) == (504, b"5.5.4 Unrecognized authentication type")


def test_it_starts_tls_with_the_configured_certificate(start_listeners, client_tls):
    listener = start_listeners("inbound")
    with connect(listener) as client:
        code, reply = client.starttls(context=client_tls)  # verifies against the test CA
        assert (code, reply) == (220, b"Ready to start TLS")
        assert client.sock.version() in {"TLSv1.2", "TLSv1.3"}
        subject = dict(x[0] for x in client.sock.getpeercert()["subject"])
        assert subject["commonName"] == "mx.test"
        client.ehlo("client.test")
        assert not client.has_extn("starttls")
        assert not client.has_extn("auth")  # the MX takes no logins, even over TLS


def test_it_generates_a_self_signed_certificate_once_when_none_is_configured(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    settings.MAILADMIN_TLS_CERT_FILE = ""
    settings.MAILADMIN_HOSTNAME = "mail.example.test"
    cert_file, key_file = tls.certificate_files()
    first = Path(cert_file).read_text()
    assert key_file is None
    assert tls.certificate_files() == (cert_file, None)
    assert Path(cert_file).read_text() == first  # generated once, then reused
    assert oct((tmp_path / tls.SELF_SIGNED_NAME).stat().st_mode & 0o777) == "0o600"
    certificate = x509.load_pem_x509_certificate(first.encode())
    name = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert name == "mail.example.test"
    assert isinstance(tls.server_context(), ssl.SSLContext)


def test_it_refuses_a_key_file_without_a_certificate_file(settings):
    from django.core.exceptions import ImproperlyConfigured

    settings.MAILADMIN_TLS_CERT_FILE = ""
    settings.MAILADMIN_TLS_KEY_FILE = "/etc/ssl/private/mx.key"
    with pytest.raises(ImproperlyConfigured):
        tls.certificate_files()


def test_it_refuses_a_declared_size_over_the_limit(start_listeners, settings):
    settings.MAILADMIN_MAX_MESSAGE_SIZE = 1000
    listener = start_listeners("inbound")
    with connect(listener) as client:
        code, reply = client.mail("a@example.test", ["SIZE=1001"])
        assert (code, reply) == (552, b"5.3.4 Message size exceeds fixed maximum message size")
        assert client.mail("a@example.test", ["SIZE=1000"]) == (250, b"2.1.0 Sender OK")


@pytest.mark.parametrize("size", ["abc", "-1", "\u00b2"])
def test_it_answers_a_size_that_is_not_a_number_with_a_syntax_error(start_listeners, size):
    """aiosmtpd read SIZE=\u00b2 with str.isdigit() and int(): a ValueError, so 451."""
    listener = start_listeners("inbound")
    with connect(listener) as client:
        client.command_encoding = "utf-8"
        assert client.docmd("MAIL", f"FROM:<a@example.test> SIZE={size}") == (
            501,
            b"5.5.4 Syntax: MAIL FROM: <address> [SP <mail-parameters>]",
        )
        assert client.mail("a@example.test", ["SIZE=1000"]) == (250, b"2.1.0 Sender OK")


def test_it_gives_aiosmtpds_own_failure_replies_an_enhanced_status_code(start_listeners):
    """Ours carry RFC 3463 codes; the ones aiosmtpd writes itself did not."""
    listener = start_listeners("inbound")
    with connect(listener) as client:
        assert client.docmd("BOGUS") == (500, b'5.5.2 Error: command "BOGUS" not recognized')
        assert client.docmd("MAIL", "FROM:<a@example.test> FOO=1") == (
            555,
            b"5.5.4 MAIL FROM parameters not recognized or not implemented",
        )
        assert client.docmd("RSET", "now") == (501, b"5.5.4 Syntax: RSET")
        assert client.docmd("EXPN", "all") == (502, b"5.5.1 EXPN not implemented")
        assert client.noop() == (250, b"OK")


def test_it_refuses_an_overlong_command_line_and_keeps_the_session(start_listeners):
    listener = start_listeners("inbound")
    with connect(listener) as client:
        code, reply = client.docmd("NOOP", "x" * 2000)
        assert (code, reply) == (500, b"5.5.2 Command line too long")
        assert client.noop() == (250, b"OK")


def test_it_says_goodbye_after_too_many_unknown_commands(start_listeners):
    listener = start_listeners("inbound")
    with connect(listener) as client:
        for _ in range(4):
            assert client.docmd("BOGUS")[0] == 500
        with pytest.raises(smtplib.SMTPServerDisconnected):
            client.docmd("BOGUS")
            client.noop()


def connect_once_freed(listener, seconds: float = 5.0) -> smtplib.SMTP:
    """The listener counts a connection off when its loop sees the close, which can come
    just after the client has read 221 and connected again: that client hears 421 and
    tries again, until the place is free or the time is up."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return connect(listener)
        except smtplib.SMTPConnectError as refused:
            if refused.smtp_code != 421 or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def test_it_bounds_the_connections_from_one_address_and_in_all(
    start_listeners, settings, client_tls
):
    settings.MAILADMIN_SMTP_MAX_CONNECTIONS_PER_IP = 2
    listener = start_listeners("inbound")
    port = listener.ports["inbound"]
    first, second = connect(listener), connect(listener)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as third:
        assert third.recv(200) == (
            b"421 4.7.0 Too many connections from your address, try again later\r\n"
        )
        assert third.recv(200) == b""  # closed
    first.starttls(context=client_tls)  # still one connection
    first.quit()
    with connect_once_freed(listener) as again:  # a place came free
        assert again.noop() == (250, b"OK")
    second.quit()
    settings.MAILADMIN_SMTP_MAX_CONNECTIONS_PER_IP = 50
    settings.MAILADMIN_SMTP_MAX_CONNECTIONS = 1
    with (
        connect_once_freed(listener) as only,
        socket.create_connection(("127.0.0.1", port), timeout=5) as x,
    ):
        assert x.recv(200) == b"421 4.7.0 Too many connections, try again later\r\n"
        assert only.noop() == (250, b"OK")


@pytest.mark.django_db(transaction=True)
def test_it_offers_pipelining_and_answers_pipelined_commands_in_order(start_listeners):
    """RFC 2920: commands sent in one write are answered one by one, in order."""
    listener = start_listeners("inbound", "submission")
    with connect(listener) as client:
        assert client.has_extn("pipelining")
        client.send("MAIL FROM:<a@origin.test>\r\nRCPT TO:<b@nowhere.test>\r\nRSET\r\nNOOP\r\n")
        replies = [client.getreply() for _ in range(4)]
    assert replies == [
        (250, b"2.1.0 Sender OK"),
        (550, b"5.7.1 Relaying denied"),
        (250, b"OK"),
        (250, b"OK"),
    ]
