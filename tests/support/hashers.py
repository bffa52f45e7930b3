"""Argon2 with the smallest cost: the same algorithm and code path, a thousand times faster.

Production hashes (100 MiB, 0.2 s each) would make a suite that creates thousands of
accounts crawl; verification reads the cost from the hash, so both kinds check alike.
"""

import pytest
from django.contrib.auth.hashers import Argon2PasswordHasher


class FastArgon2PasswordHasher(Argon2PasswordHasher):
    time_cost = 1
    memory_cost = 8
    parallelism = 1


@pytest.fixture
def hashings(monkeypatch) -> list[str]:
    """Every Argon2 hash computed (to verify or to store), in order, in any thread (the
    SMTP listeners check passwords in their own). Checks go through Django's Argon2 hasher
    (it reads the cost from the hash), new hashes through the fast subclass: counting on
    the base class sees both."""
    done: list[str] = []
    verify, encode = Argon2PasswordHasher.verify, Argon2PasswordHasher.encode

    def counted_verify(self, password, encoded):
        done.append("verify")
        return verify(self, password, encoded)

    def counted_encode(self, password, salt):
        done.append("encode")
        return encode(self, password, salt)

    monkeypatch.setattr(Argon2PasswordHasher, "verify", counted_verify)
    monkeypatch.setattr(Argon2PasswordHasher, "encode", counted_encode)
    return done
