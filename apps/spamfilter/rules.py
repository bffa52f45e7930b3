"""The rules file (rules.yaml beside this module, or MAILADMIN_SPAM_RULES_FILE): loading,
validation, administrators' overrides from the settings store, and what changed between
two versions.

Every process reads the file on first use and again whenever its modification time
changes, so an edit reaches every web process and worker without a restart;
GET /api/update/spam-filter reloads it at once and reports the difference.

Overrides are settings `spam-filter.rule.<TAG>.score` (a number from -100 to 100) and
`spam-filter.rule.<TAG>.enabled` (true/false), merged over the file's rule of that tag.
They come from apps.config.cache, which asks the database only when the store changed
(checked at most once per MAILADMIN_SETTINGS_REFRESH_SECONDS), never once per message.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings
from django.db import DatabaseError

from apps.config import cache as settings_cache
from apps.config.keys import SettingInvalid
from mailadmin.errors import ServiceError

logger = logging.getLogger(__name__)

DEFAULT_FILE = Path(__file__).with_name("rules.yaml")
TAG_NAME = re.compile(r"^[A-Z0-9_]{1,64}\*?$")
ACTIONS = ("allow", "quarantine", "reject", "discard")
FIELDS = {"tag", "score", "enabled", "action", "description", "report", "header", "pattern", "body"}
OVERRIDE_PREFIX = "spam-filter.rule."
OVERRIDE_KEY = re.compile(r"^spam-filter\.rule\.(?P<tag>[^.]+)\.(?P<field>[^.]+)$")
OVERRIDE_FIELDS = ("score", "enabled")
MAX_SCORE = 100.0
# ASCII digits only: float() also reads other scripts' digits ("\u0663" is three).
NUMBER = re.compile(r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$")


class RulesError(ServiceError):
    """The rules file cannot be used; the rules in force stay as they were."""


@dataclass(frozen=True)
class Rule:
    tag: str
    score: float
    enabled: bool = True
    action: str = "allow"
    description: str = ""
    report: bool = True
    header: str = ""
    pattern: re.Pattern | None = None  # header pattern, or body pattern when no header
    body: bool = False

    @property
    def family(self) -> bool:
        return self.tag.endswith("*")

    def summary(self) -> dict[str, Any]:
        return {"score": self.score, "enabled": self.enabled, "action": self.action}


@dataclass(frozen=True)
class RuleSet:
    version: str
    rules: dict[str, Rule]
    families: tuple[Rule, ...]  # longest prefix first
    matchers: tuple[Rule, ...]  # rules with a pattern, enabled ones only
    # {tag: {"score": 2.0, "enabled": False}}: what the settings store changed of the file
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    # the file's rules these were merged from (None: these are the file's own)
    file: RuleSet | None = field(default=None, compare=False, repr=False)

    def find(self, tag: str) -> Rule | None:
        rule = self.rules.get(tag)
        if rule is not None:
            return rule
        for family in self.families:
            if tag.startswith(family.tag[:-1]):
                return family
        return None


def rules_path() -> Path:
    configured = settings.MAILADMIN_SPAM_RULES_FILE
    return Path(configured) if configured else DEFAULT_FILE


def parse_rules(text: str, *, source: str = "rules file") -> RuleSet:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RulesError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("rules"), list):
        raise RulesError(f"{source}: expected a mapping with `version` and a `rules` list")
    version = str(document.get("version") or "").strip()
    if not version:
        raise RulesError(f"{source}: `version` is missing")
    rules: dict[str, Rule] = {}
    for index, entry in enumerate(document["rules"], start=1):
        rule = _rule(entry, f"{source}: rule {index}")
        if rule.tag in rules:
            raise RulesError(f"{source}: rule {index}: tag {rule.tag} is defined twice")
        rules[rule.tag] = rule
    return _ruleset(version, rules)


def _ruleset(
    version: str,
    rules: dict[str, Rule],
    overrides: dict[str, dict[str, Any]] | None = None,
    file: RuleSet | None = None,
) -> RuleSet:
    families = tuple(sorted((r for r in rules.values() if r.family), key=lambda r: -len(r.tag)))
    matchers = tuple(r for r in rules.values() if r.pattern is not None and r.enabled)
    return RuleSet(version, rules, families, matchers, overrides or {}, file)


def _rule(entry: Any, where: str) -> Rule:
    if not isinstance(entry, dict):
        raise RulesError(f"{where}: expected a mapping")
    unknown = set(entry) - FIELDS
    if unknown:
        raise RulesError(f"{where}: unknown field {sorted(unknown)[0]}")
    tag = entry.get("tag")
    if not isinstance(tag, str) or not TAG_NAME.match(tag):
        raise RulesError(f"{where}: tag must be capitals, digits and _ (got {tag!r})")
    score = entry.get("score")
    if isinstance(score, bool) or not isinstance(score, (int, float)):
        raise RulesError(f"{where} ({tag}): score must be a number")
    enabled = entry.get("enabled", True)
    report = entry.get("report", True)
    if not isinstance(enabled, bool) or not isinstance(report, bool):
        raise RulesError(f"{where} ({tag}): enabled and report are true or false")
    action = entry.get("action", "allow")
    if action not in ACTIONS:
        raise RulesError(f"{where} ({tag}): action must be one of {', '.join(ACTIONS)}")
    header, pattern, body = entry.get("header", ""), entry.get("pattern"), entry.get("body")
    compiled = None
    if header or pattern is not None or body is not None:
        if body is not None and (header or pattern is not None):
            raise RulesError(f"{where} ({tag}): use either body or header + pattern")
        if body is None and not (isinstance(header, str) and header and pattern is not None):
            raise RulesError(f"{where} ({tag}): a header rule needs header and pattern")
        source = body if body is not None else pattern
        if not isinstance(source, str):
            raise RulesError(f"{where} ({tag}): the pattern must be text")
        try:
            compiled = re.compile(source, re.IGNORECASE)
        except re.error as exc:
            raise RulesError(f"{where} ({tag}): bad pattern: {exc}") from None
        if tag.endswith("*"):
            raise RulesError(f"{where} ({tag}): a pattern rule cannot be a family")
    return Rule(
        tag=tag,
        score=float(score),
        enabled=enabled,
        action=action,
        description=str(entry.get("description", "")),
        report=report,
        header=header or "",
        pattern=compiled,
        body=body is not None,
    )


def _differs(a: Rule, b: Rule) -> bool:
    return (a.summary(), a.pattern and a.pattern.pattern, a.header, a.report) != (
        b.summary(),
        b.pattern and b.pattern.pattern,
        b.header,
        b.report,
    )


def diff(old: RuleSet | None, new: RuleSet) -> dict[str, Any]:
    """What a reload changed: tags added, removed, and changed (score/enabled/action) in
    the rules in force. A rule with an override whose entry in the file changed is in
    `changed` too, even when the override keeps it the same in force: its `file` says
    what the file changed under the override (from/to as ever: the rules in force)."""
    before = old.rules if old else {}
    file_before = (old.file or old).rules if old else {}
    file_now = (new.file or new).rules
    overridden = set(old.overrides if old else ()) | set(new.overrides)
    changed = {}
    for tag in sorted(set(before) & set(new.rules)):
        a, b = before[tag], new.rules[tag]
        entry = {"from": a.summary(), "to": b.summary()}
        fa, fb = file_before.get(tag), file_now.get(tag)
        if tag in overridden and fa is not None and fb is not None and _differs(fa, fb):
            entry["file"] = {"from": fa.summary(), "to": fb.summary()}
        if _differs(a, b) or "file" in entry:
            changed[tag] = entry
    return {
        "version": new.version,
        "previousVersion": old.version if old else None,
        "rules": len(new.rules),
        "added": sorted(set(new.rules) - set(before)),
        "removed": sorted(set(before) - set(new.rules)),
        "changed": changed,
        "overrides": {tag: dict(values) for tag, values in sorted(new.overrides.items())},
    }


class _Loaded:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.key: tuple[str, float, int] | None = None
        self.rules: RuleSet | None = None  # the file's rules
        # (file rules, settings generation, merged rules): the rules in force
        self.merged: tuple[RuleSet, int, RuleSet] | None = None
        # what the last reload reported against (the merged rules then)
        self.reported: RuleSet | None = None
        # why the file on disk was last refused (None: the one read is in force)
        self.refused: str | None = None


_loaded = _Loaded()


def _load(path: Path) -> tuple[RuleSet, tuple[str, float, int]]:
    try:
        stat = os.stat(path)
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesError(f"cannot read the rules file {path}: {exc.strerror}") from None
    return parse_rules(text, source=path.name), (str(path), stat.st_mtime, stat.st_size)


def bundled() -> RuleSet:
    """The file's rules, re-read when the file changed (a bad edit keeps the old ones)."""
    path = rules_path()
    try:
        stat = os.stat(path)
        key = (str(path), stat.st_mtime, stat.st_size)
    except OSError:
        key = None
    if _loaded.rules is not None and (key is None or key == _loaded.key):
        return _loaded.rules
    with _loaded.lock:
        if _loaded.rules is None or key != _loaded.key:
            try:
                _loaded.rules, _loaded.key = _load(path)
                _loaded.refused = None
            except RulesError as exc:
                _loaded.refused = exc.message
                if _loaded.rules is None:
                    raise
                _loaded.key = key  # keep the rules in force; reload() reports the error
    return _loaded.rules


def refused() -> str | None:
    """Why the rules file on disk is not the one in force (a bad edit), else None."""
    try:
        bundled()
    except RulesError as exc:
        return exc.message
    return _loaded.refused


def apply_overrides(base: RuleSet, values: dict[str, str]) -> RuleSet:
    """The file's rules with the store's overrides. One naming no rule of the file, or with
    a value the checks refuse (written around them), is ignored; Reload Settings lists it."""
    overrides: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        match = OVERRIDE_KEY.match(key)
        if match is None or match["tag"] not in base.rules:
            continue
        try:
            parsed = _override_value(key, match["field"], value)
        except SettingInvalid:
            continue
        overrides.setdefault(match["tag"], {})[match["field"]] = parsed
    if not overrides:
        return base
    rules = dict(base.rules)
    for tag, changes in overrides.items():
        rules[tag] = replace(rules[tag], **changes)
    return _ruleset(base.version, rules, overrides, base)


def _overrides() -> tuple[int, dict[str, str]]:
    try:
        return settings_cache.values_under(OVERRIDE_PREFIX)
    except DatabaseError as exc:
        # Mail keeps flowing on the rules last in force rather than failing the scan.
        logger.warning("Cannot read the spam-filter rule overrides: %s", exc)
        merged = _loaded.merged
        return (0, {}) if merged is None else (merged[1], _as_values(merged[2]))


def _as_values(ruleset: RuleSet) -> dict[str, str]:
    return {
        override_key(tag, name): str(value).lower() if isinstance(value, bool) else str(value)
        for tag, changes in ruleset.overrides.items()
        for name, value in changes.items()
    }


def current() -> RuleSet:
    """The rules in force: the file's, with the settings store's overrides merged over."""
    base = bundled()
    generation, values = _overrides()
    merged = _loaded.merged
    if merged is not None and merged[0] is base and merged[1] == generation:
        return merged[2]
    rules = apply_overrides(base, values)
    _loaded.merged = (base, generation, rules)
    return rules


def reload() -> dict[str, Any]:
    """Read the file and the overrides now; answers the difference from what the previous
    reload of this process reported (its first: from the rules it first ran with).
    RulesError leaves the rules unchanged."""
    with _loaded.lock:
        try:
            new, key = _load(rules_path())
        except RulesError as exc:
            _loaded.refused = exc.message
            raise
        _loaded.refused = None
        previous = _loaded.reported or (_loaded.merged[2] if _loaded.merged else _loaded.rules)
        _loaded.rules, _loaded.key = new, key
    settings_cache.invalidate()
    rules = current()
    _loaded.reported = rules
    return diff(previous, rules)


# --- overrides in the settings store ---------------------------------------------------------


def override_key(tag: str, name: str) -> str:
    return f"{OVERRIDE_PREFIX}{tag}.{name}"


def _override_value(key: str, name: str, value: str) -> float | bool:
    text = value.strip().lower()
    if name == "score":
        if not NUMBER.match(text) or abs(float(text)) > MAX_SCORE:
            raise SettingInvalid(
                f"Invalid value for {key}: {value} is not a number from "
                f"{-MAX_SCORE:g} to {MAX_SCORE:g}",
                field=key,
            )
        return float(text)
    if text not in ("true", "false"):
        raise SettingInvalid(f"Invalid value for {key}: {value} is not true or false", field=key)
    return text == "true"


def score_text(value: float) -> str:
    """A score as the store keeps it: repr()'s shortest digits ("2.50" -> "2.5") but never
    in exponent form, which NUMBER (reading it back) refuses ("1e-05" was stored, then
    ignored by every scan), and no negative zero."""
    text = format(Decimal(repr(value + 0.0)), "f")
    return text if "." in text else f"{text}.0"


def check_override(key: str, match: re.Match, value: str) -> str:
    """The settings store's check of `spam-filter.rule.*` keys (see apps.py): the value
    to store, normalised ("2.50" -> "2.5", "TRUE" -> "true")."""
    parts = OVERRIDE_KEY.match(key)
    if parts is None or parts["field"] not in OVERRIDE_FIELDS:
        raise SettingInvalid(
            f"Unknown spam-filter rule setting: {key} "
            f"({OVERRIDE_PREFIX}<TAG>.score or {OVERRIDE_PREFIX}<TAG>.enabled)",
            field=key,
        )
    if parts["tag"] not in bundled().rules:
        raise SettingInvalid(
            f"Unknown spam-filter rule: {parts['tag']} (no such tag in the rules file)",
            field=key,
        )
    parsed = _override_value(key, parts["field"], value)
    if isinstance(parsed, bool):
        return "true" if parsed else "false"
    return score_text(parsed)
