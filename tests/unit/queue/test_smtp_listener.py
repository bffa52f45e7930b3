import smtplib

import pytest

from apps.queue.smtp import ListenerThread


@pytest.fixture
def listener(settings):
    settings.MAILADMIN_HOSTNAME = "mx.test"
    settings.MAILADMIN_MAX_MESSAGE_SIZE = 1000
    thread = ListenerThread({"inbound": ("127.0.0.1", 0)}).start()
    try:
        yield thread
    finally:
        thread.stop()


def test_it_greets_with_220(listener):
    with smtplib.SMTP("127.0.0.1", listener.ports["inbound"], timeout=5) as client:
        code, banner = client.noop()
        assert code == 250
        assert client.ehlo("client.test")[0] == 250
        assert client.has_extn("size")
        assert client.esmtp_features["size"] == "1000"
    # smtplib keeps the greeting out of reach; read it raw
    import socket

    with socket.create_connection(("127.0.0.1", listener.ports["inbound"]), timeout=5) as sock:
        assert sock.recv(200) == b"220 mx.test mailadmin inbound\r\n"


def test_it_refuses_data_with_a_temporary_error_until_delivery_exists(listener):
    with smtplib.SMTP("127.0.0.1", listener.ports["inbound"], timeout=5) as client:
        client.ehlo("client.test")
        client.mail("a@example.test")
        client.rcpt("b@example.test")
        code, reply = client.data(b"Subject: hi\r\n\r\nhello\r\n")
    assert code == 451
    assert reply == b"4.3.2 Mail delivery is not enabled on this server yet, try later"


def test_it_refuses_a_message_over_the_size_limit(listener):
    with smtplib.SMTP("127.0.0.1", listener.ports["inbound"], timeout=5) as client:
        client.ehlo("client.test")
        code, _ = client.mail("a@example.test", ["SIZE=5000"])
    assert code == 552
