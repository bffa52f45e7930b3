from __future__ import annotations

import pytest

from apps.spamfilter import lookups


@pytest.fixture(autouse=True)
def _fresh_dns_cache():
    """Answers are kept between scans; a test's zones are its own."""
    lookups.cache_clear()
    yield
    lookups.cache_clear()
