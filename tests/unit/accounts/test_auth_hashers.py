"""Hashes imported from other mail servers verify with known vectors and re-hash to Argon2."""

import pytest
from django.contrib.auth.hashers import check_password, identify_hasher, make_password

from apps.accounts.auth.hashers import (
    import_password_hash,
    looks_like_crypt_hash,
    sha_crypt,
    to_django_encoded,
)

PASSWORD = "Imported p4ss!"
# Generated with `openssl passwd -6|-5 -salt saltsalt 'Imported p4ss!'` and Python's bcrypt.
SHA512 = (
    "$6$saltsalt$zgvBYNyMxVSHI4.BnwaGU5Rm53NK7cqA3qgRN.tggf8EZBbzCWBfeU0rHgwfwBEmIg."
    "gqGG3nKWDUdACDhdXU/"
)
SHA256 = "$5$saltsalt$Hd4Z9AWTYo4H7qv2xlEXf.ri5YnU0UbYvgsLmhFUn3A"
BCRYPT = "$2b$05$MrXW9DQKtOv7HBg/nrOVc.chCQauRSmf9jnLWQXfPrp933HZR9HsC"

# The test vectors of the SHA-crypt specification (Drepper, 2008).
SPEC_VECTORS = [
    (
        "$6$saltstring",
        "Hello world!",
        None,
        "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEd"
        "FCoEOfaS35inz1",
    ),
    (
        "$6$saltstringsaltstring",
        "Hello world!",
        10000,
        "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0"
        "Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v.",
    ),
    (
        "$5$saltstring",
        "Hello world!",
        None,
        "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5",
    ),
    (
        "$5$saltstringsaltstring",
        "Hello world!",
        10000,
        "$5$rounds=10000$saltstringsaltst$3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA",
    ),
    (
        "$6$roundstoolow",
        "the minimum number is still observed",
        10,
        "$6$rounds=1000$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1xhLsPuWGsUSklZt58jaTf"
        "F4ZEQpyUNGc0dqbpBYYBaHHrsX.",
    ),
]


@pytest.mark.parametrize(("setting", "password", "rounds", "expected"), SPEC_VECTORS)
def test_it_computes_the_specification_vectors(setting, password, rounds, expected):
    variant, salt = setting[1], setting[3:]
    assert sha_crypt(password.encode(), salt, variant=variant, rounds=rounds) == expected


@pytest.mark.parametrize(
    ("raw", "prefix"),
    [(SHA512, "sha512_crypt"), (SHA256, "sha256_crypt"), (BCRYPT, "bcrypt")],
)
def test_it_verifies_imported_hashes_with_their_prefix(raw, prefix):
    encoded = import_password_hash(raw)
    assert encoded == f"{prefix}${raw}"
    assert identify_hasher(encoded).algorithm == prefix
    assert check_password(PASSWORD, encoded)
    assert not check_password("wrong", encoded)
    assert not check_password(PASSWORD + " ", encoded)


@pytest.mark.parametrize("variant", ["$2y$", "$2a$"])
def test_it_verifies_php_and_old_bcrypt_variants(variant):
    raw = variant + BCRYPT[4:]
    assert check_password(PASSWORD, import_password_hash(raw))


def test_it_truncates_bcrypt_at_72_bytes_like_the_servers_that_wrote_it():
    import bcrypt

    raw = bcrypt.hashpw(b"a" * 72, bcrypt.gensalt(4)).decode()
    assert check_password("a" * 80, import_password_hash(raw))


def test_it_reports_that_imported_hashes_must_be_rehashed():
    setter_calls = []
    check_password(PASSWORD, import_password_hash(SHA512), setter=setter_calls.append)
    assert setter_calls == [PASSWORD]


def test_it_adds_the_prefix_to_a_raw_stored_hash():
    assert to_django_encoded(SHA256) == f"sha256_crypt${SHA256}"
    argon = make_password("x")
    assert to_django_encoded(argon) == argon
    assert to_django_encoded("$9$unknown") == "$9$unknown"


def test_it_leaves_plain_passwords_alone():
    assert import_password_hash("just a password") is None
    assert import_password_hash("$6$broken") is None
    assert looks_like_crypt_hash("$6$broken")
    assert not looks_like_crypt_hash("just a password")


def test_it_refuses_absurd_round_counts():
    raw = "$6$rounds=999999999$salt$" + "a" * 86
    assert not check_password(PASSWORD, import_password_hash(raw))


def test_new_passwords_use_argon2():
    assert make_password(PASSWORD).startswith("argon2$")
