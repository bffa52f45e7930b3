"""Cross-validation inside the learned half of the corpus: how the spam filter's choices
(Bayes tokens, the minimum token count, Bayes' weight in the score, fitted rule scores)
are decided without ever reading the held-out half that bench/spamfilter.py classifies.

    .venv/bin/python bench/spamfilter_cv.py [--corpus $MAILADMIN_CORPUS_DIR] [--folds 5]
        [--without received,origin,mime,subject] [--min-count 2] [--weights] [--fit-rules]
        [--misses] [--from-domains] [--repeats 6]

The learned half is bench/spamfilter.py's (every other message, sorted by path); nothing
else is opened. Each message of it is scanned once (rules, sender authentication against
the same loopback DNS records as the bench, no Bayes), then split into folds (every
`folds`-th spam and ham); Bayes learns the other folds in memory (bayes.tokens and
bayes.probability, the code the scan runs) and classifies each message of the fold left
out. Printed: Bayes' AUC, the scan score's spam recall at ham false positives <= 0.01 (the
threshold moved, as the bench's operating point) and at the default threshold 5.

`--without` drops token groups (to compare with and without them), `--min-count` sets
bayes.MIN_COUNT, `--weights` tries BAYES_SPAM/BAYES_HAM scores, `--fit-rules` fits the
content rules' scores by weighted logistic regression with a prior at the file's scores
(as SpamAssassin fits its scores to rule hits) and measures the fit on the folds it was
not fitted on (nested), without writing anything. `--misses` lists the learned half's ten
highest-scoring ham and every spam at or under the threshold of the <= 0.01 point, with
Bayes' probability and the rules that fired; `--from-domains` as bench/spamfilter.py's.
`--repeats N` adds N - 1 splits with each class shuffled and prints the mean recall at
<= 0.01 and the ham at or over 5 in each split (with `--weights`, for BAYES_SPAM 4 to 7).
"""

from __future__ import annotations

import argparse
import collections
import math
import os
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

GROUPS = {
    "received": "_received_tokens",
    "origin": "_origin_tokens",
    "mime": "_mime_tokens",
}
# Tags the spec's classify example scores (their scores are the example's), and tags that
# depend on the bench's DNS records rather than on the message: never fitted.
NOT_FITTED_PREFIXES = ("SPF_", "DKIM_", "ARC_", "DMARC_", "HELO_", "RDNS_", "RCVD_", "RCPT_")
NOT_FITTED = {
    "FROM_NO_DN",
    "MISSING_DATE",
    "FROMHOST_NORES_A_OR_MX",
    "MISSING_MIME_VERSION",
    "FORGED_SENDER",
    "FORGED_RECIPIENTS",
    "FROM_NEQ_ENV_FROM",
    "AUTH_NA",
    "SINGLE_SHORT_PART",
    "TO_DN_NONE",
    "TO_DOM_EQ_FROM_DOM",
    "MISSING_MID",
    "GTUBE",
    "BAYES_SPAM",
    "BAYES_HAM",
}


def learned_half(corpus: Path) -> list[tuple[Path, bool]]:
    folder = corpus / "messages"
    spam = sorted(p for p in (folder / "spam").rglob("*") if p.is_file())
    ham = sorted(p for p in (folder / "ham").rglob("*") if p.is_file())
    if not spam or not ham:
        sys.exit(f"no messages under {folder}: pass --corpus or set MAILADMIN_CORPUS_DIR")
    return [(p, True) for p in spam[::2]] + [(p, False) for p in ham[::2]]


def recall_at(scores: list[float], labels: list[bool], rate: float) -> tuple[float, float]:
    """(spam recall, threshold) at the lowest threshold keeping ham over it within rate."""
    ham = sorted((s for s, y in zip(scores, labels, strict=True) if not y), reverse=True)
    spam = [s for s, y in zip(scores, labels, strict=True) if y]
    allowed = int(rate * len(ham))
    floor = ham[allowed] if allowed < len(ham) else -math.inf
    return sum(s > floor for s in spam) / len(spam), floor


def at_threshold(scores: list[float], labels: list[bool], threshold: float) -> str:
    pairs = list(zip(scores, labels, strict=True))
    caught = sum(s >= threshold and y for s, y in pairs)
    flagged = sum(s >= threshold and not y for s, y in pairs)
    spam = sum(labels)
    return (
        f"recall {caught / spam:.3f} ({caught}/{spam}), ham false positives "
        f"{flagged / (len(labels) - spam):.3f} ({flagged}/{len(labels) - spam})"
    )


def auc(scores: list[float], labels: list[bool]) -> float:
    spam = [s for s, y in zip(scores, labels, strict=True) if y]
    ham = [s for s, y in zip(scores, labels, strict=True) if not y]
    wins = sum((a > b) + 0.5 * (a == b) for a in spam for b in ham)
    return wins / len(spam) / len(ham)


def fold_probabilities(bayes, tokens, labels, folds, k: int) -> list[float]:
    """Each message's Bayes probability as learned from the other folds."""
    probabilities: list[float] = [0.5] * len(tokens)
    for fold in range(k):
        counts: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
        spam_n = ham_n = 0
        for i, found in enumerate(tokens):
            if folds[i] != fold:
                spam_n += labels[i]
                ham_n += not labels[i]
                for token in found:
                    counts[token][0 if labels[i] else 1] += 1
        for i, found in enumerate(tokens):
            if folds[i] == fold:
                known = [tuple(counts[t]) if t in counts else (0, 0) for t in found]
                probabilities[i] = bayes.probability(known, spam_n, ham_n)[0]
    return probabilities


def shuffled_folds(labels: list[bool], k: int, seed: int) -> list[int]:
    """Folds of every k-th spam and ham, each class shuffled first (seed 0: not shuffled,
    the bench's split)."""
    folds = [0] * len(labels)
    rng = random.Random(seed)
    for kind in (True, False):
        members = [i for i, label in enumerate(labels) if label == kind]
        if seed:
            rng.shuffle(members)
        for position, i in enumerate(members):
            folds[i] = position % k
    return folds


def fit_rules(rows, probabilities, labels, train, fitted, start, *, vote, ham_weight, prior):
    """Scores of the `fitted` tags by weighted logistic loss around the threshold 5 plus
    prior * (score - file's score)^2, by projected gradient descent; each score keeps the
    sign of the file's."""
    weights = dict(start)
    for _ in range(400):
        grad = {t: 2 * prior * (weights[t] - start[t]) for t in fitted}
        for i in train:
            fixed, hits = split(rows[i], probabilities[i], fitted, vote)
            margin = fixed + sum(weights[t] * v for t, v in hits.items()) - 5.0
            sign = 1 if labels[i] else -1
            cost = 1.0 if labels[i] else ham_weight
            z = -sign * margin
            pull = cost / (1 + math.exp(-z)) if z > -30 else 0.0
            for tag, value in hits.items():
                grad[tag] += -sign * pull * value
        for tag in fitted:
            low, high = (0.0, 20.0) if start[tag] > 0 else (-20.0, 0.0)
            if start[tag] == 0:
                low, high = -3.0, 3.0
            weights[tag] = min(high, max(low, weights[tag] - 0.5 * grad[tag] / len(train)))
    return weights


def split(row, p, fitted, vote):
    """(the score of the tags not fitted, {fitted tag: its factor}) for one message."""
    fixed, hits = 0.0, {}
    for tag, value in row.items():
        if tag in fitted:
            hits[tag] = 1.0
        else:
            fixed += value
    voted = vote(p) if p is not None else None
    if voted is not None:
        hits[voted[0]] = voted[1]
    return fixed, hits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--corpus",
        default=os.environ.get("MAILADMIN_CORPUS_DIR") or str(ROOT.parent / "shared" / "corpus"),
    )
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument(
        "--repeats", type=int, default=1, help="also this many splits (shuffled), averaged"
    )
    parser.add_argument("--without", default="", help="token groups to leave out")
    parser.add_argument("--min-count", type=int, help="bayes.MIN_COUNT")
    parser.add_argument("--weights", action="store_true", help="try BAYES_SPAM/HAM scores")
    parser.add_argument("--fit-rules", action="store_true", help="nested CV of a rule fit")
    parser.add_argument(
        "--from-domains",
        action="store_true",
        help="DNS records for From domains too (as bench/spamfilter.py's option)",
    )
    parser.add_argument(
        "--misses", action="store_true", help="list the learned half's missed spam and top ham"
    )
    args = parser.parse_args()
    os.environ.pop("REDIS_URL", None)  # Bayes is counted in memory here

    import spamfilter as bench

    from tests.support.dns_server import DnsServer

    server = DnsServer().start()
    bench.configure(server.port)
    from apps.spamfilter import bayes, rules
    from apps.spamfilter.message import parse
    from apps.spamfilter.services import scan

    for group in filter(None, args.without.split(",")):
        if group == "subject":
            bayes._subject_tokens = lambda s: [f"subject:{w}" for w in bayes._words(s)]
        elif group in GROUPS:
            setattr(bayes, GROUPS[group], lambda message: [])
        else:
            sys.exit(f"unknown token group {group}: {', '.join([*GROUPS, 'subject'])}")
    if args.min_count is not None:
        bayes.MIN_COUNT = args.min_count

    messages = learned_half(Path(args.corpus))
    bench.publish(server, [p.read_bytes() for p, _ in messages], args.from_domains)
    bayes.purge(bayes.GLOBAL)  # the rules alone: Bayes is added per fold below

    rows, tokens, labels, folds, paths = [], [], [], [], []
    acts: list[bool] = []  # a rule acts whatever the score (GTUBE): spam, as the bench counts
    seen = collections.Counter()
    for path, is_spam in messages:
        raw = path.read_bytes()
        sender, _, rcpt = bench.envelope(raw)
        verdict = scan(
            message=raw,
            remote_ip="192.0.2.25",
            ehlo_domain="mx.sender.test",
            env_from=sender,
            env_rcpt_to=rcpt,
            is_tls=True,
        )
        rows.append({tag: r.value for tag, r in verdict.tags.items()})
        acts.append(any(r.action != "allow" for r in verdict.tags.values()))
        # In bayes.tokens' order: ties at MAX_CLUES are broken as the scan breaks them.
        tokens.append(bayes.tokens(parse(raw)))
        labels.append(is_spam)
        paths.append(path.relative_to(Path(args.corpus) / "messages"))
        folds.append(seen[is_spam] % args.folds)
        seen[is_spam] += 1
    server.stop()

    probabilities = fold_probabilities(bayes, tokens, labels, folds, args.folds)
    ruleset = rules.current()
    bayes_spam, bayes_ham = ruleset.rules["BAYES_SPAM"].score, ruleset.rules["BAYES_HAM"].score

    def total(i: int, spam_score: float, ham_score: float, probs=None) -> float:
        if acts[i]:
            return math.inf
        voted = bayes.vote((probs or probabilities)[i])
        value = 0.0
        if voted is not None:
            value = (spam_score if voted[0] == "BAYES_SPAM" else ham_score) * voted[1]
        return sum(rows[i].values()) + round(value, 2)

    scores = [total(i, bayes_spam, bayes_ham) for i in range(len(rows))]
    rate = 0.01
    print(
        f"{args.folds}-fold cross-validation inside the learned half ({sum(labels)} spam, "
        f"{len(labels) - sum(labels)} ham); without: {args.without or 'nothing'}; "
        f"MIN_COUNT {bayes.MIN_COUNT}"
    )
    print(f"  Bayes alone: AUC {auc(probabilities, labels):.4f}")
    recall, floor = recall_at(scores, labels, rate)
    print(
        f"  scan score: AUC {auc(scores, labels):.4f}; at ham false positives <= {rate:g}: "
        f"threshold just over {floor:.2f}, spam recall {recall:.3f}; at threshold 5: "
        f"{at_threshold(scores, labels, 5.0)}"
    )
    if args.misses:
        order = sorted(range(len(rows)), key=lambda i: -scores[i])
        ham_top = [i for i in order if not labels[i]][:10]
        spam_low = [i for i in order if labels[i] and scores[i] <= floor]
        for title, chosen in (("highest ham", ham_top), ("spam at or under", spam_low)):
            print(f"  {title} ({len(chosen)}):")
            for i in chosen:
                voted = bayes.vote(probabilities[i])
                tags = sorted(rows[i].items(), key=lambda t: -abs(t[1]))
                top = ", ".join(f"{t} {v:g}" for t, v in tags[:7] if v)
                print(
                    f"    {scores[i]:6.2f} p={probabilities[i]:.3f} "
                    f"{voted[0] + ' ' + format(voted[1], '.2f') if voted else '-'} "
                    f"{paths[i]}: {top}"
                )
    if args.repeats > 1:
        # One message is 0.008 of recall: the mean over shuffled splits tells a choice
        # from the luck of one split.
        splits = [probabilities] + [
            fold_probabilities(
                bayes, tokens, labels, shuffled_folds(labels, args.folds, r), args.folds
            )
            for r in range(1, args.repeats)
        ]
        tried_scores = (4.0, 4.5, 5.0, 5.5, 6.0, 7.0) if args.weights else (bayes_spam,)
        for spam_score in tried_scores:
            recalls, flagged = [], []
            for probs in splits:
                tried = [total(i, spam_score, bayes_ham, probs) for i in range(len(rows))]
                recalls.append(recall_at(tried, labels, rate)[0])
                flagged.append(sum(s >= 5.0 and not y for s, y in zip(tried, labels, strict=True)))
            each = " ".join(f"{r:.3f}" for r in recalls)
            print(
                f"  {args.repeats} splits, BAYES_SPAM {spam_score:g}: recall at <= {rate:g} "
                f"mean {sum(recalls) / len(recalls):.3f} ({each}); "
                f"ham at or over 5 per split {flagged}"
            )
    if args.weights:
        for spam_score in (4.0, 4.5, 5.0, 6.0, 7.0):
            for ham_score in (-4.0, -6.0, -8.0):
                tried = [total(i, spam_score, ham_score) for i in range(len(rows))]
                recall, floor = recall_at(tried, labels, rate)
                print(
                    f"  BAYES_SPAM {spam_score:g} BAYES_HAM {ham_score:g}: recall {recall:.3f} "
                    f"at <= {rate:g} (over {floor:.2f}); at 5: {at_threshold(tried, labels, 5.0)}"
                )
    if args.fit_rules:
        fitted = sorted(
            tag
            for tag, rule in ruleset.rules.items()
            if tag not in NOT_FITTED
            and not tag.startswith(NOT_FITTED_PREFIXES)
            and not rule.family
            and rule.action == "allow"
        ) + ["BAYES_SPAM", "BAYES_HAM"]
        start = {tag: ruleset.rules[tag].score for tag in fitted}
        fitted_set = set(fitted) - {"BAYES_SPAM", "BAYES_HAM"}
        for ham_weight, prior in ((3.0, 0.3), (3.0, 1.0), (10.0, 1.0), (3.0, 3.0)):
            nested = [0.0] * len(rows)
            for fold in range(args.folds):
                train = [i for i in range(len(rows)) if folds[i] != fold]
                weights = fit_rules(
                    rows,
                    probabilities,
                    labels,
                    train,
                    fitted,
                    start,
                    vote=bayes.vote,
                    ham_weight=ham_weight,
                    prior=prior,
                )
                for i in range(len(rows)):
                    if folds[i] == fold:
                        fixed, hits = split(rows[i], probabilities[i], fitted_set, bayes.vote)
                        nested[i] = fixed + sum(weights[t] * v for t, v in hits.items())
                        if acts[i]:
                            nested[i] = math.inf
            recall, floor = recall_at(nested, labels, rate)
            print(
                f"  rules fitted (ham weight {ham_weight:g}, prior {prior:g}), measured on "
                f"the folds left out: recall {recall:.3f} at <= {rate:g} (over {floor:.2f}); "
                f"at 5: {at_threshold(nested, labels, 5.0)}"
            )


if __name__ == "__main__":
    main()
