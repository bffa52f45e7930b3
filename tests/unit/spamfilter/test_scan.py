"""scan(): what the SMTP listeners call. Tags, scores, the headers, timeouts."""

from __future__ import annotations

import base64
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.spamfilter.message import html_to_text, parse
from apps.spamfilter.services import scan
from tests.conftest import corpus_file

pytestmark = pytest.mark.django_db

SPEC_MESSAGE = (
    b"From: jane@example.org\nTo: john@example.org\nSubject: Testing, please ignore\n"
    b'Content-Type: text/plain; charset="utf-8"\nContent-Transfer-Encoding: 8bit\n\n'
    b"Testing 1, 2, 3\n"
)
SPEC_RESULT = (
    "X-Spam-Result: ARC_NA (0.00),\r\n\tDKIM_NA (0.00),\r\n\tFROM_NEQ_ENV_FROM (0.00),\r\n"
    "\tFROM_NO_DN (0.00),\r\n\tRCPT_COUNT_ONE (0.00),\r\n\tRCVD_TLS_LAST (0.00),\r\n"
    "\tSINGLE_SHORT_PART (0.00),\r\n\tSPF_NA (0.00),\r\n\tTO_DN_NONE (0.00),\r\n"
    "\tTO_DOM_EQ_FROM_DOM (0.00),\r\n\tRCVD_COUNT_ZERO (0.10),\r\n\tFORGED_SENDER (0.30),\r\n"
    "\tHELO_NORES_A_OR_MX (0.30),\r\n\tAUTH_NA (1.00),\r\n\tDMARC_NA (1.00),\r\n"
    "\tHELO_IPREV_MISMATCH (1.00),\r\n\tMISSING_DATE (1.00),\r\n"
    "\tFROMHOST_NORES_A_OR_MX (1.50),\r\n\tFORGED_RECIPIENTS (2.00),\r\n"
    "\tMISSING_MIME_VERSION (2.00),\r\n\tMISSING_MID (2.50)\r\n"
    "X-Spam-Status: Yes, score=12.70\r\n"
)


@pytest.fixture
def spec_dns(dns_server):
    """8.8.8.8 has a confirmed PTR name, as in real DNS; nothing else exists."""
    dns_server.set_zone("8.8.8.8.in-addr.arpa", {"PTR": ["dns.google."]})
    dns_server.set_zone("dns.google", {"A": ["8.8.8.8"]})
    return dns_server


def spec_scan(**changes):
    arguments = dict(
        message=SPEC_MESSAGE,
        remote_ip="8.8.8.8",
        ehlo_domain="foo.org",
        env_from="bounce@example.net",
        env_rcpt_to=["jane@example.org"],
        is_tls=True,
    )
    return scan(**(arguments | changes))


def test_it_scores_the_spec_example_as_the_spec_does(spec_dns):
    verdict = spec_scan()
    assert verdict.score == 12.7
    assert verdict.disposition_value == SPEC_RESULT
    assert verdict.action == "allow"
    assert verdict.is_spam
    assert {"X_HDR_FROM", "X_HDR_TO", "X_HDR_SUBJECT", "X_HDR_CONTENT_TYPE"} <= set(verdict.tags)
    assert verdict.tags["MISSING_MID"].value == 2.5


def test_a_client_without_a_ptr_record_is_iprev_permerror_and_scores_as_before(dns_server):
    """RFC 8601 2.7.3: no PTR data published is permerror (it said fail). The tags and
    score are those it had then: RDNS_NONE and HELO_IPREV_MISMATCH, 1.00 each."""
    verdict = spec_scan()
    assert "\tiprev=permerror policy.iprev=8.8.8.8;\r\n" in verdict.authentication_results
    assert verdict.disposition_value == SPEC_RESULT.replace(
        "\tMISSING_DATE (1.00),\r\n", "\tMISSING_DATE (1.00),\r\n\tRDNS_NONE (1.00),\r\n"
    ).replace("score=12.70", "score=13.70")
    assert verdict.score == 13.7
    assert verdict.tags["RDNS_NONE"].value == verdict.tags["HELO_IPREV_MISMATCH"].value == 1.0


def test_it_ends_within_the_deadline_when_dns_is_silent(settings, dns_server):
    for name in ("example.net", "example.org", "foo.org", "8.8.8.8.in-addr.arpa"):
        dns_server.set_zone(name, "TIMEOUT")
    dns_server.set_zone("_dmarc.example.org", "TIMEOUT")
    settings.MAILADMIN_SPAM_DNS_DEADLINE = 0.5
    started = time.monotonic()
    verdict = spec_scan()
    assert time.monotonic() - started < 2.0
    assert {"SPF_DNSFAIL", "DMARC_DNSFAIL", "RDNS_DNSFAIL"} <= set(verdict.tags)
    assert "spf=temperror" in verdict.authentication_results
    assert "dmarc=temperror" in verdict.authentication_results


def test_it_skips_sender_checks_for_an_authenticated_submission(spec_dns):
    verdict = spec_scan(authenticated_as="jane")
    assert verdict.authentication_results == ""
    assert not {t for t in verdict.tags if t.split("_")[0] in {"SPF", "DKIM", "DMARC", "ARC"}}
    assert "FORGED_RECIPIENTS" not in verdict.tags


@pytest.mark.parametrize("to", [b"<Undisclosed-Recipient:;>", b"undisclosed-recipients:;", b"test"])
def test_a_to_that_lists_no_address_does_not_make_the_recipients_forged(spec_dns, to):
    verdict = spec_scan(message=SPEC_MESSAGE.replace(b"john@example.org", to, 1))
    assert "FORGED_RECIPIENTS" not in verdict.tags


def test_a_recipient_the_headers_do_not_name_is_still_forged(spec_dns):
    to = b"Undisclosed-Recipient:;, john@example.org"
    verdict = spec_scan(message=SPEC_MESSAGE.replace(b"john@example.org", to, 1))
    assert verdict.tags["FORGED_RECIPIENTS"].value == 2.0


def test_it_passes_a_signed_message_from_an_aligned_domain(dns_server, monkeypatch):
    import dkim

    class Clock:
        @staticmethod
        def time() -> float:
            return 1667843664.0

    monkeypatch.setattr(dkim, "time", Clock)
    records, message = corpus_file("dkim", "mail-auth", "dkim-002.txt").read_text().split("\n\n", 1)
    for line in records.splitlines():
        owner, value = line.split(" ", 1)
        dns_server.set_zone(owner, {"TXT": [value]})
    dns_server.set_zone(
        "example.com", {"TXT": ["v=spf1 ip4:192.0.2.0/24 -all"], "MX": [(10, "mx.example.com.")]}
    )
    dns_server.set_zone("_dmarc.example.com", {"TXT": ["v=DMARC1; p=reject"]})
    verdict = scan(
        message=message.replace("\n", "\r\n").encode(),
        remote_ip="192.0.2.7",
        ehlo_domain="mx.example.com",
        env_from="joe@example.com",
        env_rcpt_to=["suzie@example.net"],
    )
    assert {"SPF_ALLOW", "DKIM_ALLOW", "DMARC_POLICY_ALLOW"} <= set(verdict.tags)
    assert "AUTH_NA" not in verdict.tags
    header = verdict.authentication_results
    assert header.startswith(
        "Authentication-Results: mail.localhost;\r\n\tdkim=pass header.d=example.com"
    )
    assert "spf=pass smtp.mailfrom=joe@example.com" in header
    # From is football.example.com: it aligns (relaxed) with d=example.com, and its DMARC
    # record is the organisational domain's.
    assert "dmarc=pass header.from=football.example.com policy.dmarc=none" in header


def _content(headers: str, body: str) -> bytes:
    base = (
        "From: Shop <shop@example.org>\r\nTo: You <you@example.net>\r\n"
        "Date: Mon, 30 Nov 2026 10:00:00 +0000\r\n"
        "Message-ID: <1@example.org>\r\nMIME-Version: 1.0\r\n"
    )
    return (base + headers + "\r\n" + body).encode()


def content_tags(dns_server, message: bytes) -> set[str]:
    return set(
        scan(message=message, remote_ip="", ehlo_domain="", env_from="", env_rcpt_to=[]).tags
    )


def test_it_catches_html_only_mail_whose_link_text_shows_another_host(dns_server):
    html = (
        "<html><body><p>Your account is locked.</p>"
        '<a href="http://login.evil.test/x">https://www.paypal.com/signin</a></body></html>'
    )
    tags = content_tags(
        dns_server, _content("Subject: Account\r\nContent-Type: text/html\r\n", html)
    )
    assert {"MIME_HTML_ONLY", "URL_ANCHOR_MISMATCH"} <= tags


def test_it_does_not_flag_a_link_whose_text_names_its_own_site(dns_server):
    html = '<p>hello there</p><a href="https://news.example.org/a?b=1">www.example.org</a>'
    tags = content_tags(dns_server, _content("Subject: News\r\nContent-Type: text/html\r\n", html))
    assert "URL_ANCHOR_MISMATCH" not in tags


def test_it_flags_executable_and_disguised_attachments(dns_server):
    body = (
        "--b\r\nContent-Type: text/plain\r\n\r\n"
        "See the invoice attached, thanks for your order today.\r\n"
        "--b\r\nContent-Type: application/octet-stream\r\n"
        'Content-Disposition: attachment; filename="invoice.pdf.exe"\r\n\r\nMZ\r\n--b--\r\n'
    )
    tags = content_tags(
        dns_server,
        _content('Subject: Invoice\r\nContent-Type: multipart/mixed; boundary="b"\r\n', body),
    )
    assert {"MIME_BAD_EXTENSION", "MIME_DOUBLE_BAD_EXTENSION"} <= tags


def test_it_flags_capitals_and_look_alike_letters(dns_server):
    # "PАYPAL" below spells its "А" with the Cyrillic capital letter.
    encoded = base64.b64encode("URGENT: VERIFY YOUR PАYPAL ACCOUNT".encode()).decode()
    subject = f"=?utf-8?b?{encoded}?="
    tags = content_tags(
        dns_server,
        _content(
            f"Subject: {subject}\r\nContent-Type: text/plain; charset=utf-8\r\n",
            "Please verify now.\r\n",
        ),
    )
    assert {"SUBJ_ALL_CAPS", "SUBJ_MIXED_CHARSET"} <= tags


BULK_WORDING = {
    "DEAR_FRIEND",
    "ACT_NOW",
    "GUARANTEED",
    "MAKE_MONEY",
    "MONEY_PER_PERIOD",
    "LOAN_OFFER",
    "PILLS",
    "MIRACLE_WORDS",
    "CLICK_HERE",
    "SPAM_LAW",
    "BODY_EXCESS_EXCLAIM",
    "HTML_FONT_LARGE",
}


def test_it_flags_the_wording_of_bulk_advertising(dns_server):
    html = (
        "<p>Dear Friend,</p><p><font size=5>Work from home and earn $500 a week!!</font> "
        "100% guaranteed, order now!! A revolutionary herbal formula; refinance at the lowest "
        "rates!! <a href='http://x.example/'>Click here</a>. Under Bill S.1618 Title III "
        "this cannot be considered spam.</p>"
    )
    tags = content_tags(dns_server, _content("Subject: Hi\r\nContent-Type: text/html\r\n", html))
    assert tags >= BULK_WORDING


def test_it_leaves_a_colleagues_note_without_bulk_wording_tags(dns_server):
    text = (
        "Dear Ann,\r\n\r\nThe order for the new monitors went out today; accounting says "
        "the price is guaranteed until Friday. See https://wiki.example.org/orders/42 and "
        "call me if the font size on the report is too small!\r\n\r\nBob\r\n"
    )
    tags = content_tags(dns_server, _content("Subject: Monitors\r\n", text))
    assert tags & BULK_WORDING == set()


def _freemail(received: str, message_id: str) -> bytes:
    return (
        f"{received}From: Jeff <jeff.b@hotmail.com>\r\nTo: You <you@example.net>\r\n"
        "Subject: Re: Funny\r\nDate: Mon, 30 Nov 2026 10:00:00 +0000\r\n"
        f"Message-ID: {message_id}\r\nMIME-Version: 1.0\r\n\r\nHave a look.\r\n"
    ).encode()


def test_it_flags_free_mail_that_never_passed_through_its_provider(dns_server):
    message = _freemail(
        "Received: from plesk.rackshack.example (plesk.rackshack.example [203.0.113.9])"
        " by mx.example.net; Mon, 30 Nov 2026 10:00:01 +0000\r\n",
        "<20261130.21000.qmail@plesk.rackshack.example>",
    )
    assert "FORGED_FREEMAIL_RCVD" in content_tags(dns_server, message)


def test_it_leaves_free_mail_sent_through_its_provider(dns_server):
    through_hotmail = _freemail(
        "Received: from EUR05-AM6-obe.outbound.protection.outlook.com (mail-am6eur05"
        "olkn2010.outbound.protection.outlook.com [40.92.91.10]) by mx.example.net;"
        " Mon, 30 Nov 2026 10:00:01 +0000\r\n",
        "<20261130.21000.qmail@plesk.rackshack.example>",
    )
    assert "FORGED_FREEMAIL_RCVD" not in content_tags(dns_server, through_hotmail)
    # A provider's Message-ID alone says it was written there (the Received headers may
    # have been dropped by a forwarder), as does connecting from the provider itself.
    its_message_id = _freemail("", "<DB7PR10MB2345.eurprd10.prod.hotmail.com>")
    assert "FORGED_FREEMAIL_RCVD" not in content_tags(dns_server, its_message_id)
    from_provider = scan(
        message=_freemail("", "<1@plesk.rackshack.example>"),
        remote_ip="",
        ehlo_domain="mail-am6eur05olkn2010.outbound.protection.outlook.com",
        env_from="",
        env_rcpt_to=[],
    )
    assert "FORGED_FREEMAIL_RCVD" not in from_provider.tags


def _dated(date: str) -> bytes:
    return (
        f"From: Ann <ann@example.org>\r\nTo: You <you@example.net>\r\nSubject: Hi\r\n"
        f"Date: {date}\r\nMessage-ID: <1@example.org>\r\n\r\nSee you at noon.\r\n"
    ).encode()


DATE_TAGS = {"INVALID_DATE", "INVALID_DATE_TZ_ABSURD"}


def test_it_flags_a_date_no_mailer_writes(dns_server):
    assert DATE_TAGS & content_tags(dns_server, _dated("Wed, 21 Aug 2002 20:31:57 -1600")) == {
        "INVALID_DATE_TZ_ABSURD"
    }
    assert DATE_TAGS & content_tags(dns_server, _dated("Sun, 22 Sep 0102 04:09:28 +1100")) == {
        "INVALID_DATE"
    }
    assert DATE_TAGS & content_tags(dns_server, _dated("next Tuesday")) == {"INVALID_DATE"}


def test_it_leaves_dates_of_the_farthest_zones_and_two_digit_years(dns_server):
    for date in (
        "Mon, 30 Nov 2026 10:00:00 +1400",  # Kiribati
        "Mon, 30 Nov 2026 10:00:00 -1200",
        "Tue, 10 Feb 2004 10:14:01 -0800 (PST)",
        "Mon, 09 Feb 04 23:17:44 GMT",
        "30 Nov 2026 10:00:00 -0000",
    ):
        assert DATE_TAGS & content_tags(dns_server, _dated(date)) == set(), date


def _mailer(headers: str) -> bytes:
    return (
        f"From: Ann <ann@example.org>\r\nTo: You <you@example.net>\r\nSubject: Hi\r\n"
        f"Date: Mon, 30 Nov 2026 10:00:00 +0000\r\nMessage-ID: <1@example.org>\r\n{headers}"
        "\r\nSee you at noon.\r\n"
    ).encode()


def test_it_flags_an_outlook_x_mailer_without_the_header_outlook_writes(dns_server):
    for mailer in (
        "Microsoft Outlook Express 6.00.2600.0000",
        "Microsoft Outlook IMO Build 9.0.2416 (9.0.2910.0)",
        "Microsoft Office Outlook, Build 11.0.5510",
    ):
        tags = content_tags(dns_server, _mailer(f"X-Mailer: {mailer}\r\n"))
        assert "FORGED_MUA_OUTLOOK" in tags, mailer


def test_it_leaves_outlook_mail_as_outlook_writes_it(dns_server):
    genuine = _mailer(
        "X-Mailer: Microsoft Outlook Express 6.00.2600.0000\r\n"
        "X-MimeOLE: Produced By Microsoft MimeOLE V6.00.2600.0000\r\n"
    )
    assert "FORGED_MUA_OUTLOOK" not in content_tags(dns_server, genuine)
    # Outlook 2010 and later write no X-MimeOLE at all.
    modern = _mailer("X-Mailer: Microsoft Outlook 16.0\r\n")
    assert "FORGED_MUA_OUTLOOK" not in content_tags(dns_server, modern)


def test_it_rejects_the_gtube_test_message(dns_server):
    message = corpus_file("messages", "spam", "spamassassin-t", "gtube.eml").read_bytes()
    verdict = scan(message=message, remote_ip="", ehlo_domain="", env_from="", env_rcpt_to=[])
    assert verdict.tags["GTUBE"].action == "reject"
    assert verdict.action == "reject"
    assert verdict.reasons == ["GTUBE: The generic test for unsolicited bulk email"]
    assert verdict.is_spam


def test_it_scans_every_corpus_message_without_failing(dns_server):
    folder = corpus_file("messages", "spam", "spamassassin-t", "gtube.eml").parents[2]
    scanned = 0
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            verdict = scan(
                message=path.read_bytes(),
                remote_ip="192.0.2.1",
                ehlo_domain="mx.sender.test",
                env_from="a@sender.test",
                env_rcpt_to=["b@example.org"],
            )
            assert verdict.spam_status.startswith("X-Spam-Status: ")
            scanned += 1
    assert scanned > 500


def test_it_stays_linear_on_markup_built_to_be_slow(dns_server):
    trap = "<html><a href=x>" * 40_000 + "<script>" * 40_000
    message = _content("Subject: trap\r\nContent-Type: text/html\r\n", trap)
    started = time.monotonic()
    scan(message=message, remote_ip="", ehlo_domain="", env_from="", env_rcpt_to=[])
    assert time.monotonic() - started < 5


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(raw=st.binary(max_size=3000))
def test_it_scans_whatever_bytes_arrive(dns_server, raw):
    verdict = scan(
        message=b"From: a@example.org\r\n" + raw,
        remote_ip="192.0.2.1",
        ehlo_domain="h",
        env_from="",
        env_rcpt_to=[],
    )
    assert verdict.spam_status.startswith("X-Spam-Status: ")


def test_it_scans_without_bayes_when_its_store_is_down(settings, spec_dns):
    settings.REDIS_URL = "redis://127.0.0.1:9/0"  # nothing listens there
    verdict = spec_scan()
    assert verdict.bayes is None
    assert verdict.score == 12.7


def test_it_rejects_above_the_reject_threshold_and_says_why(settings, spec_dns):
    settings.MAILADMIN_SPAM_THRESHOLD_REJECT = 12.0
    verdict = spec_scan()
    assert verdict.action == "reject"
    assert verdict.reasons == ["spam score 12.70 reaches the reject threshold 12"]
    settings.MAILADMIN_SPAM_THRESHOLD_QUARANTINE = 10.0
    settings.MAILADMIN_SPAM_THRESHOLD_REJECT = 0
    assert spec_scan().action == "quarantine"


LINKED = (
    b"From: Sender <sender@remote.test>\r\nTo: jane@example.test\r\nSubject: offer\r\n"
    b"Date: Mon, 30 Nov 2026 10:00:00 +0000\r\nMessage-ID: <1@remote.test>\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n"
    b"See http://www.shop.spammy.example/buy and https://clean.example/ and http://192.0.2.9/\r\n"
)


def _listed_scan(**changes):
    return scan(
        message=LINKED,
        remote_ip="192.0.2.25",
        ehlo_domain="mx.remote.test",
        env_from="sender@remote.test",
        env_rcpt_to=["jane@example.test"],
        **changes,
    )


def test_the_uri_block_list_is_asked_with_each_links_registered_domain(dns_server, settings):
    settings.MAILADMIN_SPAM_URIBL = "dbl.test:URIBL_DBL:3.5,uribl.test:URIBL_BLACK:2"
    dns_server.set_zone("spammy.example.dbl.test", {"A": ["127.0.1.2"]})
    dns_server.set_zone("clean.example.uribl.test", {"A": ["127.0.0.1"]})  # "query refused"
    verdict = _listed_scan()
    assert verdict.tags["URIBL_DBL"].value == 3.5
    assert "URIBL_BLACK" not in verdict.tags
    settings.MAILADMIN_SPAM_URIBL = "dbl2.test:URIBL_DBL:3.5"  # (answers are cached)
    dns_server.set_zone("spammy.example.dbl2.test", {"A": ["127.255.255.254"]})  # refused
    assert "URIBL_DBL" not in _listed_scan().tags


def test_the_ip_block_list_is_asked_with_the_sending_address(dns_server, settings):
    settings.MAILADMIN_SPAM_DNSBL = "zen.test:SPAMHAUS_ZEN:4"  # any tag the setting names
    dns_server.set_zone("25.2.0.192.zen.test", {"A": ["127.0.0.4"]})
    assert _listed_scan().tags["SPAMHAUS_ZEN"].value == 4.0
    settings.MAILADMIN_SPAM_DNSBL = ""
    assert "SPAMHAUS_ZEN" not in _listed_scan().tags


def _timed_scan(message: bytes) -> tuple[float, object]:
    started = time.monotonic()
    verdict = scan(message=message, remote_ip="", ehlo_domain="", env_from="", env_rcpt_to=[])
    return time.monotonic() - started, verdict


def test_html_of_tags_never_closed_is_stripped_in_linear_time(dns_server):
    """`<[^>]*>` tried at each '<' with no '>' after it ran to the end of the part: 400 KB
    of '<p x=' took 20 s. The text left is the same as before."""
    elapsed, verdict = _timed_scan(
        _content("Subject: t\r\nContent-Type: text/html\r\n", "<b>Hi</b> " + "<p x=" * 40_000)
    )
    assert elapsed < 1.5
    assert "MIME_HTML_ONLY" in verdict.tags
    assert html_to_text("<b>Hi</b> there <p x=1 <i> and <p y=2") == "Hi there and <p y=2"


def test_font_tags_never_closed_are_read_in_linear_time(dns_server):
    """`<font\\b[^>]*\\bsize...` backtracked over the rest of the part at every unclosed
    <font: 1 MB of '<font size' took 260 s. The tags it flags are the same."""
    elapsed, verdict = _timed_scan(
        _content("Subject: t\r\nContent-Type: text/html\r\n", "<font size" * 20_000)
    )
    assert elapsed < 1.5
    assert "HTML_FONT_LARGE" not in verdict.tags
    for markup in ("<font face=x size=+5>big</font>", "<font color=red <font size='7'"):
        large = _content("Subject: t\r\nContent-Type: text/html\r\n", markup)
        assert "HTML_FONT_LARGE" in _timed_scan(large)[1].tags, markup
    small = _content("Subject: t\r\nContent-Type: text/html\r\n", "<font>x</font> size=5")
    assert "HTML_FONT_LARGE" not in _timed_scan(small)[1].tags


def test_a_long_display_name_is_read_in_linear_time(dns_server):
    """FROM_DN_HAS_ADDR's search tried `[\\w.+-]+@` from every letter of the name: a From
    of 100 KB of letters took 25 s."""
    slow = _content("Subject: t\r\n", "x").replace(b"Shop <", b'"' + b"a" * 60_000 + b'" <')
    elapsed, verdict = _timed_scan(slow)
    assert elapsed < 1.5
    assert "FROM_DN_HAS_ADDR" not in verdict.tags
    named = _content("Subject: t\r\n", "x").replace(b"Shop <", b'"x@bank.example" <')
    assert "FROM_DN_HAS_ADDR" in _timed_scan(named)[1].tags


@pytest.mark.parametrize("charset", ["charset=idna", "charset=punycode", "charset*=utf-8''x"])
def test_8bit_text_in_a_charset_whose_codec_refuses_replace_is_scanned(dns_server, charset):
    """The stdlib decodes a leaf's 8-bit payload in its declared charset with 'replace'
    and catches LookupError only: idna and punycode raise UnicodeError there, an RFC 2231
    charset*= (a tuple) TypeError, and the scan raised with them (the MX answered 451
    for ever, classify a 500)."""
    message = _content(f"Subject: t\r\nContent-Type: text/plain; {charset}\r\n", "")
    verdict = scan(
        message=message + b"caf\xe9 ol\xe9\r\n",
        remote_ip="",
        ehlo_domain="",
        env_from="",
        env_rcpt_to=[],
    )
    assert verdict.spam_status.startswith("X-Spam-Status: ")
    assert "R_BAD_CTE_7BIT" in verdict.tags  # 8-bit bytes in a part sent as 7bit


def test_a_header_of_many_encoded_words_is_decoded_in_linear_time(dns_server):
    """decode_header pops each encoded word off the front of a list: a Subject of 40,000
    encoded words (680 KB) took 2 s, of 100,000 12 s. Past 16 KB the field stays as sent."""
    words = "=?utf-8?B?w6k=?= " * 40_000
    elapsed, verdict = _timed_scan(_content(f"Subject: {words}\r\n", "x"))
    assert elapsed < 1.0
    subject = parse(_content(f"Subject: {words}\r\n", "x")).subject
    assert subject.startswith("\u00e9" * 900) and subject.endswith(" =?utf-8?B?w6k=?=")
    assert parse(_content("Subject: =?utf-8?Q?caf=C3=A9?= ok\r\n", "x")).subject == "caf\u00e9 ok"


def test_a_content_type_of_many_parameters_is_read_in_linear_time(dns_server):
    """The stdlib's parameter parser copies the rest of the field once per ';': a
    Content-Type of 100,000 parameters (500 KB) cost 4 s, once per parameter asked."""
    params = "; a=b" * 100_000
    elapsed, verdict = _timed_scan(
        _content(f"Subject: t\r\nContent-Type: text/plain; charset=koi8-r{params}\r\n", "x")
    )
    assert elapsed < 1.0
    assert parse(
        _content(f"Content-Type: text/plain; charset=koi8-r{params}\r\n", "")
    ).charsets == {"koi8-r"}


def test_a_message_of_thousands_of_header_names_gets_a_bounded_verdict(spec_dns):
    """One X_HDR_ tag a header name: 5,000 made-up names gave 5,000 tags, carried by the
    verdict, the classify answer and the quarantine. The first 100 names are tagged."""
    made_up = b"".join(b"X-Made-Up-%d: x\n" % n for n in range(5000))
    verdict = spec_scan(message=made_up + SPEC_MESSAGE)
    header_tags = [tag for tag in verdict.tags if tag.startswith("X_HDR_")]
    assert header_tags == [f"X_HDR_X_MADE_UP_{n}" for n in range(100)]
    assert verdict.score == pytest.approx(12.70)  # the names score nothing


# --- SMTPUTF8 mail (RFC 6532 headers, RFC 8616 domains) ----------------------------------

IDN = "xn--e1afmkfd.xn--p1ai"  # пример.рф
IDN_MESSAGE = (
    "From: Джо <joe@пример.рф>\r\nTo: jane@example.org\r\nSubject: Привет =?utf-8?q?caf=C3=A9?=\r\n"
    "Date: Mon, 30 Nov 2026 10:00:00 +0000\r\nMessage-ID: <1@пример.рф>\r\n\r\nЗдравствуйте\r\n"
).encode()


@pytest.fixture
def idn_dns(dns_server):
    dns_server.set_zone(IDN, {"TXT": ["v=spf1 ip4:192.0.2.10 -all"], "A": ["192.0.2.10"]})
    dns_server.set_zone(f"_dmarc.{IDN}", {"TXT": ["v=DMARC1; p=reject"]})
    return dns_server


def _idn_scan(ip: str):
    return scan(
        message=IDN_MESSAGE,
        remote_ip=ip,
        ehlo_domain=IDN,
        env_from="joe@пример.рф",
        env_rcpt_to=["jane@example.org"],
    )


def test_utf8_headers_are_read_as_utf8_and_other_8bit_stays_unreadable():
    parsed = parse(IDN_MESSAGE + b"")
    assert parsed.from_address.address == "joe@пример.рф"
    assert parsed.from_address.name == "Джо"
    assert parsed.subject == "Привет café"  # an encoded word beside raw UTF-8 too
    latin1 = parse(b"Subject: caf\xe9 cr\xe8me\r\n\r\nx\r\n")
    assert latin1.subject == "caf\ufffd cr\ufffdme"  # not UTF-8: as the parser gives it


def test_an_internationalised_from_domain_is_judged_by_its_dmarc_record(idn_dns):
    verdict = _idn_scan("192.0.2.10")
    assert verdict.auth.spf.result == "pass"
    assert (verdict.auth.dmarc.result, verdict.auth.dmarc.domain) == ("pass", IDN)
    assert f"dmarc=pass header.from={IDN}" in verdict.authentication_results
    assert "DMARC_POLICY_ALLOW" in verdict.tags


def test_spoofing_an_internationalised_domain_meets_its_reject_policy(idn_dns):
    verdict = _idn_scan("198.51.100.7")
    assert verdict.auth.spf.result == "fail"
    assert (verdict.auth.dmarc.result, verdict.auth.dmarc.policy) == ("fail", "reject")
    assert "DMARC_POLICY_REJECT" in verdict.tags


# --- addresses behind encoded words ---------------------------------------------------------


@pytest.mark.parametrize(
    "display",
    [
        "=?utf-8?q?x=40evil.example_=3C?=",  # decodes to `x@evil.example <`
        '"=?utf-8?q?x=40evil.example?="',  # an encoded word in a quoted string
        "=?utf-8?b?eEBldmlsLmV4YW1wbGU=?=",  # base64 of `x@evil.example`
    ],
)
def test_an_address_spelt_in_an_encoded_word_is_no_from_address(dns_server, display):
    """An encoded word is text in a display name (RFC 2047 section 5), never an address: a
    mail program shows this message as from ceo@bank.example, so DMARC must judge that
    domain's policy. Reading the addresses after decoding took the attacker's aligned,
    passing domain inside the encoded word for the author, and p=reject never applied."""
    dns_server.set_zone("bank.example", {"TXT": ["v=spf1 ip4:192.0.2.10 -all"]})
    dns_server.set_zone("_dmarc.bank.example", {"TXT": ["v=DMARC1; p=reject"]})
    dns_server.set_zone("evil.example", {"TXT": ["v=spf1 ip4:198.51.100.7 -all"]})
    dns_server.set_zone("_dmarc.evil.example", {"TXT": ["v=DMARC1; p=none"]})
    message = (
        f"From: {display} <ceo@bank.example>\r\nTo: jane@example.org\r\nSubject: Invoice\r\n"
        "Date: Mon, 30 Nov 2026 10:00:00 +0000\r\nMessage-ID: <1@evil.example>\r\n\r\nPay.\r\n"
    ).encode()
    parsed = parse(message)
    assert parsed.from_address.address == "ceo@bank.example"
    assert "x@evil.example" in parsed.from_address.name
    verdict = scan(
        message=message,
        remote_ip="198.51.100.7",
        ehlo_domain="mail.evil.example",
        env_from="x@evil.example",
        env_rcpt_to=["jane@example.org"],
    )
    assert verdict.auth.spf.result == "pass"  # for evil.example: not aligned with From
    assert (verdict.auth.dmarc.result, verdict.auth.dmarc.domain) == ("fail", "bank.example")
    assert verdict.auth.dmarc.policy == "reject"
    assert "DMARC_POLICY_REJECT" in verdict.tags
    assert "FROM_DN_HAS_ADDR" in verdict.tags  # the display name holds an address


# --- DMARC of a From naming several authors (RFC 7489 6.6.1) ------------------------------


@pytest.fixture
def authors_dns(dns_server):
    dns_server.set_zone("own.test", {"TXT": ["v=spf1 ip4:192.0.2.10 -all"]})
    dns_server.set_zone("_dmarc.own.test", {"TXT": ["v=DMARC1; p=none"]})
    dns_server.set_zone("_dmarc.bank.test", {"TXT": ["v=DMARC1; p=reject"]})
    dns_server.set_zone("_dmarc.shop.test", {"TXT": ["v=DMARC1; p=quarantine"]})
    return dns_server


def _authors_scan(from_fields: str):
    return scan(
        message=f"{from_fields}To: a@b.test\r\nSubject: x\r\n\r\nhi\r\n".encode(),
        remote_ip="192.0.2.10",
        ehlo_domain="mx.own.test",
        env_from="me@own.test",
        env_rcpt_to=["a@b.test"],
    )


@pytest.mark.parametrize(
    "from_fields",
    [
        "From: me@own.test, CEO <ceo@bank.test>, sales@shop.test\r\n",
        "From: me@own.test\r\nFrom: sales@shop.test\r\nFrom: CEO <ceo@bank.test>\r\n",
    ],
)
def test_every_author_domain_is_judged_and_the_strictest_failure_applies(authors_dns, from_fields):
    """RFC 7489 6.6.1: each domain of a From naming several authors is checked, and the
    strictest policy among those that fail applies. Only the first was: the sender's own
    domain passed, and a reader saw the bank's address beside it, its p=reject unmet."""
    verdict = _authors_scan(from_fields)
    dmarc = verdict.auth.dmarc
    assert (dmarc.result, dmarc.domain, dmarc.policy) == ("fail", "bank.test", "reject")
    assert "DMARC_POLICY_REJECT" in verdict.tags
    assert "\tdmarc=fail header.from=bank.test policy.dmarc=reject" in (
        verdict.authentication_results
    )


def test_each_author_domain_has_its_own_dmarc_result(authors_dns):
    """RFC 8601 2.7 / RFC 7489 7.2: one result per identifier, so that the header (and
    each domain's aggregate report) says what DMARC found for every author domain, not
    only for the one whose policy applied."""
    verdict = _authors_scan("From: me@own.test, CEO <ceo@bank.test>, sales@shop.test\r\n")
    each = [(r.domain, r.result, r.policy) for r in verdict.auth.dmarc_each]
    assert each == [
        ("own.test", "pass", "none"),
        ("bank.test", "fail", "reject"),
        ("shop.test", "fail", "quarantine"),
    ]
    header = verdict.authentication_results
    assert header.endswith(
        "\tdmarc=pass header.from=own.test policy.dmarc=none;\r\n"
        "\tdmarc=fail header.from=bank.test policy.dmarc=reject;\r\n"
        "\tdmarc=fail header.from=shop.test policy.dmarc=quarantine"
    )
    single = _authors_scan("From: me@own.test\r\n")
    assert [r.domain for r in single.auth.dmarc_each] == ["own.test"]
    assert single.authentication_results.count("\tdmarc=") == 1


def test_authors_of_one_domain_or_without_failures_are_judged_as_before(authors_dns):
    verdict = _authors_scan("From: me@own.test, you@Own.test, nobody@norecord.test\r\n")
    assert (verdict.auth.dmarc.result, verdict.auth.dmarc.domain) == ("pass", "own.test")


def test_a_from_of_more_authors_than_are_judged_is_a_dmarc_permerror(authors_dns):
    authors = ", ".join(f"a@d{i}.own{i}.test" for i in range(10))
    verdict = _authors_scan(f"From: {authors}, ceo@bank.test\r\n")
    assert verdict.auth.dmarc.result == "permerror"
    assert "DMARC_BAD_POLICY" in verdict.tags
