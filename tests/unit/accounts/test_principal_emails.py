"""Addresses are stored lower-case with punycode domains and shown in Unicode."""

import pytest

from apps.accounts.emails import (
    InvalidAddress,
    display_address,
    normalize_address,
    normalize_domain,
    search_variants,
)


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("Jane.Doe@Example.ORG", "jane.doe@example.org"),
        ("  jane@example.org  ", "jane@example.org"),
        ("jane@Bücher.example", "jane@xn--bcher-kva.example"),
        ("info@münchen.de", "info@xn--mnchen-3ya.de"),
        ("a+tag@sub.example.org", "a+tag@sub.example.org"),
        ("jane@example.org.", "jane@example.org"),
    ],
)
def test_it_normalizes_addresses(raw, stored):
    assert normalize_address(raw) == stored


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "jane",
        "@example.org",
        "jane@",
        "jane@localhost",
        "ja ne@example.org",
        "jane@exa mple.org",
        ".jane@example.org",
        "ja..ne@example.org",
        "jane@-example.org",
        "jane@example.123",
        "jane@" + "a" * 64 + ".org",
        "j" * 65 + "@example.org",
        'ja"ne@example.org',
    ],
)
def test_it_rejects_bad_addresses_naming_them(raw):
    with pytest.raises(InvalidAddress) as error:
        normalize_address(raw)
    assert error.value.message == f"'{raw}' is not a valid email address."


def test_it_shows_stored_addresses_in_unicode():
    assert display_address("jane@xn--bcher-kva.example") == "jane@bücher.example"
    assert display_address("jane@example.org") == "jane@example.org"


def test_it_normalizes_domain_names():
    assert normalize_domain("Bücher.Example") == "xn--bcher-kva.example"
    with pytest.raises(InvalidAddress) as error:
        normalize_domain("not a domain")
    assert error.value.message == "'not a domain' is not a valid domain name."


def test_it_searches_for_the_punycode_of_a_unicode_search():
    assert search_variants("Bücher") == {"bücher", "xn--bcher-kva"}
    assert search_variants("jane@bücher.example") == {
        "jane@bücher.example",
        "jane@xn--bcher-kva.example",
    }
    assert search_variants("jane") == {"jane"}
