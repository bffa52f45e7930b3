"""Bayes: a tokenizer, token counts per model (global, or one per account), and Robinson's
chi-squared combining (as SpamBayes does) into a spam probability.

Models live in Redis when REDIS_URL is set (one hash per model: HINCRBY on learn, one
HMGET per classification) and in the database otherwise (upserts that add to the counts
in one statement, on SQLite and PostgreSQL alike). Tokens are stored as 64-bit hashes.
"""

from __future__ import annotations

import hashlib
import ipaddress
import itertools
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache

from django.conf import settings
from django.db import connection, transaction

from apps.spamfilter.auth import organizational_domain
from apps.spamfilter.message import ParsedMessage, url_host

GLOBAL = "global"
MAX_TOKENS = 5000
MAX_CLUES = 150
MIN_DISTANCE = 0.05  # a token whose probability is this close to 0.5 says nothing
MIN_COUNT = 2  # a token learned from one message alone is no clue (mostly chance)
UNKNOWN_STRENGTH, UNKNOWN_PROBABILITY = 0.45, 0.5
SPAM_FROM, SPAM_FULL = 0.5, 0.99  # BAYES_SPAM: none at or below 0.5, all of it from 0.99
HAM_FROM = 0.4  # BAYES_HAM: from 0.4 down, all of it at 0.05
WORD = re.compile(r"[^\W_][\w'$€£.-]*[^\W_]|[^\W_]", re.UNICODE)
# Chinese and Japanese write words without spaces between them: a run of Han or kana is
# read as its overlapping character pairs (as SpamAssassin's and rspamd's CJK tokenizers
# do without a dictionary), not as one "word" of a whole sentence. Hangul is spaced.
CJK = re.compile(
    "[\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f]+"
)
SUBJECT_HEADERS = ("Subject",)
TOKEN_HEADERS = ("From", "Reply-To", "X-Mailer", "User-Agent", "Return-Path")


ACCOUNT_SCOPE = "account:"


def account_scope(account_id: int) -> str:
    return f"{ACCOUNT_SCOPE}{account_id}"


# --- tokens ----------------------------------------------------------------------------

# What a mailing list adds to every message it relays, spam and ham alike: its headers, its
# bounce address, its subject tag and its footer. Learned as evidence they say "mailing
# list", not "ham": a spam relayed by a list would look like the list's ham.
LIST_MARKERS = ("List-Id", "List-Post", "List-Unsubscribe", "Mailing-List", "X-Mailman-Version")
LIST_HEADER = re.compile(
    r"^(?:list-|x-mailman|x-beenthere|x-list|mailing-list$|x-loop$|errors-to$|precedence$"
    r"|sender$|x-original-|x-yahoo|x-egroups|delivered-to$)",
    re.IGNORECASE,
)
# What the receiving side writes on a message after it arrives (mailbox stores, POP and
# IMAP clients, mail readers) and what spam and virus scanners stamp on it. Mail at our MX
# carries none of it (or only what its sender forged), so as evidence it tells whose
# mailbox a learned copy was kept in, not what the mail is: SpamAssassin's Bayes ignores
# the same fields (IGNORED_HDRS). Neither their names nor their values are tokens.
RECEIVER_HEADER = re.compile(
    r"^(?:(?:x-)?status|x-keywords|x-flags|x-uidl?|x-imapbase|lines|content-length|replied"
    r"|forwarded|xref|delivery-date|(?:x-)?envelope-to|x-bogosity|x-mass-check-id"
    r"|x-scanned-by|x-scanner|x-filtered-by)$"
    r"|^(?:x-gnus-|x-vm-|x-mozilla-status|x-evolution|x-spam|x-virus-|x-mailscanner"
    r"|x-antispam|x-pyzor|x-dcc-)",
    re.IGNORECASE,
)
SUBJECT_TAG = re.compile(r"^\s*(?:(?:re|fwd?|aw)\s*:\s*)*\[[^\]]{1,40}\]\s*", re.IGNORECASE)
# A footer starts at a separator line: "-- ", a row of -, _, = or ~ (Mailman, Yahoo! Groups,
# SourceForge), within the last FOOTER_LINES lines of a text part.
FOOTER_SEPARATOR = re.compile(r"^(?:-- ?|[-_=~]{10,}.*|.{0,30}[-_=~]{10,})\s*$")
FOOTER_WORDS = re.compile(
    r"listinfo|mailing list|unsubscri|\(un\)subscri|list maintainer|groups sponsor"
    r"|your use of yahoo|sponsored by",
    re.IGNORECASE,
)
FOOTER_LINES = 40
HTML_TAG = re.compile(r"<([a-z][a-z0-9]{0,9})\b([^>]{0,300})>", re.IGNORECASE)
HTML_ATTRIBUTE = re.compile(
    r"\b(bgcolor|color|size|face|align|width|style|class)\s*=", re.IGNORECASE
)
MONEY = re.compile(r"[$€£]\s?(\d[\d,]*)")
PUNCT_RUN = re.compile(r"[!?$%*]{2,}")
URL_PATH_WORD = re.compile(r"[a-z][a-z0-9]{2,23}", re.IGNORECASE)
# "from HELO (rDNS [IP])" of a Received header: the sending side of that hop.
RECEIVED_FROM = re.compile(r"^\s*from\s+(\S+)(?:\s+\(([^)]{0,300})\))?", re.IGNORECASE)
IPV4 = re.compile(r"\b(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\b")
HOST_NAME = re.compile(r"[a-z0-9-]+(?:\.[a-z0-9-]+)+\.[a-z]{2,}")
MAX_HOPS = 10
MESSAGE_ID = re.compile(r"<([^@>]*)@([^>]*)>")
DATE_ZONE = re.compile(r"([+-]\d{4}|\b[A-Z]{3}\b)\s*(?:\(.*\))?$")
DATE_WEEKDAY = re.compile(r"\s*[A-Za-z]{3},")
# Characters of the Message-ID (its start) and Date (its end) the two patterns above read
# (RFC 5322's line limit): they are searched from every '<', every zone-like word, and
# each ran to the end of the field from there, quadratic on a long one.
MAX_ORIGIN_FIELD = 998


def is_list_message(message: ParsedMessage) -> bool:
    return any(message.has(name) for name in LIST_MARKERS)


def without_list_footer(text: str) -> str:
    """The text without the footers lists append (Mailman's, a sponsor's above it, ...): cut
    at the last separator line among the last lines when the list's boilerplate words
    follow it, again while one does; a signature without such words stays."""
    lines = text.rstrip().splitlines()
    end, cut = len(lines), True  # lines[:end] are kept (not copied at each cut: quadratic)
    while cut:
        cut = False
        for index in range(end - 1, max(-1, end - 1 - FOOTER_LINES), -1):
            if FOOTER_SEPARATOR.match(lines[index]) and FOOTER_WORDS.search(
                "\n".join(lines[index + 1 : end])
            ):
                end, cut = index, True
                break
    return text if end == len(lines) else "\n".join(lines[:end])


def list_hosts(message: ParsedMessage) -> set[str]:
    """The hosts of the links in the List-* headers (the list's own server)."""
    hosts = set()
    for name, value in message.headers:
        if name.lower().startswith("list-"):
            hosts.update(url_host(u) for u in re.findall(r"https?://[^\s<>,]+", value))
    return hosts - {""}


# A word as found -> its token ("" when it makes none): the same words recur message after
# message, and a dict look-up is cheaper than lower/strip/len/isdigit. Emptied when full.
_word_tokens: dict[str, str] = {}
WORD_CACHE_SIZE = 200_000


def _word_token(word: str) -> str:
    token = word.lower().strip(".'-")
    size = len(token)
    if 3 <= size <= 24:
        return "" if token.isdigit() else token
    return f"long:{token[:4]}" if size > 24 else ""


def _cjk_words(text: str, prefix: str) -> list[str]:
    """The words of a text with Han or kana in it: each run of those as its character
    pairs (a lone character as itself), the text around the runs as usual."""
    found = []
    position = 0
    for match in CJK.finditer(text):
        found.extend(_words(text[position : match.start()], prefix))
        run = match[0]
        if len(run) == 1:
            found.append(f"{prefix}{run}")
        else:
            found.extend(f"{prefix}{run[i : i + 2]}" for i in range(len(run) - 1))
        position = match.end()
    found.extend(_words(text[position:], prefix))
    return found


def _words(text: str, prefix: str = "") -> list[str]:
    if CJK.search(text):  # one scan of the text; most mail has no Han or kana at all
        return _cjk_words(text, prefix)
    known = _word_tokens
    if len(known) > WORD_CACHE_SIZE:
        known.clear()
    found = []
    for word in WORD.findall(text):
        token = known.get(word)
        if token is None:
            token = known[word] = _word_token(word)
        if token:
            found.append(prefix + token)
    return found


def _words_and_pairs(text: str) -> list[str]:
    """Each word and each pair of neighbouring words ("click here" says more than both):
    w1, w2, "w1 w2", w3, "w2 w3", ..."""
    words = _words(text)
    if len(words) < 2:
        return words
    found: list[str] = [""] * (2 * len(words) - 1)
    found[0::2] = words[:1] + [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]
    found[1::2] = words[1:]
    return found


URL_AUTHORITY = re.compile(r"https?://([^/?#\s]*)", re.IGNORECASE)


def _url_tokens(url: str) -> list[str]:
    host = url_host(url)
    if not host:
        authority = URL_AUTHORITY.match(url)
        if authority is None:
            return []
        shape = "userinfo" if "@" in authority[1] else "ip" if IPV4.search(authority[1]) else ""
        return [f"url-shape:{shape}"] if shape else []
    found = [f"url:{host}", f"url-domain:{organizational_domain(host)}"]
    path = url.lower().split(host, 1)[-1]
    found.extend(f"url-path:{w}" for w in URL_PATH_WORD.findall(path[:200]))
    return found


def _subject_tokens(subject: str) -> list[str]:
    """The subject's words and pairs of neighbouring words."""
    words = _words(subject)
    pairs = [f"subject:{a} {b}" for a, b in zip(words, words[1:], strict=False)]
    return [f"subject:{w}" for w in words] + pairs


def _received_tokens(message: ParsedMessage) -> list[str]:
    """The sending side of each hop (as SpamBayes mines Received headers): the HELO name's
    and the reverse name's organisational domains and the IP's /16 and /24, never the
    receiving side ("by": the recipient's own servers) nor private or loopback hops."""
    found = []
    for value in message.header_all("Received")[:MAX_HOPS]:
        match = RECEIVED_FROM.match(value)
        if match is None:
            continue
        comment = (match[2] or "").lower()
        ips = IPV4.findall(comment) or IPV4.findall(match[1])
        if ips:
            try:
                address = ipaddress.ip_address(".".join(ips[0]))
            except ValueError:
                address = None
            if address is not None and (address.is_private or address.is_loopback):
                continue
        helo = match[1].strip("[]").lower()
        if helo != "localhost" and "." in helo and not IPV4.fullmatch(helo):
            found.append(f"rcvd-helo:{organizational_domain(helo)}")
        name = HOST_NAME.search(comment)
        if name:
            found.append(f"rcvd-rdns:{organizational_domain(name[0])}")
        if ips:
            a, b, c, _ = ips[0]
            found.extend((f"rcvd-ip:{a}.{b}", f"rcvd-ip:{a}.{b}.{c}"))
    return found


def _origin_tokens(message: ParsedMessage) -> list[str]:
    """How the sending program writes its Message-ID (the domain, the shape of the local
    part: digits, letters, punctuation) and its Date (time zone, weekday or not)."""
    value = message.header("Message-ID") or ""
    if not value:
        found = ["mid:none"]
    else:
        match = MESSAGE_ID.search(value[:MAX_ORIGIN_FIELD])
        if match is None:
            found = ["mid:invalid"]
        else:
            domain = match[2].lower()
            shape = re.sub(r"\d+", "9", match[1])
            shape = re.sub(r"[a-z]+", "a", re.sub(r"[A-Z]+", "A", shape))[:20]
            found = [
                "mid-domain:" + (organizational_domain(domain) if "." in domain else "noDot"),
                f"mid-shape:{shape}",
            ]
    date = message.header("Date") or ""
    zone = DATE_ZONE.search(date[-MAX_ORIGIN_FIELD:])
    found.append("date-zone:" + (zone[1] if zone else "none"))
    found.append("date-wkday:" + ("yes" if DATE_WEEKDAY.match(date) else "no"))
    return found


def _mime_tokens(message: ParsedMessage) -> list[str]:
    """The MIME structure: each part's type, each transfer encoding, how many leaf parts."""
    found = [f"mime:{t[:60]}" for t in message.structure]
    found.extend(f"cte:{e}" for e in message.encodings)
    found.append(f"parts:{min(message.part_count, 6)}")
    if message.undeclared_8bit:
        found.append("charset:undeclared-8bit")
    if message.bad_7bit:
        found.append("cte:7bit-with-8bit")
    return found


def _html_tokens(markup: str) -> Iterable[str]:
    """Which tags and presentational attributes the HTML uses (not their values)."""
    for name, attributes in HTML_TAG.findall(markup[:100_000]):
        name = name.lower()
        yield f"html:{name}"
        for attribute in HTML_ATTRIBUTE.findall(attributes):
            yield f"html:{name}.{attribute.lower()}"


def _shape_tokens(message: ParsedMessage, subject: str) -> Iterable[str]:
    """How a message is written rather than what it says: amounts of money by magnitude,
    runs of !?$%*, capitalised words, and who it is addressed to."""
    for run in PUNCT_RUN.findall(subject):
        yield f"subject:{run[:3]}"
    letters = [c for c in subject if c.isalpha()]
    if len(letters) >= 6:
        upper = sum(c.isupper() for c in letters) / len(letters)
        yield f"subject-caps:{round(upper * 4)}"
    text = message.body_text[:100_000]
    for amount in MONEY.findall(text)[:50]:
        yield f"money:{len(amount.replace(',', ''))}"
    for run in PUNCT_RUN.findall(text)[:50]:
        yield f"punct:{run[:3]}"
    words = [w for w in WORD.findall(text[:20_000]) if len(w) >= 3]
    if words:
        caps = sum(w.isupper() for w in words) / len(words)
        yield f"body-caps:{min(4, round(caps * 10))}"
    to = message.addresses("To")
    yield f"to-count:{min(len(to), 5)}"
    if to and not any(a.address for a in to):
        yield "to:no-address"
    sender = message.from_address
    if sender is not None:
        yield "from-name:" + ("none" if not sender.name else "has")


def tokens(message: ParsedMessage) -> list[str]:
    """The message's distinct features, in a stable order."""
    found: dict[str, None] = {}

    def add(items: Iterable[str]) -> None:
        # A group at a time (each is bounded); the first MAX_TOKENS distinct are kept.
        if len(found) < MAX_TOKENS:
            found.update(dict.fromkeys(items))

    listed = is_list_message(message)
    subject = message.subject
    if listed:
        subject = SUBJECT_TAG.sub("", subject)
    add(_subject_tokens(subject))
    for name in TOKEN_HEADERS:
        if listed and name == "Return-Path":
            continue  # the list's bounce address
        value = message.header(name)
        if value:
            add(_words(value, f"{name.lower()}:"))
    content_type = message.header("Content-Type")
    if content_type:  # the type only: a boundary is a random string
        add([f"content-type:{content_type.split(';', 1)[0].strip().lower()[:60]}"])
    sender = message.from_address
    if sender and sender.domain:
        add([f"from-domain:{sender.domain}"])
    add(
        f"header:{name.lower()}"
        for name, _ in message.headers
        if not LIST_HEADER.match(name) and not RECEIVER_HEADER.match(name)
    )
    add([f"received:{min(len(message.header_all('Received')), 8)}"])
    add(_received_tokens(message))
    add(_origin_tokens(message))
    add(_mime_tokens(message))
    add(f"charset:{c}" for c in sorted(message.charsets))
    add(f"attachment:{a.content_type}" for a in message.attachments)
    if message.html_parts and not message.text_parts:
        add(["shape:html-only"])
    for markup in message.html_parts:
        add(_html_tokens(markup))
    own_hosts = list_hosts(message) if listed else set()
    for url in message.urls[:200]:
        if not own_hosts or url_host(url) not in own_hosts:
            add(_url_tokens(url))
    texts = message.text_parts
    if listed:
        texts = [without_list_footer(t[:100_000]) for t in texts]
    for text in texts + message.html_text:
        add(_words_and_pairs(text[:100_000]))
    add(_shape_tokens(message, subject))
    return list(found)[:MAX_TOKENS]


def digests(token_list: Sequence[str]) -> list[bytes]:
    """Each token's 8-byte BLAKE2b digest: the Redis field as it is (big-endian, signed)."""
    blake2b = hashlib.blake2b
    return [blake2b(t.encode(), digest_size=8).digest() for t in token_list]


# --- stores ----------------------------------------------------------------------------


PURGE_BATCH = 500  # scopes per DELETE (a tenant's delete purges all its accounts')


class DatabaseStore:
    def learned(self, scope: str) -> tuple[int, int]:
        from apps.spamfilter.models import BayesModel

        with connection.cursor() as cursor:  # written out: asked once a scan (ORM: ~1 ms)
            cursor.execute(
                f"SELECT spam_learned, ham_learned FROM {BayesModel._meta.db_table} "  # noqa: S608
                "WHERE scope = %s",
                [scope],
            )
            row = cursor.fetchone()
        return (row[0], row[1]) if row else (0, 0)

    def learned_many(self, scopes: list[str]) -> list[tuple[int, int]]:
        from apps.spamfilter.models import BayesModel

        rows = BayesModel.objects.filter(scope__in=scopes)
        rows = rows.values_list("scope", "spam_learned", "ham_learned")
        found = {scope: (spam, ham) for scope, spam, ham in rows}
        return [found.get(s, (0, 0)) for s in scopes]

    def account_scopes(self) -> Iterator[str]:
        """Every account model's scope (learning writes the model row with the tokens), a
        page at a time by primary key: what the caller purges meanwhile is behind it."""
        from apps.spamfilter.models import BayesModel

        last = 0
        while True:
            rows = BayesModel.objects.filter(scope__startswith=ACCOUNT_SCOPE, pk__gt=last)
            page = list(rows.order_by("pk").values_list("pk", "scope")[:2000])
            if not page:
                return
            last = page[-1][0]
            yield from (scope for _, scope in page)

    def counts(self, scope: str, digests: list[bytes]) -> list[tuple[int, int]]:
        from apps.spamfilter.models import BayesToken

        keys = [int.from_bytes(d, "big", signed=True) for d in digests]
        found: dict[int, tuple[int, int]] = {}
        table = BayesToken._meta.db_table
        # One statement per 900 tokens, written out: the ORM's `token__in` prepared each of
        # a message's ~1,000 values one by one, half of a scan's CPU with Bayes in SQLite.
        with connection.cursor() as cursor:
            for start in range(0, len(keys), 900):
                chunk = keys[start : start + 900]
                marks = ", ".join(["%s"] * len(chunk))
                cursor.execute(
                    f"SELECT token, spam, ham FROM {table} "  # noqa: S608 - names are ours
                    f"WHERE scope = %s AND token IN ({marks})",
                    [scope, *chunk],
                )
                found.update((t, (s, h)) for t, s, h in cursor.fetchall())
        return [found.get(k, (0, 0)) for k in keys]

    def learn(self, scope: str, digests: list[bytes], *, spam: bool) -> None:
        from apps.spamfilter.models import BayesModel, BayesToken

        # Once each: two tokens of one message may share a 64-bit digest (a crafted
        # collision), and one upsert may not touch a row twice (PostgreSQL refuses).
        keys = list(dict.fromkeys(int.from_bytes(d, "big", signed=True) for d in digests))
        table = BayesToken._meta.db_table
        model_table = BayesModel._meta.db_table
        spam_n, ham_n = (1, 0) if spam else (0, 1)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {model_table} (scope, spam_learned, ham_learned) "  # noqa: S608
                "VALUES (%s, %s, %s) ON CONFLICT (scope) DO UPDATE SET "
                f"spam_learned = {model_table}.spam_learned + excluded.spam_learned, "
                f"ham_learned = {model_table}.ham_learned + excluded.ham_learned",
                [scope, spam_n, ham_n],
            )
            for start in range(0, len(keys), 2000):  # 8,000 parameters a statement
                chunk = keys[start : start + 2000]
                values = ", ".join(["(%s, %s, %s, %s)"] * len(chunk))
                params: list = []
                for key in chunk:
                    params.extend((scope, key, spam_n, ham_n))
                cursor.execute(
                    f"INSERT INTO {table} (scope, token, spam, ham) VALUES {values} "  # noqa: S608
                    "ON CONFLICT (scope, token) DO UPDATE SET "
                    f"spam = {table}.spam + excluded.spam, ham = {table}.ham + excluded.ham",
                    params,
                )

    def purge(self, scope: str) -> None:
        self.purge_many([scope])

    def purge_many(self, scopes: list[str]) -> None:
        from apps.spamfilter.models import BayesModel, BayesToken

        with transaction.atomic():
            for start in range(0, len(scopes), PURGE_BATCH):
                batch = scopes[start : start + PURGE_BATCH]
                BayesToken.objects.filter(scope__in=batch).delete()
                BayesModel.objects.filter(scope__in=batch).delete()


class RedisStore:
    """One hash per model; each field holds both counts of one token in one integer
    (spam << 32 | ham), so learning is one HINCRBY per token and classifying one HMGET
    field per token."""

    LEARNED = b"#"
    SPAM = 1 << 32

    def __init__(self, url: str) -> None:
        import redis

        self.client = redis.Redis.from_url(url)

    @staticmethod
    def key(scope: str) -> str:
        return f"mailadmin:spamfilter:bayes:{scope}"

    @classmethod
    def _split(cls, value: bytes | None) -> tuple[int, int]:
        packed = int(value or 0)
        return packed >> 32, packed & 0xFFFFFFFF

    def learned(self, scope: str) -> tuple[int, int]:
        return self._split(self.client.hget(self.key(scope), self.LEARNED))

    def learned_many(self, scopes: list[str]) -> list[tuple[int, int]]:
        pipe = self.client.pipeline(transaction=False)
        for scope in scopes:
            pipe.hget(self.key(scope), self.LEARNED)
        return [self._split(v) for v in pipe.execute()] if scopes else []

    def account_scopes(self) -> Iterator[str]:
        """Every account model's scope (SCAN: the keyspace is walked, never blocked)."""
        prefix = self.key(ACCOUNT_SCOPE)
        for name in self.client.scan_iter(match=prefix + "*", count=1000):
            yield name.decode("utf-8", "replace").removeprefix(self.key(""))

    def counts(self, scope: str, digests: list[bytes]) -> list[tuple[int, int]]:
        if not digests:
            return []
        mask, none = 0xFFFFFFFF, (0, 0)
        found = []  # _split inlined: most tokens are unknown to the model
        for value in self.client.hmget(self.key(scope), digests):
            if value is None:
                found.append(none)
            else:
                packed = int(value)
                found.append((packed >> 32, packed & mask))
        return found

    def learn(self, scope: str, digests: list[bytes], *, spam: bool) -> None:
        step = self.SPAM if spam else 1
        pipe = self.client.pipeline(transaction=True)
        name = self.key(scope)
        pipe.hincrby(name, self.LEARNED, step)
        for field in dict.fromkeys(digests):  # once each, as in the database
            pipe.hincrby(name, field, step)
        pipe.execute()

    def purge(self, scope: str) -> None:
        self.purge_many([scope])

    def purge_many(self, scopes: list[str]) -> None:
        for start in range(0, len(scopes), PURGE_BATCH):
            self.client.delete(*(self.key(s) for s in scopes[start : start + PURGE_BATCH]))


@cache
def _redis_store(url: str) -> RedisStore:
    return RedisStore(url)


def store() -> DatabaseStore | RedisStore:
    url = settings.REDIS_URL
    return _redis_store(url) if url else DatabaseStore()


# --- classification --------------------------------------------------------------------


def _chi2q(x2: float, freedom: int) -> float:
    """P(chisq >= x2) with `freedom` (even) degrees of freedom."""
    m = x2 / 2.0
    total = term = math.exp(-m)
    for i in range(1, freedom // 2):
        term *= m / i
        total += term
    return min(total, 1.0)


@dataclass
class BayesVerdict:
    probability: float | None  # None: the model has not learned enough to vote
    scope: str
    spam_learned: int
    ham_learned: int
    clues: int = 0


def probability(
    counts: Iterable[tuple[int, int]], spam_learned: int, ham_learned: int
) -> tuple[float, int]:
    clues = []
    for spam, ham in counts:
        if spam + ham < MIN_COUNT:
            continue
        spam_ratio = spam / spam_learned
        ham_ratio = ham / ham_learned
        p = spam_ratio / (spam_ratio + ham_ratio)
        n = spam + ham
        f = (UNKNOWN_STRENGTH * UNKNOWN_PROBABILITY + n * p) / (UNKNOWN_STRENGTH + n)
        if abs(f - 0.5) >= MIN_DISTANCE:
            clues.append(f)
    if not clues:
        return 0.5, 0
    clues.sort(key=lambda f: -abs(f - 0.5))
    clues = clues[:MAX_CLUES]
    ln_spam = sum(math.log(1.0 - f) for f in clues)
    ln_ham = sum(math.log(f) for f in clues)
    s = 1.0 - _chi2q(-2.0 * ln_spam, 2 * len(clues))
    h = 1.0 - _chi2q(-2.0 * ln_ham, 2 * len(clues))
    return (s - h + 1.0) / 2.0, len(clues)


def _log_odds(p: float) -> float:
    return math.log10(1.0 / max(1e-12, 1.0 - p))


def vote(p: float) -> tuple[str, float] | None:
    """How much of its rule's score Bayes gives: (BAYES_SPAM or BAYES_HAM, 0 to 1).

    Chi-squared combining answers 0.99 or 0.999 for a message it is sure of and about 0.5
    when the evidence conflicts, so the spam side grows with the order of magnitude of
    1 - p (0.5 gives nothing, 0.9 about two thirds, 0.99 all of it), rising faster at
    first than a straight line: a message Bayes leans on adds to the rules that fire on
    it. The ham side is linear from 0.4, full weight at 0.05 and below."""
    if p > SPAM_FROM:
        low, full = _log_odds(SPAM_FROM), _log_odds(SPAM_FULL)
        return "BAYES_SPAM", min(1.0, (_log_odds(p) - low) / (full - low)) ** 0.5
    if p <= HAM_FROM:
        return "BAYES_HAM", min(1.0, (0.5 - p) / 0.45)
    return None


def classify(message: ParsedMessage, *, account_id: int | None = None) -> BayesVerdict:
    """The account's model when it has learned enough, else the global one."""
    backend = store()
    minimum = settings.MAILADMIN_SPAM_BAYES_MIN_LEARNS
    scopes = ([account_scope(account_id)] if account_id else []) + [GLOBAL]
    for scope in scopes:
        spam_learned, ham_learned = backend.learned(scope)
        if spam_learned >= minimum and ham_learned >= minimum:
            keys = digests(tokens(message))
            p, clues = probability(backend.counts(scope, keys), spam_learned, ham_learned)
            return BayesVerdict(p, scope, spam_learned, ham_learned, clues)
    spam_learned, ham_learned = backend.learned(scopes[0])
    return BayesVerdict(None, scopes[0], spam_learned, ham_learned)


def learn(message: ParsedMessage, *, spam: bool, scope: str) -> None:
    store().learn(scope, digests(tokens(message)), spam=spam)


def purge(scope: str) -> None:
    store().purge(scope)


def purge_accounts(account_ids: Iterable[int]) -> None:
    """Forget deleted accounts' models: keyed by a scope string, nothing cascades to them."""
    scopes = [account_scope(account_id) for account_id in account_ids]
    if scopes:
        store().purge_many(scopes)


def forget_deleted_accounts(batch: int = 1000, progress=None) -> int:
    """Purge the models of accounts that no longer exist, and say how many: a delete purges
    its accounts' models once committed, but not when the store was down then, nor for
    accounts deleted before deletes did. Principal ids are never given again, so a model
    whose account is gone is nobody's. `progress` (a run's) hears each batch."""
    from apps.accounts.models import Principal

    models = store()
    forgotten = looked_at = 0
    scopes = models.account_scopes()
    while chunk := list(itertools.islice(scopes, batch)):
        looked_at += len(chunk)
        ids = {}
        for scope in chunk:
            number = scope.removeprefix(ACCOUNT_SCOPE)
            if number.isascii() and number.isdigit():  # anything else is not ours to judge
                ids[int(number)] = scope
        existing = set(Principal.objects.filter(pk__in=ids).values_list("pk", flat=True))
        orphans = [scope for account_id, scope in ids.items() if account_id not in existing]
        if orphans:
            models.purge_many(orphans)
            forgotten += len(orphans)
        if progress is not None:
            progress.step(looked_at, f"{looked_at} account models looked at, {forgotten} purged")
    return forgotten


def learned(scope: str) -> tuple[int, int]:
    return store().learned(scope)


def learned_many(scopes: list[str]) -> list[tuple[int, int]]:
    """(spam, ham) learned by each model, in one query or one Redis round trip."""
    return store().learned_many(scopes)
