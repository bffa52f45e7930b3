"""The spam filter's score thresholds: spam (X-Spam-Status: Yes), quarantine, reject and
discard. The environment (MAILADMIN_SPAM_THRESHOLD_*) gives the defaults; superadmins
override them in the settings store (`spam-filter.threshold.<name>`), read like the rule
overrides through apps.config.cache: no query per message, a change applies at once in the
process that made it and elsewhere within MAILADMIN_SETTINGS_REFRESH_SECONDS.

0 turns a threshold off. The ones that are on must keep the order
spam <= quarantine <= reject <= discard; the store refuses a write that breaks it.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import DatabaseError

from apps.accounts.models import Principal
from apps.config import cache as settings_cache
from apps.config import services as settings_services
from apps.config.keys import SettingInvalid
from apps.config.selectors import setting_list
from apps.spamfilter import rules

logger = logging.getLogger(__name__)

PREFIX = "spam-filter.threshold."
NAMES = ("spam", "quarantine", "reject", "discard")  # in the order they must keep
KEY = re.compile(r"^spam-filter\.threshold\.(?P<name>[^.]+)$")
MAX_THRESHOLD = 1000.0
NUMBER = rules.NUMBER
ORDER = " <= ".join(NAMES)


@dataclass(frozen=True)
class Thresholds:
    spam: float
    quarantine: float
    reject: float
    discard: float
    overridden: frozenset[str] = frozenset()  # names set in the settings store

    def as_dict(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in NAMES}


def key(name: str) -> str:
    return f"{PREFIX}{name}"


ENVIRONMENT = tuple(f"MAILADMIN_SPAM_THRESHOLD_{name.upper()}" for name in NAMES)


def _environment() -> tuple[float, ...]:
    return tuple(getattr(settings, name) for name in ENVIRONMENT)


def defaults() -> dict[str, float]:
    """The environment's thresholds (MAILADMIN_SPAM_THRESHOLD_*)."""
    return dict(zip(NAMES, map(float, _environment()), strict=True))


def parse_value(setting: str, value: str) -> float:
    text = value.strip()
    if not NUMBER.match(text) or not 0 <= float(text) <= MAX_THRESHOLD:
        raise SettingInvalid(
            f"Invalid value for {setting}: {value} is not a number from 0 to "
            f"{MAX_THRESHOLD:g} (0 turns the threshold off)",
            field=setting,
        )
    return float(text)


def check_value(setting: str, match: re.Match, value: str) -> str:
    """The settings store's check of one `spam-filter.threshold.*` value: normalised
    ("5.50" -> "5.5")."""
    parts = KEY.match(setting)
    if parts is None or parts["name"] not in NAMES:
        raise SettingInvalid(
            f"Unknown spam-filter threshold: {setting} ({PREFIX}spam, {PREFIX}quarantine, "
            f"{PREFIX}reject or {PREFIX}discard)",
            field=setting,
        )
    return rules.score_text(parse_value(setting, value))


def _merged(values: dict[str, str], base: dict[str, float]) -> tuple[dict[str, float], set[str]]:
    """The thresholds with the stored ones over `base`; a value the checks refuse is skipped."""
    merged = dict(base)
    stored = set()
    for name in NAMES:
        text = values.get(key(name))
        if text is None:
            continue
        try:
            merged[name] = parse_value(key(name), text)
        except SettingInvalid:
            continue
        stored.add(name)
    return merged, stored


def order_problem(merged: dict[str, float], blame: set[str]) -> tuple[str, str] | None:
    """(the name to blame, the message) for the first pair of thresholds that are on and out
    of order, where one of the pair is in `blame`; None when in order."""
    on = [(name, merged[name]) for name in NAMES if merged[name] > 0]
    for i, (low, low_value) in enumerate(on):
        for high, high_value in on[i + 1 :]:
            if high_value < low_value and (low in blame or high in blame):
                name = high if high in blame else low
                return name, (
                    f"Invalid spam-filter thresholds: {high} ({high_value:g}) is below "
                    f"{low} ({low_value:g}); thresholds that are on must keep the order "
                    f"{ORDER} (0 turns one off)"
                )
    return None


def check_order(values: dict[str, str], touched: set[str]) -> None:
    """The store's check of the thresholds together, as a write leaves them (stored values
    over the environment's): only pairs where the write touched one side are judged, so a
    mis-ordered environment does not block unrelated writes."""
    merged, _ = _merged(values, defaults())
    blame = {
        name
        for name in NAMES
        if key(name) in touched or any(key(name).startswith(t) for t in touched)
    }
    problem = order_problem(merged, blame)
    if problem is not None:
        name, message = problem
        raise SettingInvalid(message, field=key(name))


class _Loaded:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        # (settings generation, environment defaults, thresholds in force)
        self.current: tuple[int, tuple[float, ...], Thresholds] | None = None
        self.reported: Thresholds | None = None


_loaded = _Loaded()


def current() -> Thresholds:
    """The thresholds in force: the store's over the environment's (no query per call)."""
    base_key = _environment()
    try:
        generation, values = settings_cache.values_under(PREFIX)
    except DatabaseError as exc:
        # Mail keeps flowing on the thresholds last in force rather than failing the scan.
        logger.warning("Cannot read the spam-filter thresholds: %s", exc)
        loaded = _loaded.current
        if loaded is not None:
            return loaded[2]
        return Thresholds(**defaults())
    loaded = _loaded.current
    if loaded is not None and loaded[0] == generation and loaded[1] == base_key:
        return loaded[2]
    base = defaults()
    merged, stored = _merged(values, base)
    thresholds = Thresholds(**merged, overridden=frozenset(stored))
    _loaded.current = (generation, base_key, thresholds)
    return thresholds


def reload_report() -> dict[str, Any]:
    """For GET /api/update/spam-filter: the thresholds in force, where each comes from,
    and what changed since this process's previous reload."""
    with _loaded.lock:
        now = current()
        before = _loaded.reported
        _loaded.reported = now
    changed = {}
    if before is not None:
        for name in NAMES:
            if getattr(before, name) != getattr(now, name):
                changed[name] = {"from": getattr(before, name), "to": getattr(now, name)}
    return {
        "thresholds": now.as_dict(),
        "thresholdOverrides": sorted(now.overridden, key=NAMES.index),
        "thresholdsChanged": changed,
    }


def threshold_set(*, actor: Principal, name: str, value: str) -> None:
    """Set (or with an empty value, drop back to the environment's) one threshold, through
    the settings store's own service: superadmins only, checked, audited."""
    if name not in NAMES:
        raise SettingInvalid(f"Unknown spam-filter threshold: {key(name)}", field=key(name))
    change: settings_services.Change
    if value.strip() == "":
        change = settings_services.Delete(keys=[key(name)])
    else:
        change = settings_services.Insert(values=[(key(name), value.strip())])
    settings_services.settings_update(actor=actor, changes=[change])


@dataclass(frozen=True)
class ThresholdRow:
    """One threshold as the rules editor shows it."""

    name: str
    default: float  # the environment's
    stored: str | None  # the settings store's value, None when the environment's holds

    @property
    def effective(self) -> float:
        if self.stored is None:
            return self.default
        try:
            return parse_value(key(self.name), self.stored)
        except SettingInvalid:
            return self.default

    @property
    def key(self) -> str:
        return key(self.name)

    @property
    def dom_id(self) -> str:
        return f"threshold-{self.name}"


def threshold_rows(*, actor: Principal) -> list[ThresholdRow]:
    """The four thresholds with their overrides (one query), superadmins only."""
    stored = dict(setting_list(actor=actor, prefix=PREFIX).values_list("key", "value"))
    base = defaults()
    return [ThresholdRow(name, base[name], stored.get(key(name))) for name in NAMES]


def threshold_row(*, actor: Principal, name: str) -> ThresholdRow | None:
    return next((r for r in threshold_rows(actor=actor) if r.name == name), None)
