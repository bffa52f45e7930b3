"""The rules file: every computed tag has a rule, validation names what is wrong, diffs."""

from __future__ import annotations

import pytest

from apps.spamfilter import checks, rules

BASE = 'version: "1"\nrules:\n'


def test_it_has_a_rule_for_every_tag_the_checks_give():
    ruleset = rules.parse_rules(rules.DEFAULT_FILE.read_text())
    missing = sorted(tag for tag in checks.TAGS if ruleset.find(tag.rstrip("*")) is None)
    assert missing == []
    assert ruleset.find("X_HDR_CONTENT_TYPE").tag == "X_HDR_*"


def test_it_covers_every_tag_of_the_specs_classify_example():
    ruleset = rules.parse_rules(rules.DEFAULT_FILE.read_text())
    example = [
        "FROM_NO_DN", "MISSING_DATE", "MISSING_MID", "MISSING_MIME_VERSION", "FORGED_SENDER",
        "FORGED_RECIPIENTS", "HELO_NORES_A_OR_MX", "FROMHOST_NORES_A_OR_MX",
        "HELO_IPREV_MISMATCH", "RCVD_COUNT_ZERO", "RCVD_TLS_LAST", "TO_DN_NONE",
        "TO_DOM_EQ_FROM_DOM", "FROM_NEQ_ENV_FROM", "SINGLE_SHORT_PART", "RCPT_COUNT_ONE",
        "AUTH_NA", "SPF_NA", "DKIM_NA", "DMARC_NA", "ARC_NA", "X_HDR_TO", "X_HDR_FROM",
        "RBL_SENDERSCORE_REPUT_BLOCKED",
    ]  # fmt: skip
    assert [tag for tag in example if ruleset.find(tag) is None] == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: [", "not valid YAML"),
        ("rules: []\n", "`version` is missing"),
        (BASE + "  - {tag: A, score: high}\n", "score must be a number"),
        (BASE + "  - {tag: A, score: 1}\n  - {tag: A, score: 2}\n", "defined twice"),
        (BASE + "  - {tag: A, score: 1, action: bounce}\n", "action must be one of"),
        (BASE + "  - {tag: A, score: 1, body: '(unclosed'}\n", "bad pattern"),
        (BASE + "  - {tag: A, score: 1, header: Subject}\n", "needs header and pattern"),
        (BASE + "  - {tag: A, score: 1, colour: red}\n", "unknown field colour"),
    ],
)
def test_it_names_what_is_wrong_with_a_rules_file(text, message):
    with pytest.raises(rules.RulesError) as caught:
        rules.parse_rules(text)
    assert message in caught.value.message


def test_it_lists_added_removed_and_changed_rules():
    old = rules.parse_rules(BASE + "  - {tag: A, score: 1}\n  - {tag: B, score: 1}\n")
    new = rules.parse_rules(
        'version: "2"\nrules:\n  - {tag: A, score: 1, enabled: false}\n  - {tag: C, score: 1}\n'
    )
    changes = rules.diff(old, new)
    assert (changes["added"], changes["removed"], list(changes["changed"])) == (
        ["C"],
        ["B"],
        ["A"],
    )
    assert changes["changed"]["A"]["to"]["enabled"] is False
