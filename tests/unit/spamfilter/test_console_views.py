"""The spam filter console pages beside the classify tester: Bayes status with train and
purge, the DMARC troubleshooter, and a mailbox's Spam tab (lists and settings). Owner
(tenant A's admin), member (a plain account) and outsider (tenant B's admin) as usual."""

from __future__ import annotations

import os
import re
from urllib.parse import urlencode

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from apps.domains import dkim, mailbox_services, records
from apps.spamfilter import bayes, services
from apps.spamfilter.models import BayesModel, MailboxSpamSetting, SenderListEntry
from mailadmin.errors import ValidationFailed
from tests.conftest import skip_or_fail

pytestmark = pytest.mark.django_db

MESSAGE = (
    "From: Sender <sender@remote.test>\r\nTo: jane@a.example\r\nSubject: Cheap watches\r\n"
    "Date: Mon, 30 Nov 2026 10:00:00 +0000\r\nMessage-ID: <w1@remote.test>\r\n\r\n"
    "Replica watches at a fraction of the price.\r\n"
)


@pytest.fixture(autouse=True)
def _database_store(settings):
    """The database store (its counts are rows to look at); learned_many is run on Redis too."""
    settings.REDIS_URL = ""


@pytest.fixture
def console(client):
    def login(principal):
        client.force_login(principal)
        return client

    return login


@pytest.fixture
def domain_a(make_principal, tenant_a):
    return make_principal(tenant=tenant_a, roles=(), name="a.example", type="domain", password="")


@pytest.fixture
def jane(admin_a, domain_a):
    values = {"display_name": "Jane Doe", "password": "Secret123!@#", "size": 1024}
    return mailbox_services.mailbox_create(
        actor=admin_a, domain=domain_a, name="jane", values=values
    )


def _learned(scope: str) -> tuple[int, int]:
    row = BayesModel.objects.filter(scope=scope).values_list("spam_learned", "ham_learned")
    return row.first() or (0, 0)


# --- Bayes status ----------------------------------------------------------------------------


def test_the_bayes_page_shows_the_global_and_each_accounts_counts(console, superadmin, user_a):
    services.bayes_train(actor=superadmin, message=MESSAGE.encode(), spam=True)
    services.bayes_train(actor=superadmin, message=MESSAGE.encode(), spam=False)
    services.bayes_train(
        actor=superadmin, message=MESSAGE.encode(), spam=True, account_id=user_a.name
    )
    response = console(superadmin).get("/spam-filter/bayes/", {"q": "user-a"})
    assert response.status_code == 200
    page = response.content.decode()
    assert '<td id="global-spam">1</td><td id="global-ham">1</td>' in page
    assert f'<tr id="bayes-account-{user_a.pk}">' in page
    assert "<td>1</td><td>0</td>" in page
    assert 'id="purge-global"' in page


def test_a_tenant_admin_sees_its_tenants_accounts_and_no_global_model(
    console, admin_a, user_a, admin_b
):
    response = console(admin_a).get("/spam-filter/bayes/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "only a superadmin reads, trains or deletes it" in page
    assert 'id="global-spam"' not in page and 'id="purge-global"' not in page
    assert f'id="bayes-account-{user_a.pk}"' in page
    assert f'id="bayes-account-{admin_b.pk}"' not in page
    searched = console(admin_a).get("/spam-filter/bayes/", {"q": "admin-b"}, HTTP_HX_REQUEST="true")
    assert searched.content.decode().lstrip().startswith('<div id="bayes-accounts">')
    assert "No account matches" in searched.content.decode()


def test_a_plain_account_sees_only_itself(console, user_a, admin_a):
    page = console(user_a).get("/spam-filter/bayes/").content.decode()
    assert f'id="bayes-account-{user_a.pk}"' in page
    assert f'id="bayes-account-{admin_a.pk}"' not in page


def test_listing_principals_alone_shows_no_other_accounts_counts(
    console, make_principal, tenant_a, admin_a, user_a
):
    """Another account's model is read with principal-get (services._account): a role that
    may list principals but not read them saw every account's learned counts here, which
    the service (and the API) refuse it."""
    services.bayes_train(actor=admin_a, message=MESSAGE.encode(), spam=True, account_id="user-a")
    lister = make_principal(
        tenant=tenant_a, roles=(), enabled_permissions=["spam-filter-train", "principal-list"]
    )
    page = console(lister).get("/spam-filter/bayes/").content.decode()
    assert f'id="bayes-account-{lister.pk}"' in page
    assert f'id="bayes-account-{user_a.pk}"' not in page


def test_the_bayes_page_costs_the_same_for_many_accounts(
    console, admin_a, make_principal, tenant_a, django_assert_max_num_queries
):
    client = console(admin_a)
    for i in range(25):
        make_principal(tenant=tenant_a, name=f"many{i:02}")
    with CaptureQueriesContext(connection) as some:
        client.get("/spam-filter/bayes/")
    for i in range(25, 100):
        make_principal(tenant=tenant_a, name=f"many{i:02}")
    # session, actor, the accounts page (+ its prefetches), the count, the learned counts
    assert len(some) <= 9
    with django_assert_max_num_queries(len(some)):
        response = client.get("/spam-filter/bayes/")
    assert response.status_code == 200
    assert response.content.decode().count('id="bayes-account-') == 20


def test_it_trains_an_account_from_a_pasted_message(console, admin_a, user_a):
    response = console(admin_a).post(
        "/spam-filter/bayes/train/",
        {"kind": "ham", "account": "user-a", "message": MESSAGE},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 204
    assert response["HX-Redirect"] == "/spam-filter/bayes/"
    assert _learned(bayes.account_scope(user_a.pk)) == (0, 1)


@pytest.mark.parametrize("by_id", [True, False])
def test_the_training_message_names_the_account_however_it_was_given(
    console, admin_a, user_a, by_id
):
    """The Account field takes a name or an id: trained by id, the message read "...in
    the Bayes model of 17"."""
    client = console(admin_a)
    account = str(user_a.pk) if by_id else "user-a"
    data = {"kind": "spam", "account": account, "message": MESSAGE}
    response = client.post("/spam-filter/bayes/train/", data, follow=True)
    assert response.status_code == 200
    page = response.content.decode()
    assert f"Learned the message as spam in the Bayes model of {user_a.name}." in page
    assert f"model of {user_a.pk}." not in page


def test_it_trains_the_global_model_from_an_uploaded_file(console, superadmin):
    upload = SimpleUploadedFile("m.eml", MESSAGE.encode(), content_type="message/rfc822")
    response = console(superadmin).post(
        "/spam-filter/bayes/train/", {"kind": "spam", "account": "", "upload": upload}
    )
    assert response.status_code == 302
    assert _learned(bayes.GLOBAL) == (1, 0)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"kind": "spam", "account": "user-a", "message": "  "}, "The message is empty."),
        (
            {"kind": "spam", "account": "", "message": MESSAGE},
            "Only a superadmin may train the global Bayes model, which every tenant shares; "
            "use an account&#x27;s model instead.",
        ),
        # Another tenant's account reads like one that does not exist.
        ({"kind": "spam", "account": "admin-b", "message": MESSAGE}, "No such account: admin-b"),
        ({"kind": "spam", "account": "nobody", "message": MESSAGE}, "No such account: nobody"),
        ({"kind": "maybe", "account": "user-a", "message": MESSAGE}, "Select a valid choice."),
    ],
)
def test_a_refused_training_answers_422_with_the_message(
    console, admin_a, user_a, admin_b, data, message
):
    response = console(admin_a).post("/spam-filter/bayes/train/", data, HTTP_HX_REQUEST="true")
    assert response.status_code == 422
    page = response.content.decode()
    assert page.lstrip().startswith('<form method="post" id="bayes-train-form"')
    assert message in page
    assert not BayesModel.objects.exists()


BIG = MESSAGE + "Replica watches at 10% off: <https://shop.example/?a=1&b=2>\r\n" * 50_000


@pytest.mark.parametrize("htmx", [True, False])
def test_a_paste_over_djangos_field_limit_asks_for_the_file(
    client, settings, admin_a, user_a, htmx
):
    """The train form is multipart (it carries a file), and Django caps a multipart form's
    text at 2.5 MB: a bigger paste answered a bare 400 before the form could speak."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_a)
    page = client.get("/spam-filter/bayes/").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    data = {"csrfmiddlewaretoken": token, "kind": "spam", "account": "user-a", "message": BIG}
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    response = client.post("/spam-filter/bayes/train/", data, **headers)
    assert response.status_code == 422
    page = response.content.decode()
    error = page[page.index('id="id_message_error"') :]
    assert "The pasted message is larger than 2.5 MB: upload it as a file instead." in error
    assert "Choose spam or ham." not in page  # the fields before it are kept
    assert 'value="user-a"' in page
    assert not BayesModel.objects.exists()
    upload = SimpleUploadedFile("m.eml", BIG.encode(), content_type="message/rfc822")
    data = {"csrfmiddlewaretoken": token, "kind": "spam", "account": "user-a", "upload": upload}
    assert client.post("/spam-filter/bayes/train/", data, **headers).status_code in (204, 302)
    assert _learned(bayes.account_scope(user_a.pk)) == (1, 0)


def test_a_plain_account_learns_nothing_of_its_tenants_other_principals(
    console, user_a, make_principal, tenant_a
):
    """One that may train only its own model was told "staff is not an account." of a
    group of its tenant, and "No such account" of a name nobody holds: which names exist."""
    make_principal(tenant=tenant_a, roles=(), name="staff", type="group", password="")
    client = console(user_a)
    for name in ("staff", "nobody"):
        data = {"kind": "spam", "account": name, "message": MESSAGE}
        response = client.post("/spam-filter/bayes/train/", data, HTTP_HX_REQUEST="true")
        assert response.status_code == 422
        assert f"No such account: {name}" in response.content.decode()
    assert not BayesModel.objects.exists()


def test_it_purges_an_accounts_model_after_confirmation(console, admin_a, user_a):
    services.bayes_train(actor=admin_a, message=MESSAGE.encode(), spam=True, account_id="user-a")
    client = console(admin_a)
    url = f"/spam-filter/bayes/purge/{user_a.pk}/"
    confirm = client.get(url)
    assert confirm.status_code == 200
    assert '<strong id="purge-spam">1</strong>' in confirm.content.decode()
    assert _learned(bayes.account_scope(user_a.pk)) == (1, 0)  # a GET changes nothing
    assert client.post(url).status_code == 302
    assert _learned(bayes.account_scope(user_a.pk)) == (0, 0)


def test_it_purges_the_global_model(console, superadmin):
    services.bayes_train(actor=superadmin, message=MESSAGE.encode(), spam=True)
    client = console(superadmin)
    assert client.get("/spam-filter/bayes/purge/").status_code == 200
    assert client.post("/spam-filter/bayes/purge/", HTTP_HX_REQUEST="true").status_code == 204
    assert _learned(bayes.GLOBAL) == (0, 0)


def test_purges_across_tenants_and_of_the_global_model_are_refused(
    console, admin_a, admin_b, user_a
):
    services.bayes_train(actor=admin_a, message=MESSAGE.encode(), spam=True, account_id="user-a")
    outsider = console(admin_b)
    assert outsider.get(f"/spam-filter/bayes/purge/{user_a.pk}/").status_code == 404
    assert outsider.post(f"/spam-filter/bayes/purge/{user_a.pk}/").status_code == 404
    assert outsider.post("/spam-filter/bayes/purge/").status_code == 403  # server-wide
    assert outsider.get(f"/spam-filter/bayes/purge/{admin_b.tenant_id}/").status_code == 404
    assert _learned(bayes.account_scope(user_a.pk)) == (1, 0)


def test_learned_many_reads_both_stores(settings, superadmin):
    for store in ("database", "redis"):
        if store == "redis":
            url = os.environ.get("REDIS_URL")
            if not url:
                skip_or_fail("REDIS_URL is not set")
            settings.REDIS_URL = url
        scopes = [bayes.account_scope(10**9), bayes.account_scope(10**9 + 1)]
        for scope in scopes:
            bayes.purge(scope)
        bayes.learn(services.parse(MESSAGE.encode()), spam=True, scope=scopes[1])
        bayes.learn(services.parse(MESSAGE.encode()), spam=False, scope=scopes[1])
        assert bayes.learned_many(scopes) == [(0, 0), (1, 1)]
        assert bayes.learned_many([]) == []
        for scope in scopes:
            bayes.purge(scope)


# --- DMARC troubleshooter ----------------------------------------------------------------------


def test_the_troubleshooter_shows_each_result(console, admin_a, dns_server):
    pair = dkim.generate(dkim.RSA)
    dns_server.set_zone(
        records.dkim_name("remote.test", "s1"),
        {"TXT": [dkim.txt_record(pair.algorithm, pair.public_key)]},
    )
    dns_server.set_zone("remote.test", {"TXT": ["v=spf1 ip4:192.0.2.1 -all"]})
    dns_server.set_zone("_dmarc.remote.test", {"TXT": ["v=DMARC1; p=quarantine"]})
    dns_server.set_zone("1.2.0.192.in-addr.arpa", {"PTR": ["mx.remote.test."]})
    dns_server.set_zone("mx.remote.test", {"A": ["192.0.2.1"], "TXT": ["v=spf1 a -all"]})
    signed = dkim.sign(MESSAGE.encode(), domain="remote.test", selector="s1", key=pair)
    response = console(admin_a).post(
        "/spam-filter/dmarc/",
        {
            "remote_ip": "192.0.2.1",
            "ehlo_domain": "mx.remote.test",
            "mail_from": "bounce@remote.test",
            "body": (signed + MESSAGE.encode()).decode(),
        },
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert page.lstrip().startswith('<div id="dmarc-form">')
    assert '<span class="badge" id="dmarc-verdict">pass</span>' in page
    assert "SPF, HELO <code>spfEhloDomain</code></td><td>pass</td>" in page
    assert "SPF, MAIL FROM <code>spfMailFromDomain</code></td><td>pass</td>" in page
    assert '<td class="wrap">remote.test</td>' in page
    assert '<td>pass</td>\n          <td class="wrap">PTR mx.remote.test.</td>' in page
    assert "DKIM <code>d=remote.test s=s1</code></td><td>pass</td>" in page
    assert "ARC <code>arcResult</code></td><td>none</td>" in page
    assert '<strong id="dmarc-policy">quarantine</strong>' in page
    assert " ms</td>" in page


def test_the_troubleshooter_explains_a_failure(console, admin_a, dns_server):
    dns_server.set_zone("remote.test", {"TXT": ["v=spf1 ip4:192.0.2.1 -all"]})
    dns_server.set_zone("_dmarc.remote.test", {"TXT": ["v=DMARC1; p=reject"]})
    response = console(admin_a).post(
        "/spam-filter/dmarc/",
        {"remote_ip": "198.51.100.7", "mail_from": "bounce@remote.test", "body": MESSAGE},
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert '<span class="badge" id="dmarc-verdict">fail</span>' in page
    assert "SPF, MAIL FROM <code>spfMailFromDomain</code></td><td>fail</td>" in page
    assert "The message has no DKIM signature." in page
    assert '<strong id="dmarc-policy">reject</strong>' in page


def test_the_troubleshooter_escapes_what_the_sender_and_dns_chose(console, admin_a, dns_server):
    """A DKIM selector and domain come from the message, a PTR name from the sender's DNS:
    shown as text, never as markup."""
    dns_server.set_zone("1.2.0.192.in-addr.arpa", {"PTR": ["x<img src=x onerror=alert(1)>.test."]})
    hostile = (
        'DKIM-Signature: v=1; a=rsa-sha256; d=remote.test"><b>x</b>;'
        " s=<script>alert(1)</script>; h=from; bh=x; b=y\r\n"
    )
    response = console(admin_a).post(
        "/spam-filter/dmarc/",
        {"remote_ip": "192.0.2.1", "ehlo_domain": "<i>h</i>", "body": hostile + MESSAGE},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    page = response.content.decode()
    for markup in ("<script>", "<img", "<b>x", "<i>h"):
        assert markup not in page
    assert "s=&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "PTR x&lt;img" in page


def test_the_troubleshooter_answers_422_with_the_messages(console, admin_a):
    response = console(admin_a).post(
        "/spam-filter/dmarc/", {"remote_ip": "123", "body": " "}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 422
    page = response.content.decode()
    assert "Enter a valid IPv4 or IPv6 address." in page
    assert "Paste the message to check." in page
    assert 'id="dmarc-result"' not in page


def test_the_troubleshooter_takes_a_message_past_djangos_body_limit(console, admin_a, dns_server):
    """Up to the form's 10 MB, url-encoded as a browser sends it: not a bare 400."""
    body = MESSAGE + "Replica watches at 10% off: <https://shop.example/?a=1&b=2>\r\n" * 50_000
    response = console(admin_a).post(
        "/spam-filter/dmarc/", urlencode({"body": body}),
        content_type="application/x-www-form-urlencoded", HTTP_HX_REQUEST="true",
    )  # fmt: skip
    assert response.status_code == 200
    assert 'id="dmarc-result"' in response.content.decode()


def test_the_troubleshooter_needs_troubleshoot(console, user_a, admin_a):
    assert console(admin_a).get("/spam-filter/dmarc/").status_code == 200
    response = console(user_a).get("/spam-filter/dmarc/")
    assert response.status_code == 403
    assert "troubleshoot" in response.content.decode()


# --- the mailbox's Spam tab ------------------------------------------------------------------


def _spam_url(jane, tail: str = "") -> str:
    return f"/spam-filter/mailboxes/{jane.domain_id}/{jane.pk}/{tail}"


def _entries(jane, list_name=None) -> list[tuple[str, str]]:
    rows = SenderListEntry.objects.filter(mailbox=jane.principal)
    if list_name:
        rows = rows.filter(list=list_name)
    return sorted(rows.values_list("list", "value"))


def test_the_mailbox_page_has_a_spam_tab(console, admin_a, jane):
    page = console(admin_a).get(f"/domains/{jane.domain_id}/mailboxes/{jane.pk}/").content
    assert f'href="{_spam_url(jane)}" id="mailbox-spam-tab"'.encode() in page


def test_the_spam_tab_lists_the_four_lists_and_the_settings(
    console, admin_a, jane, django_assert_max_num_queries
):
    SenderListEntry.objects.create(mailbox=jane.principal, tenant_id=jane.principal.tenant_id,
                                   list="safelist", value="friend.example")  # fmt: skip
    client = console(admin_a)
    with CaptureQueriesContext(connection) as one:
        client.get(_spam_url(jane))
    SenderListEntry.objects.bulk_create(
        SenderListEntry(mailbox=jane.principal, tenant_id=jane.principal.tenant_id, list=name,
                        value=f"10.{i // 256}.{i % 256}.0/24" if name.startswith("ip")
                        else f"s{i}.example")
        for name in ("blacklist", "ipblacklist", "ipsafelist") for i in range(1000)
    )  # fmt: skip
    # session, actor, domain, mailbox (+ its principal, addresses), the lists, settings
    assert len(one) <= 8
    with django_assert_max_num_queries(len(one)):
        response = client.get(_spam_url(jane))
    assert response.status_code == 200
    page = response.content.decode()
    for list_name in ("blacklist", "safelist", "ipblacklist", "ipsafelist"):
        assert f'id="spam-list-{list_name}"' in page
    assert "<code>friend.example</code>" in page
    assert '<option value="on" selected>On</option>' in page


def test_each_list_box_is_labelled_with_its_own_list(console, admin_a, jane):
    """Four "Add" boxes on one page: a screen reader must tell them apart, and the field
    wrappers must keep their ids unique."""
    page = console(admin_a).get(_spam_url(jane)).content.decode()
    for name, title in (
        ("blacklist", "Block list"),
        ("safelist", "Safe list"),
        ("ipblacklist", "IP block list"),
        ("ipsafelist", "IP safe list"),
    ):
        assert re.search(rf'<label for="id_{name}-address">{title}: new entry\s*<input', page)
        assert page.count(f'id="field-{name}-address"') == 1
    # After a refused entry, the re-rendered lists keep their labels.
    response = console(admin_a).post(
        _spam_url(jane, "blacklist/add/"),
        {"blacklist-address": "not an address"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 422
    body = response.content.decode()
    assert re.search(
        r'<label for="id_blacklist-address">Block list: new entry\s*<input[^>]*aria-invalid="true"',
        body,
    )


def _fill(jane, list_name: str, count: int) -> None:
    SenderListEntry.objects.bulk_create(
        SenderListEntry(mailbox=jane.principal, tenant_id=jane.principal.tenant_id,
                        list=list_name, value=f"s{i:04d}.example")
        for i in range(count)
    )  # fmt: skip


def test_a_long_list_pages_with_the_one_pager(console, admin_a, jane):
    _fill(jane, "blacklist", 120)
    SenderListEntry.objects.create(mailbox=jane.principal, tenant_id=jane.principal.tenant_id,
                                   list="safelist", value="friend.example")  # fmt: skip
    client = console(admin_a)
    page = client.get(_spam_url(jane)).content.decode()
    section = page[page.index('<section id="spam-list-blacklist">') :]
    section = section[: section.index("</section>")]
    assert "Block list <small>(120)</small>" in section
    assert section.count("<code>") == 50
    assert "<code>s0000.example</code>" in section and "s0050.example" not in section
    assert "Page 1 of 3 · 120 in all" in section
    next_link = f"{_spam_url(jane)}?list=blacklist&amp;page=2"
    assert f'href="{next_link}" hx-get="{next_link}" hx-target="#spam-list-blacklist"' in section
    assert "Page 1 of" not in page[page.index('<section id="spam-list-safelist">') :]

    # htmx asks for the last page of that list: that list's section alone.
    response = client.get(_spam_url(jane) + "?list=blacklist&page=3", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    part = response.content.decode()
    assert part.lstrip().startswith('<section id="spam-list-blacklist">')
    assert part.count("<code>") == 20
    assert "<code>s0119.example</code>" in part and "s0099.example" not in part
    assert "Page 3 of 3 · 120 in all" in part
    # Without htmx the whole page, that list on its page, the others on their first.
    full = client.get(_spam_url(jane) + "?list=blacklist&page=2").content.decode()
    assert "<code>s0050.example</code>" in full and "<code>friend.example</code>" in full
    # A page past the end shows the last; nonsense shows the first.
    assert "Page 3 of 3" in client.get(_spam_url(jane) + "?list=blacklist&page=99").content.decode()
    assert "Page 1 of 3" in client.get(_spam_url(jane) + "?list=blacklist&page=x").content.decode()


def test_the_spam_tab_is_not_shown_across_tenants(console, admin_b, user_a, jane):
    assert console(admin_b).get(_spam_url(jane)).status_code == 404
    wrong_domain = f"/spam-filter/mailboxes/{admin_b.pk}/{jane.pk}/"
    assert console(admin_b).get(wrong_domain).status_code == 404
    assert console(user_a).get(_spam_url(jane)).status_code == 403  # no principal-get


def test_it_adds_and_removes_list_entries(console, admin_a, jane):
    client = console(admin_a)
    response = client.post(
        _spam_url(jane, "blacklist/add/"), {"blacklist-address": "Spam.COM"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert page.lstrip().startswith('<div id="mailbox-spam-lists">')
    assert "<code>spam.com</code>" in page
    # An IP given to the block list goes on the IP block list, as the API does.
    client.post(_spam_url(jane, "blacklist/add/"), {"blacklist-address": "216.12.34.1"})
    client.post(_spam_url(jane, "ipsafelist/add/"), {"ipsafelist-address": "2001:db8::/32"})
    assert _entries(jane) == [
        ("blacklist", "spam.com"),
        ("ipblacklist", "216.12.34.1"),
        ("ipsafelist", "2001:db8::/32"),
    ]
    response = client.post(
        _spam_url(jane, "blacklist/remove/"), {"value": "spam.com"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert "<code>spam.com</code>" not in response.content.decode()
    response = client.post(_spam_url(jane, "ipblacklist/remove/"), {"value": "216.12.34.1"})
    assert response.status_code == 302
    assert _entries(jane) == [("ipsafelist", "2001:db8::/32")]


@pytest.mark.parametrize(
    ("list_name", "value", "message"),
    [
        ("blacklist", "abc", "invalid email address: abc"),
        ("safelist", "abc", "invalid email address: abc"),
        ("ipblacklist", "123", "invalid ip address: 123"),
        ("ipsafelist", "abc@junkmail.com", "invalid ip address: abc@junkmail.com"),
        ("blacklist", "a.example", "Adding a.example would blacklist the current domain"),
    ],
)
def test_a_refused_entry_answers_422_with_the_spec_message(
    console, admin_a, jane, list_name, value, message
):
    response = console(admin_a).post(
        _spam_url(jane, f"{list_name}/add/"), {f"{list_name}-address": value},
        HTTP_HX_REQUEST="true",
    )  # fmt: skip
    assert response.status_code == 422
    page = response.content.decode()
    error = f'<ul class="errorlist" role="alert" id="id_{list_name}-address_error">'
    assert f"{error}<li>{message}</li>" in page
    assert _entries(jane) == []


def test_removing_what_is_not_there_answers_422_with_the_spec_message(console, admin_a, jane):
    response = console(admin_a).post(
        _spam_url(jane, "blacklist/remove/"), {"value": "abc@junkmail.com"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 422
    assert "abc@junkmail.com is not found on the blacklist" in response.content.decode()


def test_lists_of_another_tenants_mailbox_cannot_be_changed(console, admin_b, jane):
    SenderListEntry.objects.create(mailbox=jane.principal, tenant_id=jane.principal.tenant_id,
                                   list="blacklist", value="spam.com")  # fmt: skip
    client = console(admin_b)
    add = client.post(_spam_url(jane, "blacklist/add/"), {"blacklist-address": "x.com"})
    remove = client.post(_spam_url(jane, "blacklist/remove/"), {"value": "spam.com"})
    settings_ = client.post(_spam_url(jane, "settings/"), {"filterlevel": "off"})
    assert (add.status_code, remove.status_code, settings_.status_code) == (404, 404, 404)
    assert _entries(jane) == [("blacklist", "spam.com")]
    assert not MailboxSpamSetting.objects.exists()


def test_an_unknown_list_is_404(console, admin_a, jane):
    response = console(admin_a).post(_spam_url(jane, "greylist/add/"), {"greylist-address": "x"})
    assert response.status_code == 404


def test_it_saves_the_spam_settings(console, admin_a, jane):
    client = console(admin_a)
    response = client.post(
        _spam_url(jane, "settings/"),
        {
            "filterlevel": "exclusive",
            "sendtodomainquarantine": "on",
            "quarantineowner": "Boss@A.example",
        },
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    assert 'id="settings-saved"' in response.content.decode()
    setting = MailboxSpamSetting.objects.get(mailbox=jane.principal)
    assert (setting.filter_level, setting.send_to_domain_quarantine, setting.quarantine_owner) == (
        "exclusive", True, "boss@a.example",
    )  # fmt: skip
    # Off forces the domain quarantine off (the spec's rule, the service's).
    response = client.post(
        _spam_url(jane, "settings/"), {"filterlevel": "off", "sendtodomainquarantine": "on"}
    )
    assert response.status_code == 302
    setting.refresh_from_db()
    assert (setting.filter_level, setting.send_to_domain_quarantine) == ("off", False)


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({}, "filterlevel", "Missing required field: filterlevel"),
        ({"filterlevel": ""}, "filterlevel", "Required field filterlevel cannot be empty"),
        (
            {"filterlevel": "sometimes"},
            "filterlevel",
            "Invalid filterLevel, input must be: on/off/exclusive",
        ),
        (
            {"filterlevel": "on", "quarantineowner": "abc"},
            "quarantineowner",
            "invalid email address: abc",
        ),
    ],
)
def test_refused_settings_answer_422_with_the_spec_message(
    console, admin_a, jane, data, field, message
):
    response = console(admin_a).post(_spam_url(jane, "settings/"), data, HTTP_HX_REQUEST="true")
    assert response.status_code == 422
    page = response.content.decode()
    assert page.lstrip().startswith('<form method="post" id="mailbox-spam-settings"')
    assert f'id="id_{field}_error"><li>{message}</li>' in page
    assert not MailboxSpamSetting.objects.exists()


@pytest.mark.parametrize(
    ("written", "judged"),
    [
        ("[192.0.2.1]", "192.0.2.1"),
        ("[IPv6:2001:db8::1]", "2001:db8::1"),
        ("[ipv6:2001:DB8::1]", "2001:db8::1"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
    ],
)
def test_the_troubleshooter_takes_an_address_as_the_service_does(
    console, admin_a, dns_server, written, judged
):
    """An address literal as SMTP writes it (RFC 5321 4.1.3), pasted from a Received
    field: the service judged `[192.0.2.1]`, the form refused it."""
    results, _ = services.dmarc_troubleshoot(
        actor=admin_a, remote_ip=written, ehlo_domain="", mail_from="", message=MESSAGE.encode()
    )
    assert results.ip == judged
    response = console(admin_a).post(
        "/spam-filter/dmarc/", {"remote_ip": written, "body": MESSAGE}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="dmarc-result"' in page


@pytest.mark.parametrize("written", ["[192.0.2.1", "[IPv6:192.0.2.1]", "[[192.0.2.1]]", "IPv6:::1"])
def test_the_troubleshooter_refuses_what_the_service_refuses(console, admin_a, written):
    with pytest.raises(ValidationFailed) as refused:
        services.dmarc_troubleshoot(
            actor=admin_a, remote_ip=written, ehlo_domain="", mail_from="", message=b"x"
        )
    assert refused.value.field == "remoteIp"
    response = console(admin_a).post(
        "/spam-filter/dmarc/", {"remote_ip": written, "body": MESSAGE}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 422
    assert "Enter a valid IPv4 or IPv6 address." in response.content.decode()
