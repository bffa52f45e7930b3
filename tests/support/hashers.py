"""Argon2 with the smallest cost: the same algorithm and code path, a thousand times faster.

Production hashes (100 MiB, 0.2 s each) would make a suite that creates thousands of
accounts crawl; verification reads the cost from the hash, so both kinds check alike.
"""

from django.contrib.auth.hashers import Argon2PasswordHasher


class FastArgon2PasswordHasher(Argon2PasswordHasher):
    time_cost = 1
    memory_cost = 8
    parallelism = 1
