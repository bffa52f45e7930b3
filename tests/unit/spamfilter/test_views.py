"""The classify tester page."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

FORM = "application/x-www-form-urlencoded"
MESSAGE = "From: a@example.org\r\nTo: b@example.org\r\nSubject: HELLO THERE FRIEND\r\n\r\nhi\r\n"


def test_it_shows_the_form(client, user_a):
    client.force_login(user_a)
    response = client.get("/spam-filter/")
    assert response.status_code == 200
    assert 'id="classify-form"' in response.content.decode()


def test_it_shows_the_score_and_each_tag(client, user_a, dns_server):
    client.force_login(user_a)
    response = client.post(
        "/spam-filter/",
        {"message": MESSAGE, "remote_ip": "192.0.2.1", "env_rcpt_to": "b@example.org, c@x.test"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert page.lstrip().startswith('<div id="classify-form">')  # the partial only
    assert "<code>SUBJ_ALL_CAPS</code>" in page
    assert "Subject written in capitals" in page
    assert "X-Spam-Status: " in page
    assert "Authentication-Results: mail.localhost;" in page


@pytest.mark.parametrize("smtputf8, tagged", [("on", False), ("", True)])
def test_a_pasted_utf8_subject_is_judged_as_its_transaction_allowed(
    client, user_a, dns_server, smtputf8, tagged
):
    """A pasted message reaches the scan as UTF-8: the SMTPUTF8 box says whether its
    transaction allowed raw UTF-8 in the header (RFC 6532), as MAIL FROM would have."""
    client.force_login(user_a)
    message = MESSAGE.replace("HELLO THERE FRIEND", "Gr\u00fc\u00dfe aus K\u00f6ln")
    response = client.post("/spam-filter/", {"message": message, "smtputf8": smtputf8})
    assert response.status_code == 200
    page = response.content.decode()
    assert "Sent with SMTPUTF8" in page
    assert ("<code>SUBJ_NEEDS_ENCODING</code>" in page) is tagged


def test_it_answers_422_with_the_message(client, user_a):
    client.force_login(user_a)
    response = client.post("/spam-filter/", {"message": "  ", "remote_ip": "123"})
    assert response.status_code == 422
    page = response.content.decode()
    assert "Paste the message to classify." in page
    assert "Enter a valid IPv4 or IPv6 address." in page


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_it_answers_405_to_other_methods(client, user_a, method):
    client.force_login(user_a)
    response = getattr(client, method)("/spam-filter/", "message=x", content_type=FORM)
    assert response.status_code == 405


def test_it_needs_spam_filter_classify(client, make_principal):
    nobody = make_principal(roles=(), enabled_permissions=["dashboard"])
    client.force_login(nobody)
    response = client.get("/spam-filter/")
    assert response.status_code == 403
    assert "spam-filter-classify" in response.content.decode()


def _big(size: int) -> str:
    """A message of about `size` characters, lines of 78 like real mail."""
    line = "Replica watches: 10% off, <https://shop.example/?a=1&b=2> today!" + " " * 13 + "\r\n"
    return MESSAGE + line * (size // len(line))


def _post(client, data: dict, **headers):
    """As browsers and htmx send a form: url-encoded (the test client's default is multipart)."""
    return client.post("/spam-filter/", urlencode(data), content_type=FORM, **headers)


def test_a_message_past_djangos_body_limit_is_classified(client, user_a, dns_server):
    """The form takes a message up to 10 MB: one over Django's 2.5 MB body limit (far more
    once url-encoded) is classified, not answered 400 Bad Request with no word why."""
    client.force_login(user_a)
    response = _post(client, {"message": _big(3_000_000)}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert 'id="classify-result"' in response.content.decode()


def test_a_message_over_10_mb_answers_422_beside_the_field(client, user_a):
    client.force_login(user_a)
    response = _post(client, {"message": _big(10_100_000)}, HTTP_HX_REQUEST="true")
    assert response.status_code == 422
    page = response.content.decode()
    assert 'id="id_message_error"' in page
    assert "Ensure this value has at most 10000000 characters" in page


def test_a_big_body_is_not_read_for_whom_may_not_classify(make_principal):
    """The larger limit is for those the page is for: anyone else meets Django's own check
    (the CSRF check reads the form first, so it answers 400 before any view runs)."""
    client = Client(enforce_csrf_checks=True)
    client.cookies["csrftoken"] = "x" * 32  # so the check goes on to read the form
    message = _big(3_000_000)
    assert _post(client, {"message": message}).status_code == 400
    nobody = make_principal(roles=(), enabled_permissions=["dashboard"])
    client.force_login(nobody)
    assert _post(client, {"message": message}).status_code == 400


@pytest.mark.parametrize("written", ["[192.0.2.1]", "[IPv6:2001:db8::1]"])
def test_it_takes_an_address_literal_as_the_service_does(client, user_a, dns_server, written):
    """The classify service took `[192.0.2.1]`; its form refused it."""
    client.force_login(user_a)
    response = client.post("/spam-filter/", {"message": MESSAGE, "remote_ip": written})
    assert response.status_code == 200
    assert 'id="classify-result"' in response.content.decode()
