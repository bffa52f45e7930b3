"""Bayes: tokens, the minimum before it votes, per-account models, and learning from half
of the shared corpus to tell the other half apart, in the database and in Redis."""

from __future__ import annotations

import base64
import os
import statistics
import time
from pathlib import Path

import pytest

from apps.spamfilter import bayes
from apps.spamfilter.message import parse
from apps.spamfilter.services import scan
from tests.conftest import CORPUS_DIR, skip_or_fail

pytestmark = pytest.mark.django_db


def corpus_halves() -> tuple[list[Path], list[Path], list[Path], list[Path]]:
    """Every other message (sorted by path) to learn from, the rest to test: deterministic."""
    folders = CORPUS_DIR / "messages"
    spam = sorted(p for p in (folders / "spam").rglob("*") if p.is_file())
    ham = sorted(p for p in (folders / "ham").rglob("*") if p.is_file())
    if not spam or not ham:
        skip_or_fail(f"no corpus messages under {folders} (set MAILADMIN_CORPUS_DIR)")
    return spam[::2], ham[::2], spam[1::2], ham[1::2]


@pytest.fixture(params=["database", "redis"])
def store(request, settings):
    if request.param == "redis":
        url = os.environ.get("REDIS_URL")
        if not url:
            skip_or_fail("REDIS_URL is not set")
        settings.REDIS_URL = url
    else:
        settings.REDIS_URL = ""
    for scope in (bayes.GLOBAL, bayes.account_scope(1), bayes.account_scope(2)):
        bayes.purge(scope)
    yield request.param
    for scope in (bayes.GLOBAL, bayes.account_scope(1), bayes.account_scope(2)):
        bayes.purge(scope)


def test_it_tokenizes_headers_text_html_and_links():
    message = parse(
        b"From: Shop <deals@shop.example>\r\nSubject: Cheap watches\r\n"
        b"Content-Type: text/html; charset=utf-8\r\n\r\n"
        b'<p>Replica <b>watches</b> &amp; more</p><a href="http://www.buy.example/x">here</a>'
    )
    tokens = bayes.tokens(message)
    assert {"subject:cheap", "subject:watches", "replica", "watches", "more"} <= set(tokens)
    assert {"url:www.buy.example", "url-domain:buy.example", "from-domain:shop.example"} <= set(
        tokens
    )
    assert "shape:html-only" in tokens
    assert len(tokens) == len(set(tokens))


def test_it_tokenizes_links_that_name_no_host_by_their_shape():
    message = parse(
        b"Subject: statement\r\n\r\nLog in at http://www.bank.example@evil.example/login or "
        b"http://198.51.100.7/blah or http://www.bank.example/help\r\n"
    )
    tokens = set(bayes.tokens(message))
    assert {"url-shape:userinfo", "url-shape:ip", "url:www.bank.example"} <= tokens
    named = parse(b"Subject: statement\r\n\r\nSee http://www.bank.example/help\r\n")
    assert not any(t.startswith("url-shape:") for t in bayes.tokens(named))


def test_it_reads_chinese_and_japanese_as_pairs_of_characters():
    subject = base64.b64encode("免費試用".encode()).decode()
    message = parse(
        f"From: a@example.org\r\nSubject: =?utf-8?b?{subject}?=\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        "Hello 中文郵件 world 的 カタカナ\r\n".encode()
    )
    tokens = bayes.tokens(message)
    assert {"subject:免費", "subject:費試", "subject:試用"} <= set(tokens)
    assert {"中文", "文郵", "郵件", "的", "カタ", "タカ", "カナ", "hello", "world"} <= set(tokens)
    assert "中文郵件" not in tokens and not any(t.startswith("long:") for t in tokens)


def test_it_keeps_words_of_spaced_scripts_whole():
    message = parse(
        "Subject: x\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        "Привет мир, 안녕하세요 친구\r\n".encode()
    )
    assert {"привет", "мир", "안녕하세요"} <= set(bayes.tokens(message))


def test_it_does_not_vote_before_it_has_learned_enough(store, settings):
    settings.MAILADMIN_SPAM_BAYES_MIN_LEARNS = 3
    spam = parse(b"Subject: win money now\r\n\r\nwin money now cheap pills")
    for _ in range(3):
        bayes.learn(spam, spam=True, scope=bayes.GLOBAL)
    for _ in range(2):
        bayes.learn(parse(b"Subject: lunch\r\n\r\nlunch friday"), spam=False, scope=bayes.GLOBAL)
    assert bayes.classify(spam).probability is None
    bayes.learn(parse(b"Subject: minutes\r\n\r\nmeeting notes"), spam=False, scope=bayes.GLOBAL)
    verdict = bayes.classify(spam)
    assert verdict.probability > 0.9
    assert (verdict.spam_learned, verdict.ham_learned) == (3, 3)


def test_it_prefers_an_accounts_model_once_it_is_ready(store, settings, monkeypatch):
    settings.MAILADMIN_SPAM_BAYES_MIN_LEARNS = 1
    monkeypatch.setattr(bayes, "MIN_COUNT", 1)  # one message a model here
    newsletter = parse(b"Subject: weekly knitting digest\r\n\r\nknitting patterns wool")
    lunch = parse(b"Subject: lunch\r\n\r\nlunch friday")
    bayes.learn(newsletter, spam=True, scope=bayes.GLOBAL)
    bayes.learn(lunch, spam=False, scope=bayes.GLOBAL)
    # Account 1 likes knitting; account 2 has no model of its own yet.
    bayes.learn(newsletter, spam=False, scope=bayes.account_scope(1))
    bayes.learn(parse(b"Subject: buy\r\n\r\ncheap pills"), spam=True, scope=bayes.account_scope(1))
    mine = bayes.classify(newsletter, account_id=1)
    assert (mine.scope, mine.probability < 0.5) == ("account:1", True)
    other = bayes.classify(newsletter, account_id=2)
    assert (other.scope, other.probability > 0.5) == ("global", True)


def test_a_token_from_one_message_alone_is_no_clue(store, settings):
    settings.MAILADMIN_SPAM_BAYES_MIN_LEARNS = 2
    for _ in range(2):
        bayes.learn(parse(b"Subject: pills\r\n\r\ncheap pills"), spam=True, scope=bayes.GLOBAL)
        bayes.learn(parse(b"Subject: lunch\r\n\r\nlunch friday"), spam=False, scope=bayes.GLOBAL)
    bayes.learn(parse(b"Subject: x\r\n\r\nzanzibar"), spam=True, scope=bayes.GLOBAL)
    assert bayes.classify(parse(b"Subject: x\r\n\r\nzanzibar")).clues == 0
    assert bayes.classify(parse(b"Subject: x\r\n\r\ncheap pills")).probability > 0.9


def test_two_tokens_sharing_a_digest_count_once(store):
    """A crafted 64-bit collision inside one message: PostgreSQL's upsert refused to touch
    the row twice, and training (or a quarantine release, which trains ham) answered 500."""
    same = bayes.digests(["cheap"])[0]
    models = bayes.store()
    models.learn(bayes.GLOBAL, [same, same, bayes.digests(["pills"])[0]], spam=True)
    assert models.counts(bayes.GLOBAL, [same]) == [(1, 0)]
    assert models.learned(bayes.GLOBAL) == (1, 0)


def test_it_tokenizes_where_a_message_came_from_and_how_it_is_built():
    message = parse(
        b"Received: from mx.example.org (localhost [127.0.0.1])\r\n\tby mail.example.org\r\n"
        b"Received: from relay.sender.example (out7.mailer.sender.example [81.2.69.142])\r\n"
        b"\tby mx.example.org (Postfix) with ESMTP id 1A2B\r\n"
        b"Message-ID: <20021010.AB12$x@mta3.sender.example>\r\n"
        b"Date: Thu, 10 Oct 2002 08:12:00 -0500\r\n"
        b"Subject: Cheap watches today\r\n"
        b'Content-Type: multipart/alternative; boundary="b1"\r\n\r\n'
        b"--b1\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n"
        b"\r\nhi\r\n--b1\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n"
        b"\r\nPGI+aGk8L2I+\r\n--b1--\r\n"
    )
    tokens = set(bayes.tokens(message))
    # The sending side of each public hop, never the receiving side nor loopback hops.
    assert {
        "rcvd-helo:sender.example",
        "rcvd-rdns:sender.example",
        "rcvd-ip:81.2",
        "rcvd-ip:81.2.69",
    } <= tokens
    assert not {"rcvd-helo:example.org", "rcvd-ip:127.0", "rcvd-ip:127.0.0"} & tokens
    assert {"mid-domain:sender.example", "mid-shape:9.A9$a", "date-zone:-0500"} <= tokens
    assert "date-wkday:yes" in tokens
    assert {"mime:multipart/alternative", "mime:text/plain", "mime:text/html"} <= tokens
    assert {"cte:quoted-printable", "cte:base64", "parts:2"} <= tokens
    assert {"subject:cheap", "subject:cheap watches", "subject:watches today"} <= tokens
    assert "mid:none" in bayes.tokens(parse(b"Subject: hi\r\n\r\nhi"))
    # Bytes the headers do not account for: 8-bit text with no charset, sent as 7bit.
    shapes = {"charset:undeclared-8bit", "cte:7bit-with-8bit"}
    assert not shapes & tokens
    unlabelled = parse("Subject: hi\r\nContent-Type: text/plain\r\n\r\nÇok güzel".encode("cp1254"))
    assert shapes <= set(bayes.tokens(unlabelled))


def test_it_tells_held_out_spam_from_ham_after_learning_half_the_corpus(store, dns_server):
    train_spam, train_ham, test_spam, test_ham = corpus_halves()
    for path in train_spam:
        bayes.learn(parse(path.read_bytes()), spam=True, scope=bayes.GLOBAL)
    for path in train_ham:
        bayes.learn(parse(path.read_bytes()), spam=False, scope=bayes.GLOBAL)
    assert bayes.learned(bayes.GLOBAL) == (len(train_spam), len(train_ham))

    spam_p = [bayes.classify(parse(p.read_bytes())).probability for p in test_spam]
    ham_p = [bayes.classify(parse(p.read_bytes())).probability for p in test_ham]
    recall = sum(p >= 0.6 for p in spam_p) / len(spam_p)
    false_positives = sum(p >= 0.6 for p in ham_p) / len(ham_p)
    # 130 spam messages are little to learn from. With what mailing lists add left out
    # (some spam came through the same lists as the ham), Bayes alone at 0.6 catches 118
    # of the 130 held-out spam and 7 of the 141 ham (114 and 5 before the Received, Message-ID,
    # Date and MIME tokens and the minimum count of two); the rules add the rest
    # (bench/spamfilter.py).
    assert statistics.median(spam_p) > 0.8 > 0.1 > statistics.median(ham_p)
    assert recall >= 0.8, recall
    assert false_positives <= 0.05, false_positives

    # And in the whole scan: held-out spam scores above held-out ham.
    def score(path: Path) -> float:
        return scan(
            message=path.read_bytes(), remote_ip="", ehlo_domain="", env_from="", env_rcpt_to=[]
        ).score

    spam_scores = [score(p) for p in test_spam[:40]]
    ham_scores = [score(p) for p in test_ham[:40]]
    assert statistics.median(spam_scores) > statistics.median(ham_scores) + 3


LIST_HEAD = (
    b"List-Id: Knitting talk <knit.lists.example>\r\n"
    b"List-Unsubscribe: <https://lists.example/mailman/listinfo/knit>\r\n"
    b"List-Post: <mailto:knit@lists.example>\r\nX-Mailman-Version: 2.0.1\r\n"
    b"Precedence: bulk\r\nSender: knit-admin@lists.example\r\n"
    b"Return-Path: <knit-admin@lists.example>\r\n"
)
LIST_FOOTER = (
    b"\r\n_______________________________________________\r\n"
    b"Knit mailing list\r\nknit@lists.example\r\n"
    b"https://lists.example/mailman/listinfo/knit\r\n"
)


def list_message(subject: bytes, body: bytes) -> bytes:
    return LIST_HEAD + b"Subject: [Knit] " + subject + b"\r\n\r\n" + body + LIST_FOOTER


def test_it_leaves_out_what_a_mailing_list_adds():
    message = parse(list_message(b"Cable needles", b"Which cable needles do you use?\r\n"))
    tokens = set(bayes.tokens(message))
    assert {"subject:cable", "subject:needles", "cable needles"} <= tokens
    assert not [t for t in tokens if t.startswith(("header:list-", "return-path:"))]
    assert {"header:x-mailman-version", "header:precedence", "header:sender"}.isdisjoint(tokens)
    assert {"subject:knit", "listinfo", "mailing", "knit mailing"}.isdisjoint(tokens)
    assert not [t for t in tokens if t.startswith("url")]  # the footer's link to the list
    # Outside a list, the subject tag and the words are the message's own (list headers'
    # names never are: a list's ham and the spam it relays share them).
    plain = parse(b"Subject: [Knit] Cable needles\r\nPrecedence: bulk\r\n\r\nknit mailing list\r\n")
    assert {"subject:knit", "knit mailing"} <= set(bayes.tokens(plain))
    assert "header:precedence" not in bayes.tokens(plain)


def test_it_leaves_out_what_the_receiving_side_writes_on_a_message():
    """Mailbox stores, mail readers and scanners annotate a kept copy; mail at the MX has
    none of it, so a learned copy's annotations would only tell whose mailbox it was in."""
    plain = b"From: a@example.org\r\nSubject: Hello\r\nX-Mailer: Mutt\r\n\r\nHi there\r\n"
    annotated = (
        b"Delivery-Date: Tue, 10 Feb 2004 18:18:49 +0000\r\nStatus: RO\r\nX-Status: A\r\n"
        b"X-Keywords: NonJunk\r\nX-UID: 42\r\nLines: 1\r\nContent-Length: 10\r\n"
        b"Envelope-To: me@example.net\r\nX-Spam-Status: No, hits=-2.6\r\n"
        b"X-Virus-Scanned: by amavisd-new\r\nX-Mozilla-Status: 0001\r\n" + plain
    )
    assert bayes.tokens(parse(annotated)) == bayes.tokens(parse(plain))
    assert "header:x-mailer" in bayes.tokens(parse(plain))  # a sender's own header counts


def test_it_cuts_a_list_footer_but_keeps_a_signature():
    text = (
        "Use bamboo ones.\n-- \nAnn\n\n----------------\nThis list is sponsored by Yarn Co\n"
        "_______________\nKnit mailing list\nlistinfo/knit\n"
    )
    assert bayes.without_list_footer(text).rstrip() == "Use bamboo ones.\n-- \nAnn"
    signed = "Use bamboo ones.\n-- \nAnn, who knits\n"
    assert bayes.without_list_footer(signed) == signed


def test_it_tokenizes_the_content_type_not_its_boundary_and_html_by_tag():
    message = parse(
        b'Subject: Hi\r\nContent-Type: multipart/alternative; boundary="----=_NextPart_0a1"\r\n'
        b"\r\n------=_NextPart_0a1\r\nContent-Type: text/html\r\n\r\n"
        b'<font size="5" color="red">BIG</font> <a href="http://x.example/Buy/Now">go</a>\r\n'
        b"------=_NextPart_0a1--\r\n"
    )
    tokens = set(bayes.tokens(message))
    assert "content-type:multipart/alternative" in tokens
    assert not [t for t in tokens if "nextpart" in t.lower()]
    assert {"html:font", "html:font.size", "html:font.color", "html:a"} <= tokens
    assert {"url-path:buy", "url-path:now"} <= tokens


def test_a_message_of_list_boilerplate_only_gets_no_vote(store, settings):
    """Ham came through a list, spam did not: a message that is nothing but the list's
    headers and footer must not look like ham for it."""
    settings.MAILADMIN_SPAM_BAYES_MIN_LEARNS = 5
    topics = [b"cable needles", b"sock yarn", b"lace charts", b"blocking wires", b"row counters"]
    for topic in topics:
        body = b"Has anyone tried " + topic + b" from the shop in town? Thanks, Ann\r\n"
        bayes.learn(parse(list_message(topic, body)), spam=False, scope=bayes.GLOBAL)
    for offer in [b"cheap pills", b"free casino", b"hot stocks", b"loan approval", b"replica"]:
        raw = b"Return-Path: <a@b.example>\r\nSubject: %s\r\n\r\nBuy %s now, click here!\r\n" % (
            offer,
            offer,
        )
        bayes.learn(parse(raw), spam=True, scope=bayes.GLOBAL)
    boilerplate = bayes.classify(parse(list_message(b"", b"")))
    assert boilerplate.clues == 0
    assert bayes.vote(boilerplate.probability) is None
    # What the list members write still counts.
    own = bayes.classify(parse(list_message(b"sock yarn", b"Has anyone tried sock yarn?")))
    assert bayes.vote(own.probability)[0] == "BAYES_HAM"


def test_its_vote_grows_with_certainty():
    assert bayes.vote(0.5) is None and bayes.vote(0.45) is None
    spam = [bayes.vote(p)[1] for p in (0.6, 0.8, 0.9, 0.95, 0.99)]
    assert spam == sorted(spam) and spam[-1] == 1.0
    assert 0.6 < bayes.vote(0.9)[1] < 0.7  # an order of magnitude out of two
    assert bayes.vote(0.9999) == ("BAYES_SPAM", 1.0)
    assert bayes.vote(0.3) == ("BAYES_HAM", pytest.approx(0.2 / 0.45))
    assert bayes.vote(0.01) == ("BAYES_HAM", 1.0)


def test_a_long_message_id_or_date_is_tokenised_in_linear_time():
    """The Message-ID and Date patterns were searched from every '<' or zone-like word
    and ran to the end of the field from each: a Message-ID of 50,000 '<' took 12 s to
    tokenise, a Date of 100,000 'ABC (' 20 s."""
    head = b"From: a@example.org\r\nSubject: t\r\n"
    for field in (b"Message-ID: " + b"<" * 50_000, b"Date: " + b"ABC (" * 100_000):
        message = parse(head + field + b"\r\n\r\nx\r\n")
        started = time.monotonic()
        found = bayes.tokens(message)
        assert time.monotonic() - started < 1.0, field[:10]
    assert "mid:invalid" in found or "date-zone:none" in found
    usual = parse(
        head + b"Message-ID: <a1@mail.example.org>\r\nDate: Mon, 1 Jan 2024 1:00 +0100\r\n"
    )
    assert {"mid-domain:example.org", "mid-shape:a9", "date-zone:+0100"} <= set(bayes.tokens(usual))


def test_a_text_of_many_footers_is_cut_in_linear_time():
    """Each footer cut copied the lines kept: a list message's part of 40,000 separator
    and footer-word pairs took 3.7 s to cut (each part of a list message is cut)."""
    text = "Hello\n" + "--\nlistinfo\n" * 40_000
    started = time.monotonic()
    assert bayes.without_list_footer(text) == "Hello"
    assert time.monotonic() - started < 0.5
    signed = "Hello\n-- \nJane\n"
    assert bayes.without_list_footer(signed) is signed
