"""scan(): what the SMTP listeners call. Tags, scores, the headers, timeouts."""

from __future__ import annotations

import pytest

from apps.spamfilter.services import scan

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
