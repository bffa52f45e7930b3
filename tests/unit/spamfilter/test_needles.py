"""The needles a scan tries before a rule's pattern never rule out a text the pattern
matches: over every bundled rule and every corpus message, and on the corner cases of case
folding."""

from __future__ import annotations

import re

import pytest

from apps.spamfilter import needles, rules
from apps.spamfilter.message import parse
from tests.conftest import CORPUS_DIR, skip_or_fail


def test_folds_onto_ascii_names_every_non_ascii_character_matching_an_ascii_letter():
    letter = re.compile("[a-z]", re.IGNORECASE)
    folding = [chr(c) for c in range(0x80, 0x110000) if letter.fullmatch(chr(c))]
    assert folding == sorted(needles.FOLDS_ONTO_ASCII.pattern.strip("[]"))
    assert all(needles.FOLDS_ONTO_ASCII.search(c) for c in folding)


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (r"\b(?:viagra|cialis)\b", (("cialis", "viagra"),)),
        (r"\bclick (?:here|below)\b", (("click ",), ("below", "here"))),
        (r"(?:opt)?ional", (("ional",),)),  # an optional part asks nothing
        (r"(?:a|\w+)z", (("z",),)),  # a branch with an unknown alternative asks nothing
        (r"(?-i:ABC)\d", (("abc",),)),  # case-sensitive parts too, lower-cased
        (r"(?:ab){2,}", (("ab",),)),
        (r"[0-9]+", ()),
        (r"(?:\u0434\u0435\u043d\u044c\u0433\u0438|money)", ()),  # Cyrillic letters: none
        (r"(?:\u20ac|usd)\d", (("usd", "\u20ac"),)),  # the euro sign has no case
    ],
)
def test_needles_are_what_every_match_must_contain(pattern, expected):
    assert needles.needles(re.compile(pattern, re.IGNORECASE)) == expected


@pytest.mark.parametrize(
    ("pattern", "text"),
    [
        (r"\bkill\b", "\u212aill"),  # KELVIN SIGN matches k
        (r"\bsale\b", "\u017fale"),  # LONG S matches s
        (r"\bfind\b", "F\u0130ND"),  # DOTTED CAPITAL I matches i, lower-cases in two
        (r"\bclick here\b", "CLICK HERE"),
        (r"\bclick here\b", "caf\u00e9 Click Here"),
    ],
)
def test_a_matching_text_is_never_ruled_out(pattern, text):
    compiled = re.compile(pattern, re.IGNORECASE)
    assert compiled.search(text)
    assert needles.may_match(compiled, needles.lowered(text))


def test_a_text_without_any_needle_is_ruled_out():
    compiled = re.compile(r"\b(?:viagra|cialis)\b", re.IGNORECASE)
    assert not needles.may_match(compiled, needles.lowered("Meeting notes, caf\u00e9 at 10"))
    assert needles.may_match(compiled, needles.lowered("VIAGRA"))


def test_no_bundled_rule_is_ruled_out_where_it_matches_a_corpus_message():
    folder = CORPUS_DIR / "messages"
    paths = sorted(p for p in folder.rglob("*") if p.is_file())
    if not paths:
        skip_or_fail(f"no corpus messages under {folder} (set MAILADMIN_CORPUS_DIR)")
    patterns = [r.pattern for r in rules.parse_rules(rules.DEFAULT_FILE.read_text()).matchers]
    assert sum(1 for p in patterns if needles.needles(p)) >= 10
    matched = 0
    for path in paths:
        message = parse(path.read_bytes())
        for text in [message.body_text, message.subject]:
            lowered = needles.lowered(text)
            for pattern in patterns:
                if pattern.search(text):
                    matched += 1
                    assert needles.may_match(pattern, lowered), (path.name, pattern.pattern)
    assert matched > 50  # the rules do fire on the corpus: the check above is not idle


def test_the_url_pattern_finds_what_the_plain_case_insensitive_one_does():
    from apps.spamfilter.message import URL

    plain = re.compile(r"\bhttps?://[^\s<>\"'()\[\]{}]+", re.IGNORECASE)
    for letter, spelt in [("h", "hH"), ("t", "tT"), ("p", "pP"), ("s", "sS\u017f")]:
        folded = re.compile(letter, re.IGNORECASE)
        assert "".join(chr(c) for c in range(0x110000) if folded.fullmatch(chr(c))) == "".join(
            sorted(spelt)
        )
    texts = [
        "see http://a.example/x, HTTPS://B.example/y and hTtP://c.example.",
        "xhttp://glued.example _http://under.example é http://after-accent.example",
        "\u017fhttp://x.example http\u017f://long-s.example (https://paren.example)",
        "http://start.example\nhttps://line.example",
    ]
    folder = CORPUS_DIR / "messages"
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        message = parse(path.read_bytes())
        texts.extend(message.text_parts + message.html_parts)
    for text in texts:
        assert [m.span() for m in URL.finditer(text)] == [m.span() for m in plain.finditer(text)]
