"""Train the spam filter on half of the shared corpus, classify the other half with the whole
scan (sender authentication against a loopback DNS server, rules, Bayes), and print
precision, recall, the ham false-positive rate and messages/s on one core.

    .venv/bin/python bench/spamfilter.py [--corpus $MAILADMIN_CORPUS_DIR] [--passes 2]
        [--profile] [--dump verdicts.jsonl] [--check verdicts.jsonl]

The split is deterministic: every other message (sorted by path) is learned, the rest is
classified. The DNS server is tests/support/dns_server.py on loopback with SPF, DMARC and
MX records for the corpus' envelope sender domains (everything else answers NXDOMAIN;
`--from-domains`: for From domains too), so every
scan asks DNS for real. Pass 1 starts with an empty answer cache, later passes find the
answers kept (as a running server would for repeat senders). Bayes lives in Redis when
REDIS_URL is set, else in an in-memory SQLite database.

`--dump FILE` writes every held-out message's verdict of every pass (path, score, action,
each tag with its value) as JSON lines; `--check FILE` compares this run's verdicts with
such a file and exits 1 naming each message that differs: a speed-up must not change a
verdict (dump before the change, check after it).

bench/rspamd_peer.py scans the same held-out half with rspamd 3.4, the speed goal's peer,
on this machine, and prints its worker's CPU beside this bench's (README, "CPU per message").

The held-out half judges the filter; it must not shape it: decide token groups, Bayes'
scores or rule scores with bench/spamfilter_cv.py, which opens only the learned half.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import math
import os
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def configure(dns_port: int) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailadmin.settings")
    os.environ.setdefault("MAILADMIN_DEBUG", "0")
    os.environ["DATABASE_URL"] = "sqlite:///:memory:"
    os.environ["MAILADMIN_DNS_NAMESERVERS"] = f"127.0.0.1:{dns_port}"
    os.environ.setdefault("MAILADMIN_LOG_LEVEL", "ERROR")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def envelope(raw: bytes) -> tuple[str, str, list[str]]:
    """(MAIL FROM, its domain, RCPT TO) as the message's own headers name them: the
    Return-Path (else the From) address and the first To (else Cc) address, parsed as the
    filter parses them (folded, encoded-word and non-ASCII addresses included), so that a
    recipient the message names is not taken for one it hides (FORGED_RECIPIENTS)."""
    from apps.spamfilter.message import parse

    message = parse(raw)
    sender = ""
    for name in ("Return-Path", "From"):
        found = [a.address for a in message.addresses(name) if "@" in a.address]
        if found:
            sender = found[0]
            break
    rcpt = ""
    for name in ("To", "Cc"):
        found = [a.address for a in message.addresses(name) if "@" in a.address]
        if found:
            rcpt = found[0]
            break
    return (
        sender,
        sender.rsplit("@", 1)[-1].lower() if sender else "",
        [rcpt or "postmaster@example.org"],
    )


def publish(server, raws: list[bytes], from_domains: bool = False) -> None:
    """The sending host has a confirmed PTR name, the one it says in HELO; every envelope
    sender domain publishes SPF (softfail for that host), DMARC p=none and an MX. A From
    domain that differs (list mail, forged senders) does not exist, so
    FROMHOST_NORES_A_OR_MX and DMARC_NA fire on it; `from_domains` publishes the same
    records for From domains too, to see how much of a score that part is."""
    from apps.spamfilter.message import parse

    server.set_zone("25.2.0.192.in-addr.arpa", {"PTR": ["mx.sender.test."]})
    server.set_zone("mx.sender.test", {"A": ["192.0.2.25"]})
    domains = set()
    for raw in raws:
        domains.add(envelope(raw)[1])
        sender = parse(raw).from_address if from_domains else None
        if sender is not None:
            domains.add(sender.domain.rstrip("."))
    for domain in domains - {""}:
        server.set_zone(domain, {"TXT": ["v=spf1 ip4:198.51.100.0/24 ~all"], "MX": [(10, "mx")]})
        server.set_zone(f"_dmarc.{domain}", {"TXT": ["v=DMARC1; p=none"]})


def operating_point(scores: list[tuple[float, bool]], max_false_positive_rate: float) -> str:
    """The spam recall at the lowest threshold that keeps ham false positives within
    the rate: what the filter could reach with the threshold moved, not a tuning of it."""
    ham = sorted((score for score, is_spam in scores if not is_spam), reverse=True)
    spam = [score for score, is_spam in scores if is_spam]
    allowed = int(max_false_positive_rate * len(ham))  # ham that may score at or over it
    # Just over the highest ham score that must stay under the threshold.
    floor = ham[allowed] if allowed < len(ham) else -math.inf
    caught = sum(1 for score in spam if score > floor)
    return (
        f"at ham false positives <= {max_false_positive_rate:g} ({allowed}/{len(ham)}): "
        f"threshold just over {floor:.2f}, spam recall {caught / max(1, len(spam)):.3f} "
        f"({caught}/{len(spam)})"
    )


def verdict_record(number: int, path: Path, verdict) -> dict:
    return {
        "pass": number,
        "path": str(path),
        "score": verdict.score,
        "action": verdict.action,
        "is_spam": verdict.is_spam,
        "tags": {tag: [r.action, r.value] for tag, r in sorted(verdict.tags.items())},
        "headers": verdict.headers,
    }


def compare(expected_file: str, verdicts: list[dict]) -> int:
    """How many verdicts differ from the file's, each named."""

    def key(record: dict) -> tuple[int, str]:
        return record["pass"], record["path"]

    expected = {key(r): r for r in map(json.loads, Path(expected_file).read_text().splitlines())}
    differ = 0
    for record in verdicts:
        before = expected.pop(key(record), None)
        if before is None:
            print(f"  not in {expected_file}: pass {record['pass']} {record['path']}")
            differ += 1
            continue
        changed = [
            f for f in ("score", "action", "is_spam", "tags", "headers") if before[f] != record[f]
        ]
        if changed:
            differ += 1
            print(f"  differs ({', '.join(changed)}): pass {record['pass']} {record['path']}")
            if "tags" in changed:
                old, new = before["tags"], record["tags"]
                for tag in sorted(set(old) | set(new)):
                    if old.get(tag) != new.get(tag):
                        print(f"    {tag}: {old.get(tag)} -> {new.get(tag)}")
    for number, path in expected:
        print(f"  missing from this run: pass {number} {path}")
        differ += 1
    return differ


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--corpus",
        default=os.environ.get("MAILADMIN_CORPUS_DIR") or str(ROOT.parent / "shared" / "corpus"),
    )
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--profile", action="store_true", help="print where the time goes")
    parser.add_argument("--misses", action="store_true", help="list misclassified messages")
    parser.add_argument("--dump", help="write every verdict to this file (JSON lines)")
    parser.add_argument("--check", help="compare every verdict with this --dump file")
    parser.add_argument(
        "--from-domains",
        action="store_true",
        help="publish DNS records for From domains too, not only for envelope domains",
    )
    args = parser.parse_args()

    from tests.support.dns_server import DnsServer

    server = DnsServer().start()
    configure(server.port)
    from django.conf import settings

    from apps.spamfilter import bayes, lookups, thresholds
    from apps.spamfilter.message import parse
    from apps.spamfilter.services import scan

    folder = Path(args.corpus) / "messages"
    spam = sorted(p for p in (folder / "spam").rglob("*") if p.is_file())
    ham = sorted(p for p in (folder / "ham").rglob("*") if p.is_file())
    if not spam or not ham:
        sys.exit(f"no messages under {folder}: pass --corpus or set MAILADMIN_CORPUS_DIR")
    train = [(p, True) for p in spam[::2]] + [(p, False) for p in ham[::2]]
    test = [(p, True) for p in spam[1::2]] + [(p, False) for p in ham[1::2]]

    publish(server, [p.read_bytes() for p, _ in train + test], args.from_domains)

    bayes.purge(bayes.GLOBAL)
    started = time.perf_counter()
    for path, is_spam in train:
        bayes.learn(parse(path.read_bytes()), spam=is_spam, scope=bayes.GLOBAL)
    learn_time = time.perf_counter() - started
    store = "Redis" if settings.REDIS_URL else "SQLite (in memory)"
    print(f"learned {len(train)} messages in {learn_time:.2f}s ({store})")

    # The envelopes are the bench's stand-in for an SMTP dialogue: made before the clock.
    messages = [
        (raw, is_spam, envelope(raw)) for raw, is_spam in ((p.read_bytes(), s) for p, s in test)
    ]
    verdicts: list[dict] = []  # every pass's, for --dump and --check
    threshold = thresholds.current().spam  # the store's, else the environment's
    lookups.cache_clear()
    profiler = cProfile.Profile() if args.profile else None
    scores: list[tuple[float, bool]] = []  # the first pass's (score, is spam)
    for number in range(1, args.passes + 1):
        counts = {"tp": 0, "fp": 0, "fn": 0, "tn": 0}
        queries = 0
        if profiler and number == 1:
            profiler.enable()
        cpu, wall, own = time.process_time(), time.perf_counter(), time.thread_time()
        for index, (raw, is_spam, (sender, _, rcpt)) in enumerate(messages):
            verdict = scan(
                message=raw,
                remote_ip="192.0.2.25",
                ehlo_domain="mx.sender.test",
                env_from=sender,
                env_rcpt_to=rcpt,
                is_tls=True,
            )
            queries += verdict.dns_queries
            if args.dump or args.check:
                verdicts.append(verdict_record(number, test[index][0].relative_to(folder), verdict))
            if number == 1:
                scores.append(
                    (
                        math.inf
                        if verdict.is_spam and verdict.score < threshold
                        else verdict.score,
                        is_spam,
                    )
                )
            flagged = verdict.is_spam  # the score reaches the threshold, or a rule acts
            counts[("t" if flagged == is_spam else "f") + ("p" if flagged else "n")] += 1
            if args.misses and number == 1 and flagged != is_spam:
                tags = sorted(verdict.tags.items(), key=lambda t: -abs(t[1].value))
                top = ", ".join(f"{t} {r.value:g}" for t, r in tags[:8] if r.value)
                print(f"  {'missed spam' if is_spam else 'ham flagged'} {verdict.score:6.2f} {top}")
        wall = time.perf_counter() - wall
        cpu = time.process_time() - cpu
        own = time.thread_time() - own  # the scanning thread alone, without DNS threads
        if profiler and number == 1:
            profiler.disable()
        spam_total = counts["tp"] + counts["fn"]
        ham_total = counts["tn"] + counts["fp"]
        precision = counts["tp"] / max(1, counts["tp"] + counts["fp"])
        print(
            f"pass {number} ({'cold' if number == 1 else 'warm'} DNS cache): "
            f"{len(messages)} messages in {wall:.2f}s = {len(messages) / wall:.0f} messages/s "
            f"(CPU {cpu:.2f}s = {len(messages) / cpu:.0f} messages/s, of it {own:.2f}s in the "
            f"scanning thread; {queries} DNS queries); threshold {threshold:g}: "
            f"spam recall {counts['tp'] / max(1, spam_total):.3f} "
            f"({counts['tp']}/{spam_total}), precision {precision:.3f}, "
            f"ham false positives {counts['fp'] / max(1, ham_total):.3f} "
            f"({counts['fp']}/{ham_total})"
        )
    print(operating_point(scores, max_false_positive_rate=0.01))
    if args.dump:
        Path(args.dump).write_text("".join(json.dumps(v, sort_keys=True) + "\n" for v in verdicts))
        print(f"wrote {len(verdicts)} verdicts to {args.dump}")
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    bayes.purge(bayes.GLOBAL)
    server.stop()
    if args.check:
        differ = compare(args.check, verdicts)
        if differ:
            sys.exit(f"{differ} verdicts differ from {args.check}")
        print(f"all {len(verdicts)} verdicts identical to {args.check}")


if __name__ == "__main__":
    main()
