"""Each process's copy of the settings it reads on hot paths (the spam filter's rule
overrides), kept by generation: the store's Generation row changes with every write.

`values_under(prefix)` answers from memory; it asks the database for the generation at most
once per MAILADMIN_SETTINGS_REFRESH_SECONDS, and re-reads a prefix only when the generation
moved. A write in this process drops the copy at once (`invalidate`), so what the API or
console just changed applies to the next message here; other processes (SMTP listeners,
workers, other web workers) follow within the refresh interval, without a restart.
"""

from __future__ import annotations

import threading
import time

from django.conf import settings

from apps.config.models import Generation, Setting


class _Cache:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.generation: int | None = None
        self.checked_at = 0.0
        self.prefixes: dict[str, dict[str, str]] = {}


_cache = _Cache()


def generation_read() -> int:
    return Generation.objects.filter(pk=1).values_list("value", flat=True).first() or 0


def _fresh_generation() -> int:
    now = time.monotonic()
    if (
        _cache.generation is not None
        and now - _cache.checked_at < settings.MAILADMIN_SETTINGS_REFRESH_SECONDS
    ):
        return _cache.generation
    generation = generation_read()
    with _cache.lock:
        if generation != _cache.generation:
            _cache.prefixes = {}
            _cache.generation = generation
        _cache.checked_at = now
    return generation


def values_under(prefix: str) -> tuple[int, dict[str, str]]:
    """(generation, {key: value}) of every stored key starting with `prefix`."""
    generation = _fresh_generation()
    prefixes = _cache.prefixes
    values = prefixes.get(prefix)
    if values is None:
        values = dict(Setting.objects.filter(key__startswith=prefix).values_list("key", "value"))
        with _cache.lock:
            if _cache.generation == generation:
                _cache.prefixes[prefix] = values
    return generation, values


def invalidate() -> None:
    """Forget the copy: the next read asks the database (after a write by this process)."""
    with _cache.lock:
        _cache.generation = None
        _cache.prefixes = {}
        _cache.checked_at = 0.0
