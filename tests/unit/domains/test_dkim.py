"""DKIM keys: generation, the published record, and a real sign-and-verify round trip
through the live DNS server fixture."""

from __future__ import annotations

import base64
from datetime import date

import dns.exception
import dns.resolver
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from apps.domains import dkim, records
from mailadmin.dns import make_resolver
from tests.conftest import corpus_file, skip_or_fail


def _corpus_message() -> bytes:
    return corpus_file("messages", "ham", "spamassassin-t", "nice-016").read_bytes()


def _needs_nacl() -> None:
    try:
        import nacl.signing  # noqa: F401
    except ImportError:
        skip_or_fail("PyNaCl is needed by dkimpy for Ed25519")


def _live_dnsfunc(name: bytes, timeout: int = 5) -> bytes | None:
    """dkimpy's DNS hook, answered by whatever make_resolver() points at."""
    try:
        answer = make_resolver().resolve(name.decode("ascii"), "TXT")
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.exception.Timeout):
        return None
    return b"".join(answer[0].strings)


def _publish(dns_server, domain: str, selector: str, pair: dkim.KeyPair) -> None:
    dns_server.set_zone(
        records.dkim_name(domain, selector),
        {"TXT": [dkim.txt_record(pair.algorithm, pair.public_key)]},
    )


def test_it_generates_an_rsa_2048_key_published_as_spki():
    pair = dkim.generate(dkim.RSA)
    private = serialization.load_pem_private_key(pair.private_pem.encode(), password=None)
    assert isinstance(private, rsa.RSAPrivateKey)
    assert private.key_size == 2048
    assert pair.private_pem.startswith("-----BEGIN PRIVATE KEY-----")  # PKCS#8
    public = serialization.load_der_public_key(base64.b64decode(pair.public_key))
    assert public.public_numbers() == private.public_key().public_numbers()


def test_it_generates_an_ed25519_key_published_as_32_raw_bytes():
    pair = dkim.generate(dkim.ED25519)
    private = serialization.load_pem_private_key(pair.private_pem.encode(), password=None)
    assert isinstance(private, ed25519.Ed25519PrivateKey)
    raw = base64.b64decode(pair.public_key)
    assert len(raw) == 32
    assert raw == private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


def test_it_builds_the_txt_record_and_keeps_the_private_key_out_of_repr():
    pair = dkim.generate(dkim.ED25519)
    assert dkim.txt_record("ed25519", pair.public_key) == (
        f"v=DKIM1; k=ed25519; h=sha256; p={pair.public_key}"
    )
    assert "PRIVATE" not in repr(pair)


def test_it_rejects_an_unknown_algorithm():
    with pytest.raises(ValueError):
        dkim.generate("dsa")


def test_it_names_default_selectors_by_month_and_algorithm_uniquely():
    today = date(2026, 11, 3)
    assert dkim.default_selector(dkim.RSA, today=today) == "202611r"
    assert dkim.default_selector(dkim.ED25519, today=today) == "202611e"
    assert dkim.default_selector(dkim.RSA, today=today, taken={"202611r"}) == "202611r2"
    assert dkim.default_selector(dkim.RSA, today=today, taken={"202611r", "202611r2"}) == "202611r3"


@pytest.mark.parametrize(
    ("selector", "valid"),
    [
        ("202611r", True),
        ("mail-2", True),
        ("a" * 63, True),
        ("", False),
        ("a" * 64, False),
        ("-x", False),
        ("x-", False),
        ("a.b", False),
        ("sél", False),
        ("a_b", False),
    ],
)
def test_it_validates_selectors_as_dns_labels(selector, valid):
    assert dkim.is_valid_selector(selector) is valid


@pytest.mark.parametrize("algorithm", [dkim.RSA, dkim.ED25519])
def test_it_signs_a_corpus_message_that_verifies_over_live_dns(dns_server, algorithm):
    if algorithm == dkim.ED25519:
        _needs_nacl()
    message = _corpus_message()
    pair = dkim.generate(algorithm)
    _publish(dns_server, "a.example", "202611x", pair)

    header = dkim.sign(message, domain="a.example", selector="202611x", key=pair)
    signed = header + message

    assert header.startswith(b"DKIM-Signature:")
    expected = b"a=ed25519-sha256" if algorithm == dkim.ED25519 else b"a=rsa-sha256"
    assert expected in header
    assert dkim.verify(signed, dnsfunc=_live_dnsfunc) is True
    assert any("202611x._domainkey.a.example" in name.lower() for name, _ in dns_server.queries)


@pytest.mark.parametrize("algorithm", [dkim.RSA, dkim.ED25519])
def test_it_fails_verification_of_a_tampered_body(dns_server, algorithm):
    if algorithm == dkim.ED25519:
        _needs_nacl()
    message = _corpus_message()
    pair = dkim.generate(algorithm)
    _publish(dns_server, "a.example", "sel1", pair)
    signed = dkim.sign(message, domain="a.example", selector="sel1", key=pair) + message

    tampered = signed.replace(b"\n\n", b"\n\nP.S. send money.\n", 1)
    assert tampered != signed
    assert dkim.verify(tampered, dnsfunc=_live_dnsfunc) is False


def test_it_fails_verification_when_the_published_key_is_another(dns_server):
    message = _corpus_message()
    pair, other = dkim.generate(dkim.RSA), dkim.generate(dkim.RSA)
    _publish(dns_server, "a.example", "sel1", other)
    signed = dkim.sign(message, domain="a.example", selector="sel1", key=pair) + message
    assert dkim.verify(signed, dnsfunc=_live_dnsfunc) is False
