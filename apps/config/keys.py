"""What a setting key may look like, and the rules other apps register for their keys'
values (the spam filter registers `spam-filter.rule.<TAG>.score|enabled`), and the checks
of keys that must agree with each other (the spam thresholds' order).

Pure functions: no database, so the API, the console and reload share one set of checks
and one set of messages.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from apps.config.models import MAX_KEY, MAX_VALUE
from mailadmin.errors import ValidationFailed

NAME = r"[A-Za-z0-9_*-]+"
KEY = re.compile(rf"^{NAME}(?:\.{NAME})*$")
PREFIX = re.compile(rf"^(?:{NAME}\.)*(?:{NAME})?$")
KEY_RULE = 'names of letters, digits, "-", "_" and "*", joined by dots'


class SettingInvalid(ValidationFailed):
    """A key or value the store refuses; `field` is the key."""


@dataclass(frozen=True)
class KeyRule:
    """Values under `pattern` are checked (and normalised) by `check(key, match, value)`,
    which raises SettingInvalid with the message a person reads."""

    pattern: re.Pattern
    check: Callable[[str, re.Match, str], str]


@dataclass(frozen=True)
class GroupRule:
    """Keys under `prefix` that must agree with each other: `check(stored, touched)` sees
    every value under the prefix as a write would leave it and the keys the write touched,
    and raises SettingInvalid to refuse the whole write."""

    prefix: str
    check: Callable[[dict[str, str], set[str]], None]


_rules: list[KeyRule] = []
_groups: list[GroupRule] = []


def register(pattern: str, check: Callable[[str, re.Match, str], str]) -> None:
    _rules.append(KeyRule(re.compile(pattern), check))


def register_group(prefix: str, check: Callable[[dict[str, str], set[str]], None]) -> None:
    _groups.append(GroupRule(prefix, check))


def groups() -> list[GroupRule]:
    return list(_groups)


def check_key(key: str) -> str:
    if not isinstance(key, str) or len(key) > MAX_KEY or not KEY.match(key):
        shown = key if isinstance(key, str) else repr(key)
        raise SettingInvalid(f"Invalid key: {shown} ({KEY_RULE})", field="key")
    return key


def check_prefix(prefix: str) -> str:
    if len(prefix) > MAX_KEY or not PREFIX.match(prefix):
        raise SettingInvalid(f"Invalid prefix: {prefix} ({KEY_RULE})", field="prefix")
    return prefix


def check_value(key: str, value: str) -> str:
    """The value to store for `key` (normalised by its rule), or SettingInvalid."""
    check_key(key)
    if len(value) > MAX_VALUE:
        raise SettingInvalid(
            f"Invalid value for {key}: longer than {MAX_VALUE} characters", field=key
        )
    if "\x00" in value:
        raise SettingInvalid(f"Invalid value for {key}: null characters are not allowed", field=key)
    for rule in _rules:
        match = rule.pattern.match(key)
        if match:
            return rule.check(key, match, value)
    return value


def normalise_prefix(prefix: str) -> str:
    """The management API's prefixes name a group: `server.listener` means `server.listener.`."""
    return prefix if not prefix or prefix.endswith(".") else f"{prefix}."


def is_used(key: str) -> bool:
    """Whether a registered rule covers `key` (something in mailadmin reads it)."""
    return any(rule.pattern.match(key) for rule in _rules)
