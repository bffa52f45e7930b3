"""The integration layer: PostgreSQL, Redis and real worker processes.

Run it with DATABASE_URL=postgres://... and REDIS_URL=redis://... (see README); without
them these tests skip locally and fail in CI.
"""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import connection

from tests.conftest import skip_or_fail


@pytest.fixture(autouse=True)
def _needs_postgres_and_redis(db):
    if connection.vendor != "postgresql":
        skip_or_fail("integration tests need DATABASE_URL pointing at PostgreSQL")
    if not settings.REDIS_URL:
        skip_or_fail("integration tests need REDIS_URL")
    import redis

    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2).ping()
    except redis.RedisError as exc:
        skip_or_fail(f"Redis at {settings.REDIS_URL} does not answer: {exc}")
