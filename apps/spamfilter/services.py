"""The spam filter's operations: scan a received message (what the SMTP listeners call),
train and purge Bayes models, reload the rules.

`scan` authenticates the sender (SPF, DKIM, ARC, DMARC, iprev), runs the rules and Bayes,
and answers a Verdict: the score, every tag with its value, the action, and the header
texts to add (X-Spam-Result, X-Spam-Status, Authentication-Results).
"""

from __future__ import annotations

import ipaddress
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.db import DatabaseError
from redis.exceptions import RedisError

from apps.accounts.models import Principal, PrincipalType
from apps.accounts.permissions import Perm
from apps.accounts.principals.selectors import principal_get
from apps.spamfilter import (
    auth,
    bayes,
    checks,
    needles,
    received,
    rules,
    sender_lists,
    thresholds,
)
from apps.spamfilter.lookups import ScanLookups, reverse_name
from apps.spamfilter.message import ParsedMessage, parse, url_host
from mailadmin.audit import audit
from mailadmin.errors import NotFound, ServiceError, ValidationFailed

logger = logging.getLogger(__name__)
SEVERITY = {"allow": 0, "quarantine": 1, "reject": 2, "discard": 3}


@dataclass(frozen=True)
class TagResult:
    action: str
    value: float


@dataclass
class Verdict:
    score: float
    tags: dict[str, TagResult]
    action: str  # allow, quarantine, reject, discard
    is_spam: bool
    spam_result: str  # "X-Spam-Result: ..." (folded, without the final CRLF)
    spam_status: str  # "X-Spam-Status: Yes, score=12.70"
    authentication_results: str  # "Authentication-Results: ..." ("" when authenticated)
    auth: auth.AuthResults | None = None
    bayes: bayes.BayesVerdict | None = None
    rules_version: str = ""
    elapsed: float = 0.0
    dns_queries: int = 0
    reasons: list[str] = field(default_factory=list)
    # {mailbox principal id: "safe" | "block"}: recipients whose own lists name the sender
    # (apps.spamfilter.sender_lists); the others follow the action above.
    sender_lists: dict[int, str] = field(default_factory=dict)
    # Why an "unverified" recipient's safe list was not applied (the sender's address is
    # listed but not authenticated for its domain), for that copy's X-Spam-Sender-List.
    sender_list_note: str = ""

    @property
    def disposition_value(self) -> str:
        """The header block the management API's classify example shows."""
        return f"{self.spam_result}\r\n{self.spam_status}\r\n"

    @property
    def headers(self) -> str:
        """Everything to prepend to the stored message, CRLF-terminated."""
        block = self.disposition_value
        if self.authentication_results:
            block = f"{self.authentication_results}\r\n" + block
        return block


def _authserv_id() -> str:
    return settings.MAILADMIN_SPAM_AUTHSERV_ID or settings.MAILADMIN_HOSTNAME


# The header fields only this filter writes (Verdict.headers, the MX's X-Spam-Sender-List).
OWN_FIELDS = re.compile(
    rb"^(authentication-results|x-spam-status|x-spam-result|x-spam-sender-list)[ \t]*:",
    re.IGNORECASE | re.MULTILINE,
)
_PARENTHESIS = re.compile(rb"[()]")
_QUOTED_ID = re.compile(rb'\s*"((?:[^"\\]|\\.)*)"')
_QUOTED_PAIR = re.compile(rb"\\(.)")


def _without_comments(value: bytes) -> bytes:
    """The value with each balanced (...) (comments nest) replaced by a space; an unmatched
    parenthesis stays as text. One pass: removing the innermost comments again and again
    cost a pass per level of nesting, quadratic on a field of 20,000 nested '(' (6 s)."""
    opened: list[int] = []
    spans: list[tuple[int, int]] = []  # outermost balanced comments so far, in order
    for match in _PARENTHESIS.finditer(value):
        if match[0] == b"(":
            opened.append(match.start())
        elif opened:
            start = opened.pop()
            while spans and spans[-1][0] > start:  # the comments this one encloses
                spans.pop()
            spans.append((start, match.end()))
    kept, position = [], 0
    for start, end in spans:
        kept.append(value[position:start])
        position = end
    kept.append(value[position:])
    return b" ".join(kept)


def _claims_us(field: bytes, ours: bytes) -> bool:
    name, _, value = field.partition(b":")
    if name.strip().lower() != b"authentication-results":
        return True  # X-Spam-*: ours whoever claims it
    value = _without_comments(b" ".join(value.split()))
    # RFC 8601 2.2: a value, the token or a quoted-string meaning the same
    quoted = _QUOTED_ID.match(value)
    if quoted is not None:
        return _QUOTED_PAIR.sub(rb"\1", quoted[1]).lower() == ours
    authserv_id = value.split(b";", 1)[0].split()
    return bool(authserv_id) and authserv_id[0].lower() == ours


def strip_forged_headers(data: bytes) -> bytes:
    """The message without the header fields a sender wrote in our name: any
    Authentication-Results claiming our authserv-id (RFC 8601 section 5: a receiver MUST
    delete them) and X-Spam-Status / -Result / -Sender-List, so that what a reader, a
    Sieve rule or a mail client finds of them is what we added. Other servers'
    Authentication-Results stay. Unchanged (the same bytes) when there are none."""
    end = re.search(rb"(\r?\n)\r?\n", data)
    head = data if end is None else data[: end.end(1)]  # its last line's end included
    if not OWN_FIELDS.search(head):
        return data
    ours = _authserv_id().strip().lower().encode("utf-8", "replace")
    fields: list[bytes] = []
    for line in head.splitlines(keepends=True):
        if fields and line[:1] in (b" ", b"\t"):
            fields[-1] += line
        else:
            fields.append(line)
    kept = [f for f in fields if not (OWN_FIELDS.match(f) and _claims_us(f, ours))]
    return b"".join(kept) + data[len(head) :]


def valid_ip(value: str) -> str:
    """The address in canonical text, "" when it is none; an IPv4-mapped one (a listener
    bound to [::]) as the IPv4 address it is, for its PTR, SPF, block lists and the
    mailboxes' IP lists. Written as an address literal too, as SMTP and a Received field
    write the client (RFC 5321 4.1.3: `[192.0.2.1]`, `[IPv6:2001:db8::1]`): the console's
    forms take what this takes."""
    text = value.strip()
    tagged = False
    if text[:1] == "[" and text[-1:] == "]":
        text = text[1:-1]
        if text[:5].lower() == "ipv6:":
            text, tagged = text[5:], True
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return ""
    if tagged and address.version != 6:
        return ""
    mapped = getattr(address, "ipv4_mapped", None)
    return str(mapped or address)


def _authenticate(
    lookups: ScanLookups,
    message: ParsedMessage,
    *,
    ip: str,
    helo: str,
    env_from: str,
    check_helo: bool = False,
    judged: str = "",
) -> auth.AuthResults:
    sender = message.from_address
    from_domain = auth.a_label(sender.domain) if sender else ""
    # every author's domain, for DMARC (RFC 7489 6.6.1), the first as ever first
    authors = [auth.a_label(a.domain) for a in message.addresses("From") if a.address]
    author_domains = [d for d in dict.fromkeys([from_domain, *authors]) if d]
    env_domain = auth.domain_of(env_from)
    if env_domain and not env_domain.isascii():  # SMTPUTF8: SPF asks DNS in A-labels
        env_from = env_from[: env_from.rfind("@") + 1] + (auth.a_label(env_domain) or env_domain)
    spf_domain = auth.domain_of(env_from) or helo
    wanted = [(spf_domain, "TXT")] if spf_domain and ip else []
    wanted += [(name, "TXT") for name in auth.dkim_keys(message.raw)]
    for domain in author_domains[: auth.MAX_AUTHOR_DOMAINS + 1]:
        wanted += auth.dmarc_lookups(domain)
    if from_domain:
        wanted += [(from_domain, "A"), (from_domain, "MX")]
    if helo and not checks._ip_literal(helo):
        wanted += [(helo, "A"), (helo, "MX")]
    if ip:
        wanted.append((reverse_name(ip), "PTR"))
    lookups.prefetch(wanted)

    spf = auth.spf_check(
        lookups, ip=ip, sender=env_from, helo=helo, receiver=settings.MAILADMIN_HOSTNAME
    )
    helo_spf = None
    if check_helo and helo:
        helo_spf = auth.spf_check(
            lookups, ip=ip, sender="", helo=helo, receiver=settings.MAILADMIN_HOSTNAME
        )
    dkim = auth.dkim_check(lookups, message.raw)
    arc = auth.arc_check(lookups, message.raw)
    dmarc, dmarc_each = auth.dmarc_check_authors(
        lookups, from_domains=author_domains, spf=spf, dkim_results=dkim
    )
    iprev = auth.iprev_check(lookups, ip) if ip else auth.IprevResult("")
    return auth.AuthResults(
        spf=spf,
        helo_spf=helo_spf,
        dkim=dkim,
        arc=arc,
        dmarc=dmarc,
        iprev=iprev,
        ip=ip,
        helo=helo,
        sender=env_from if "@" in env_from else "",
        judged=judged,
        dmarc_each=dmarc_each,
    )


def _block_lists(setting: str) -> list[tuple[str, str, float]]:
    """(zone, tag, score) of a "zone:TAG:score,..." setting; TAG defaults to
    RBL_<ZONE>, an unreadable score to 0."""
    found = []
    for entry in (e.strip() for e in setting.split(",")):
        if not entry:
            continue
        zone, _, rest = entry.partition(":")
        tag, _, score = rest.partition(":")
        try:
            value = float(score or 0)
        except ValueError:
            value = 0.0
        found.append((zone.strip(".").lower(), tag or f"RBL_{zone.upper()}", value))
    return found


def _listed(answer) -> bool:
    """A block list's "listed" answer: an address in 127.0.0.0/8 other than the codes
    lists use to refuse a query (127.0.0.1 at URIBL, 127.255.255.x at Spamhaus: a query
    through a public resolver, or over the free limit), which say nothing of the name."""
    return any(
        v.startswith("127.") and v != "127.0.0.1" and not v.startswith("127.255.255.")
        for v in answer.values or ()
    )


def _ask_lists(
    lookups: ScanLookups, names: list[str], lists: list[tuple[str, str, float]]
) -> list[tuple[str, float]]:
    """Each list's tag and score once, if any of `names` is listed in its zone."""
    queries = [(f"{name}.{zone}", tag, score) for zone, tag, score in lists for name in names]
    lookups.prefetch((query, "A") for query, _, _ in queries)
    hits: dict[str, float] = {}
    for query, tag, score in queries:
        if tag not in hits and _listed(lookups.get(query, "A")):
            hits[tag] = score
    return list(hits.items())


def _dnsbl(lookups: ScanLookups, ip: str) -> list[tuple[str, float]]:
    """MAILADMIN_SPAM_DNSBL: "zone:TAG:score,...", asked with the sending IPv4 address."""
    lists = _block_lists(settings.MAILADMIN_SPAM_DNSBL)
    if not lists or not ip or ":" in ip:
        return []
    return _ask_lists(lookups, [".".join(reversed(ip.split(".")))], lists)


MAX_URIBL_DOMAINS = 20  # a message naming hundreds of domains costs no more than this


def _uribl(lookups: ScanLookups, urls: Sequence[str]) -> list[tuple[str, float]]:
    """MAILADMIN_SPAM_URIBL: "zone:TAG:score,...", asked with the registered domain of
    each link in the message (the first MAX_URIBL_DOMAINS; links to bare IPs are left
    to the DNSBL)."""
    lists = _block_lists(settings.MAILADMIN_SPAM_URIBL)
    if not lists:
        return []
    domains: dict[str, None] = {}
    for url in urls:
        host = url_host(url)
        if not host or "." not in host or host.replace(".", "").isdigit() or ":" in host:
            continue
        domains.setdefault(auth.organizational_domain(host.rstrip(".")), None)
        if len(domains) >= MAX_URIBL_DOMAINS:
            break
    return _ask_lists(lookups, list(domains), lists) if domains else []


def scan(
    *,
    message: bytes,
    remote_ip: str,
    ehlo_domain: str,
    env_from: str,
    env_rcpt_to: Sequence[str],
    authenticated_as: str = "",
    is_tls: bool = False,
    bayes_account_id: int | None = None,
    recipient_mailboxes: Sequence[int] = (),
    judged_hop: received.Hop | None = None,
    smtputf8: bool = False,
) -> Verdict:
    """Authenticate and score one received message. Never raises on what a sender sent;
    DNS failures become temperror results, bounded by MAILADMIN_SPAM_DNS_DEADLINE.

    `recipient_mailboxes` (principal ids) are looked up in the mailboxes' block and safe
    lists by envelope sender, From address and connecting IP: Verdict.sender_lists says
    which of them list the sender, for the caller to deliver, junk or refuse each copy.

    `judged_hop` (fetched mail): the client whose IP and HELO SPF, iprev, the HELO checks
    and the DNS block lists judge instead of `remote_ip`/`ehlo_domain`, which name the
    server the message was fetched from, not its sender (apps.spamfilter.received). With
    no IP in it, SPF and iprev are not judged (`none`); DKIM, ARC and DMARC run as ever.
    The sender lists' IP entries match that client too (none without its IP): the server
    fetched from is the mailbox's own provider, not the sender an IP entry names; and
    `is_tls` is the hop's (RCVD_TLS_LAST), not the fetch connection's, and so is
    `smtputf8` (the message came in an SMTPUTF8 transaction: raw UTF-8 in its header
    fields is then what RFC 6532 allows, not a sign of a bulk tool)."""
    started = time.perf_counter()
    ruleset = rules.current()
    parsed = parse(message)
    lookups = ScanLookups()
    peer = valid_ip(remote_ip) if remote_ip else ""
    ip, helo = (judged_hop.ip, judged_hop.helo) if judged_hop is not None else (peer, ehlo_domain)
    ip = valid_ip(ip) if ip else ""
    is_tls = judged_hop.tls if judged_hop is not None else is_tls
    smtputf8 = judged_hop.smtputf8 if judged_hop is not None else smtputf8
    helo = (helo or "").strip().rstrip(".").lower()
    env_from = (env_from or "").strip().strip("<>")
    results = None
    if not authenticated_as:
        judged = "" if judged_hop is None else "received" if ip else "unknown"
        results = _authenticate(lookups, parsed, ip=ip, helo=helo, env_from=env_from, judged=judged)
    context = checks.Context(
        message=parsed,
        remote_ip=ip,
        ehlo_domain=helo,
        env_from=env_from,
        env_rcpt_to=list(env_rcpt_to or []),
        authenticated_as=authenticated_as or "",
        is_tls=is_tls,
        smtputf8=smtputf8,
        auth=results,
        lookups=lookups,
        iprev_names=results.iprev.names if results else (),
    )
    found: dict[str, float] = {tag: 1.0 for tag in checks.run_checks(context)}
    listed: set[str] = set()  # block-list tags, scored by their setting
    if results is not None:
        for tag, score in _dnsbl(lookups, ip) + _uribl(lookups, parsed.urls):
            found[tag] = score
            listed.add(tag)
    body = lowered = None
    for rule in ruleset.matchers:
        if rule.header:
            values = parsed.header_all(rule.header)
            hit = any(rule.pattern.search(v) for v in values)
        else:
            if body is None:
                body = parsed.body_text
                lowered = needles.lowered(body)
            # A plain-string test first: most bodies contain none of a rule's words.
            hit = needles.may_match(rule.pattern, lowered) and bool(rule.pattern.search(body))
        if hit:
            found[rule.tag] = 1.0
    try:
        verdict_bayes = bayes.classify(parsed, account_id=bayes_account_id)
    except (RedisError, DatabaseError) as exc:
        # Mail keeps flowing without Bayes' vote rather than failing at DATA.
        logger.warning("Bayes is unavailable, scanning without it: %s", exc)
        verdict_bayes = None
    if verdict_bayes is not None and verdict_bayes.probability is not None:
        vote = bayes.vote(verdict_bayes.probability)  # scaled by certainty
        if vote is not None:
            found[vote[0]] = vote[1]

    tags: dict[str, TagResult] = {}
    reasons: list[str] = []  # why the action is not "allow" (an SMTP reply can say it)
    reported: list[tuple[float, str]] = []
    action = "allow"
    score = 0.0
    for tag, factor in found.items():
        rule = ruleset.find(tag)
        if tag in listed and tag not in ruleset.rules:
            value, rule_action, report = factor, "allow", True
            if rule is not None and not rule.enabled:
                continue
        elif rule is None or not rule.enabled:
            continue
        else:
            value, rule_action, report = round(rule.score * factor, 2), rule.action, rule.report
        tags[tag] = TagResult(rule_action, value)
        score += value
        if report:
            reported.append((value, tag))
        if SEVERITY[rule_action] > SEVERITY[action]:
            action = rule_action
        if rule_action != "allow":
            described = rule.description if rule is not None else ""
            reasons.append(f"{tag}: {described}" if described else tag)
    score = round(score, 2)
    limits = thresholds.current()
    for name, threshold in (
        ("discard", limits.discard),
        ("reject", limits.reject),
        ("quarantine", limits.quarantine),
    ):
        if threshold > 0 and score >= threshold and SEVERITY[name] > SEVERITY[action]:
            action = name
            reasons.append(f"spam score {score:.2f} reaches the {name} threshold {threshold:g}")
            break
    spam_threshold = limits.spam
    is_spam = (spam_threshold > 0 and score >= spam_threshold) or action != "allow"
    reported.sort()
    lines = [f"{tag} ({value:.2f})" for value, tag in reported]
    spam_result = "X-Spam-Result: " + (",\r\n\t".join(lines) if lines else "none")
    spam_status = f"X-Spam-Status: {'Yes' if is_spam else 'No'}, score={score:.2f}"
    listed, note = {}, ""
    if recipient_mailboxes:
        listed, note = sender_lists.scan_status(
            mailbox_ids=recipient_mailboxes,
            senders=[env_from, parsed.from_address.address if parsed.from_address else ""],
            remote_ip=ip if judged_hop is not None else peer,
            results=results,
        )
    return Verdict(
        score=score,
        tags=tags,
        action=action,
        is_spam=is_spam,
        spam_result=spam_result,
        spam_status=spam_status,
        authentication_results=results.header(_authserv_id()) if results else "",
        auth=results,
        bayes=verdict_bayes,
        rules_version=ruleset.version,
        elapsed=time.perf_counter() - started,
        dns_queries=lookups.queries,
        reasons=reasons,
        sender_lists=listed,
        sender_list_note=note,
    )


def classify(
    *,
    actor: Principal,
    message: bytes,
    remote_ip: str = "",
    ehlo_domain: str = "",
    env_from: str = "",
    env_rcpt_to: Sequence[str] = (),
    authenticated_as: str = "",
    is_tls: bool = False,
    smtputf8: bool = False,
) -> Verdict:
    """The classify tester: a scan of a message given by hand (nothing is stored)."""
    if not message.strip():
        raise ValidationFailed("The message is empty.", field="message")
    if remote_ip and not valid_ip(remote_ip):
        raise ValidationFailed(f"Invalid IP address: {remote_ip}", field="remoteIp")
    return scan(
        message=message,
        remote_ip=remote_ip,
        ehlo_domain=ehlo_domain,
        env_from=env_from,
        env_rcpt_to=env_rcpt_to,
        authenticated_as=authenticated_as,
        is_tls=is_tls,
        smtputf8=smtputf8,
    )


def dmarc_troubleshoot(
    *, actor: Principal, remote_ip: str, ehlo_domain: str, mail_from: str, message: bytes
) -> tuple[auth.AuthResults, float]:
    """Every authentication result for a message as if received now: (results, seconds)."""
    ip = valid_ip(remote_ip) if remote_ip else ""
    if remote_ip and not ip:
        raise ValidationFailed(f"Invalid IP address: {remote_ip}", field="remoteIp")
    started = time.perf_counter()
    results = _authenticate(
        ScanLookups(),
        parse(message),
        ip=ip,
        helo=(ehlo_domain or "").strip().rstrip(".").lower(),
        env_from=(mail_from or "").strip().strip("<>"),
        check_helo=True,
    )
    return results, time.perf_counter() - started


# --- Bayes training --------------------------------------------------------------------


class GlobalModelRefused(ServiceError):
    status = 403
    title = "Forbidden"


def _account(*, actor: Principal, account_id: str) -> Principal:
    """An individual account the actor may act for: itself (an API key: its owner), or one
    of its tenant's when it may read principals (a plain user trains only its own model)."""
    # The console shows this beside the Account field: name what was asked for. A missing
    # account and one out of reach read the same, so nothing leaks.
    unknown = f"No such account: {account_id}"
    try:
        account = principal_get(actor=actor, id_or_name=account_id)
    except NotFound:
        raise NotFound(unknown) from None
    own = actor.acts_for  # an API key's own model is its owner's
    if (own is None or account.pk != own.pk) and not actor.has_permission(Perm.PRINCIPAL_GET):
        raise NotFound(unknown)  # before the type: what it is would tell that it exists
    if account.type != PrincipalType.INDIVIDUAL:
        raise NotFound(f"{account_id} is not an account.")
    return account


def _model(*, actor: Principal, account_id: str | None, doing: str) -> tuple[str, str, int | None]:
    """(scope, name, tenant id) of the model the actor asks for."""
    if account_id is None:
        if not actor.reaches_all_tenants:
            raise GlobalModelRefused(
                f"Only a superadmin may {doing} the global Bayes model, which every tenant "
                "shares; use an account's model instead."
            )
        return bayes.GLOBAL, "global Bayes model", None
    account = _account(actor=actor, account_id=account_id)
    return bayes.account_scope(account.pk), f"Bayes model of {account.name}", account.tenant_id


def bayes_train(
    *, actor: Principal, message: bytes, spam: bool, account_id: str | None = None
) -> str:
    """Learn the message; the trained model's name ("Bayes model of jane"), whether the
    account was given by name or by id."""
    if not message.strip():
        raise ValidationFailed("The message is empty.", field="body")
    scope, name, tenant_id = _model(actor=actor, account_id=account_id, doing="train")
    bayes.learn(parse(message), spam=spam, scope=scope)
    audit(
        actor=actor,
        action="spam-filter.train",
        object_type="bayes-model",
        object_id=scope,
        object_repr=name,
        tenant_id=tenant_id,
        changes={"learned": "spam" if spam else "ham"},
    )
    return name


def bayes_purge(*, actor: Principal, account_id: str | None = None) -> None:
    scope, name, tenant_id = _model(actor=actor, account_id=account_id, doing="delete")
    bayes.purge(scope)
    audit(
        actor=actor,
        action="spam-filter.bayes-purge",
        object_type="bayes-model",
        object_id=scope,
        object_repr=name,
        tenant_id=tenant_id,
    )


def bayes_learned(*, actor: Principal, account_id: str | None = None) -> tuple[int, int]:
    scope, _, _ = _model(actor=actor, account_id=account_id, doing="read")
    return bayes.learned(scope)


def rules_reload(*, actor: Principal) -> dict:
    changes = rules.reload()  # re-reads the settings store too
    changes.update(thresholds.reload_report())
    audit(
        actor=actor,
        action="spam-filter.update",
        object_type="spam-filter-rules",
        object_id=changes["version"],
        object_repr=f"rules {changes['version']}",
        tenant_id=None,
        changes={
            "added": changes["added"],
            "removed": changes["removed"],
            "changed": sorted(changes["changed"]),
            "overrides": sorted(changes["overrides"]),
            "thresholds": changes["thresholds"],
        },
    )
    return changes
