"""The provisioning spec replayed: every request example of the mailbox sections of
specs/mailbox-provisioning-api.txt is sent as written (its path under /api, the customer
being our tenant; its fields as form fields, JSON and XML) and answered in JSON and XML,
and every error message those sections list is provoked, each in JSON and in XML, and must
come back with the spec's status and exact words.

Examples and messages are read from the spec file itself, so a message added there fails
here until it is answered.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from defusedxml import ElementTree

from apps.accounts.models import Principal, PrincipalEmail
from apps.domains.models import MailboxProfile
from apps.spamfilter.models import MailboxSpamSetting, SenderListEntry
from tests.conftest import ROOT, skip_or_fail

pytestmark = pytest.mark.django_db

SPECS_DIR = Path(os.environ.get("MAILADMIN_SPECS_DIR") or ROOT.parent / "shared" / "specs")
# The sections this API serves: the mailbox ones, the spam lists and spam settings (the
# mobile services, from "BlackBerry Mobile Service" on, are not served yet: see the README).
SERVED = (
    *("Index", "Show", "Add/Edit", "Delete", "Add Email Address", "Delete Email Address"),
    *("Index Blacklist", "Index IP Blacklist", "Index Safelist", "Index IP Safelist"),
    *("Add Blacklist", "Add IP Blacklist", "Add Safelist", "Add IP Safelist"),
    *("Delete Blacklist", "Delete IP Blacklist", "Delete Safelist", "Delete IP Safelist"),
    *("Show Spam Setting", "Edit Spam Setting"),
)
NOT_SERVED = "\nBlackBerry Mobile Service\n"
EXAMPLE = re.compile(r"^(get|post|put|delete) '(/customers/[^']+)', '([^']+)'(?:, \{(.*)\})?$")
FIELD = re.compile(r"'(\w+)' => '([^']*)'")
ERROR_ROW = re.compile(r"^(.+?) \| (\d{3}) \| (.+?) \|$")
FORMATS = {"json": "application/json", "xml": "text/xml"}


def _spec_text() -> str:
    spec = SPECS_DIR / "mailbox-provisioning-api.txt"
    if not spec.is_file():
        skip_or_fail(f"{spec} missing (set MAILADMIN_SPECS_DIR)")
    return spec.read_text()


def _mailbox_sections() -> list[str]:
    """The text of each served section (before the mobile services part of the spec)."""
    text = _spec_text().split(NOT_SERVED, 1)[0]
    return re.split(r"\n(?=URL:\n)", text)


def spec_examples() -> list[tuple[str, str, dict[str, str]]]:
    found = []
    for section in _mailbox_sections():
        for line in section.splitlines():
            match = EXAMPLE.match(line.strip())
            if match:
                fields = dict(FIELD.findall(match[4] or ""))
                found.append((match[1].upper(), match[2], fields))
    return found


def spec_errors() -> set[tuple[int, str]]:
    errors = set()
    for section in _mailbox_sections():
        for line in section.splitlines():
            match = ERROR_ROW.match(line.strip())
            if match and match[2].isdigit():
                errors.add((int(match[2]), match[3]))
    return errors


def _our_path(spec_path: str, customer: int) -> str:
    path = re.sub(r"^/customers/\d+/", f"/api/customers/{customer}/", spec_path)
    return path.replace("/ex/mailboxes", "/mailboxes")


def _send(client, method: str, url: str, fields: dict, *, body: str, accept: str):
    """A request with `fields` as form fields (as the spec writes them), a JSON object or
    an XML document."""
    send = getattr(client, method.lower())
    if not fields:
        return send(url, HTTP_ACCEPT=accept)
    if body == "json":
        return send(url, fields, format="json", HTTP_ACCEPT=accept)
    if body == "xml":
        document = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in fields.items())
        return send(url, f"<mailbox>{document}</mailbox>", content_type="text/xml",
                    HTTP_ACCEPT=accept)  # fmt: skip
    return send(url, fields, HTTP_ACCEPT=accept)


def _detail(response) -> str:
    if response["Content-Type"].startswith(("text/xml", "application/xml")):
        return ElementTree.fromstring(response.content).findtext("detail")
    return response.json()["detail"]


@pytest.fixture
def example_com(make_principal, tenant_a):
    return make_principal(tenant=tenant_a, roles=(), name="example.com", type="domain", password="")


# --- the request examples -----------------------------------------------------------------


def _rank(method: str, path: str) -> float:
    if "/spam/" in path:  # the mailbox's lists: after it is made, before it is deleted
        return {"POST": 3.1, "GET": 3.2}.get(method, 3.3)
    if "/emailaddresses/" in path:
        return 4 if method == "POST" else 5
    if method == "POST":
        return 0
    if method == "GET":
        return 1 if path.endswith("/mailboxes") else 2
    if method == "PUT":
        return 3
    return 6


def test_it_finds_the_examples_and_messages_in_the_spec():
    examples = spec_examples()
    assert len(examples) == 21
    assert (400, "Adding example.com would blacklist the current domain") in spec_errors()
    assert (400, "Missing required field: displayName") in spec_errors()


@pytest.mark.parametrize("body", ["form", "json", "xml"])
@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_it_answers_every_request_example_of_the_spec(fmt, body, api_a, tenant_a, example_com):
    examples = sorted(spec_examples(), key=lambda e: _rank(e[0], e[1]))
    for method, spec_path, fields in examples:
        path = _our_path(spec_path, tenant_a.pk)
        if path.endswith("/spam/blacklist/anyone@yahoo.com") and method == "DELETE":
            # The spec deletes an address its Add example did not add: it is added first.
            assert api_a.post(path).status_code == 200
        response = _send(api_a, method, path, fields, body=body, accept=FORMATS[fmt])
        assert response.status_code == 200, (method, path, response.content)
        assert response["Content-Type"].startswith(FORMATS[fmt])
        if fmt == "xml":
            ElementTree.fromstring(response.content)  # well-formed
        if method == "POST" and path.endswith("alex.smith"):
            principal = Principal.objects.get(name="alex.smith@example.com")
            assert principal.quota == 2048 * 1024**2
            assert principal.check_password("Secret123!@#")
            assert MailboxProfile.objects.get(principal=principal).display_name == "Alex Smith"
        if method == "PUT":
            assert MailboxProfile.objects.get(name="alex.smith").home_number == "8005551234"
        if "/emailaddresses/" in path and method == "POST":
            assert PrincipalEmail.objects.filter(address="alex@example.com").exists()
        if "/spam/settings" in path:
            if method == "PUT":
                assert MailboxSpamSetting.objects.get().filter_level == fields["filterlevel"]
        elif "/spam/" in path:
            _check_list_answer(response, fmt, method, path)
    assert not SenderListEntry.objects.exists()  # deleted, and gone with the mailbox
    assert not MailboxProfile.objects.exists()
    assert not Principal.objects.filter(name="alex.smith@example.com").exists()
    assert not PrincipalEmail.objects.filter(address__endswith="@example.com").exists()


def _check_list_answer(response, fmt: str, method: str, path: str) -> None:
    """A list answer names the list and its entries; the spec's IP given to an address
    list is put on the IP list."""
    if fmt == "json":
        data = response.json()["data"]
        name, entries = data["name"], data["entries"]
    else:
        root = ElementTree.fromstring(response.content)
        name = root.findtext("data/name")
        entries = [e.text for e in root.findall("data/entries/item")]
    entry = path.rsplit("/spam/", 1)[1].partition("/")[2]
    if entry == "216.12.34.1":
        assert name.startswith("ip")
    if method == "POST":
        assert entry in entries
        assert SenderListEntry.objects.filter(list=name, value=entry).exists()
    if method == "DELETE":
        assert entry not in entries


# --- the error messages -------------------------------------------------------------------

ADD = "/api/customers/{c}/domains/example.com/mailboxes/john.doe"
GOOD = {"displayName": "John Doe", "password": "Secret123!@#", "size": "2048"}


def _add(**changes) -> tuple[str, str, dict]:
    fields = {k: v for k, v in {**GOOD, **changes}.items() if v is not None}
    return "post", ADD, fields


def _existing_john(make_principal, tenant_a, api) -> None:
    make_principal(tenant=tenant_a, roles=(), name="abc.com", type="domain", password="")
    path = "/api/customers/{c}/domains/abc.com/mailboxes/john.doe"
    response = api.post(path.format(c=tenant_a.pk), GOOD)
    assert response.status_code == 200, response.content


ALEX = "/api/customers/{c}/domains/example.com/mailboxes/alex.smith"


def _alex(make_principal, tenant_a, api) -> None:
    fields = {"displayName": "Alex Smith", "password": "Secret123!@#", "size": "2048"}
    response = api.post(ALEX.format(c=tenant_a.pk), fields)
    assert response.status_code == 200, response.content


# message -> (request to send, setup); {c} is the customer (tenant id).
PROVOKE: dict[str, tuple[tuple[str, str, dict], Callable | None]] = {
    "Invalid format": (("get", "/api/customers/{c}/domains/example.com/mailboxes", {}), None),
    "abc.com not found": (("get", "/api/customers/{c}/domains/abc.com/mailboxes", {}), None),
    "Mailbox not found": (("get", ADD.replace("john.doe", "nobody"), {}), None),
    "Missing required field: displayName": (_add(displayName=None), None),
    "Required field displayName cannot be empty": (_add(displayName=""), None),
    "Invalid user name": (("post", ADD.replace("john.doe", "john doe!"), GOOD), None),
    "Invalid display name": (_add(displayName="John <Doe>"), None),
    "Invalid format for size, input must be an integer": (_add(size="big"), None),
    "Invalid format for Enabled, input must be True or False": (_add(enabled="maybe"), None),
    "Password must be at least 8 characters long": (_add(password="short"), None),
    "Unrecognized field: extraStorage": (_add(extraStorage="10"), None),
    "The email address john.doe@abc.com is already in use": (
        (
            "post",
            "/api/customers/{c}/domains/abc.com/mailboxes/john.doe",
            GOOD,
        ),
        _existing_john,
    ),
    "No user with the email address alex.smith@example.com exists": (
        ("get", ALEX + "/spam/blacklist", {}),
        None,
    ),
    "invalid email address: abc": (("post", ALEX + "/spam/safelist/abc", {}), _alex),
    "Adding example.com would blacklist the current domain": (
        ("post", ALEX + "/spam/blacklist/example.com", {}),
        _alex,
    ),
    "invalid ip address: 123": (("post", ALEX + "/spam/ipblacklist/123", {}), _alex),
    "abc@junkmail.com is not found on the blacklist": (
        ("delete", ALEX + "/spam/blacklist/abc@junkmail.com", {}),
        _alex,
    ),
    "216.12.34.1 is not found on the blacklist": (
        ("delete", ALEX + "/spam/ipblacklist/216.12.34.1", {}),
        _alex,
    ),
    "anyone@yahoo.com is not found on the safelist": (
        ("delete", ALEX + "/spam/safelist/anyone@yahoo.com", {}),
        _alex,
    ),
    "216.12.34.1 is not found on the safelist": (
        ("delete", ALEX + "/spam/ipsafelist/216.12.34.1", {}),
        _alex,
    ),
    "Missing required field: filterlevel": (
        ("put", ALEX + "/spam/settings", {"sendtodomainquarantine": "true"}),
        _alex,
    ),
    "Required field filterlevel cannot be empty": (
        ("put", ALEX + "/spam/settings", {"filterlevel": ""}),
        _alex,
    ),
    "Unrecognized field: address": (
        ("put", ALEX + "/spam/settings", {"filterlevel": "on", "address": "x"}),
        _alex,
    ),
    "Invalid format for sendtodomainquarantine, input must be true or false": (
        ("put", ALEX + "/spam/settings", {"filterlevel": "on", "sendtodomainquarantine": "yes"}),
        _alex,
    ),
    "Invalid filterLevel, input must be: on/off/exclusive": (
        ("put", ALEX + "/spam/settings", {"filterlevel": "high"}),
        _alex,
    ),
}


def test_every_listed_message_has_a_request_that_provokes_it():
    assert {message for _, message in spec_errors()} == set(PROVOKE)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@pytest.mark.parametrize(("status", "message"), sorted(spec_errors()))
def test_it_answers_each_listed_error_with_the_spec_words(
    fmt, status, message, api_a, tenant_a, example_com, make_principal
):
    (method, path, fields), setup = PROVOKE[message]
    if setup is not None:
        setup(make_principal, tenant_a, api_a)
    accept = "application/yaml" if message == "Invalid format" else FORMATS[fmt]
    url = path.format(c=tenant_a.pk)
    # The body in the format of the answer (form fields are replayed above).
    response = _send(api_a, method, url, fields, body=fmt, accept=accept)
    assert response.status_code == status, response.content
    assert _detail(response) == message
    if message != "Invalid format":
        assert response["Content-Type"].startswith(FORMATS[fmt])


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_it_refuses_an_unknown_format_parameter_as_invalid_format(fmt, api_a, tenant_a):
    url = f"/api/customers/{tenant_a.pk}/domains/example.com/mailboxes?format=yaml"
    response = api_a.get(url, HTTP_ACCEPT=FORMATS[fmt])
    assert response.status_code == 404
    assert response.json()["detail"] == "Invalid format"


def test_the_examples_of_the_sections_not_served_yet_are_unknown_paths(
    api_a, tenant_a, example_com
):
    """The mobile services: listed here until they are served (then their examples join
    the replay above)."""
    text = _spec_text()
    unserved = []
    for line in text.split(NOT_SERVED, 1)[1].splitlines():
        match = EXAMPLE.match(line.strip())
        if match:
            unserved.append((match[1], _our_path(match[2], tenant_a.pk)))
    assert len(unserved) == 6
    for method, path in unserved:
        response = getattr(api_a, method)(path)
        assert response.status_code in (404, 405), (method, path)
        assert response.json()["status"] == response.status_code
