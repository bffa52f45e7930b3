"""The rules file (rules.yaml beside this module, or MAILADMIN_SPAM_RULES_FILE): loading,
validation, and what changed between two versions.

Every process reads the file on first use and again whenever its modification time
changes, so an edit reaches every web process and worker without a restart;
GET /api/update/spam-filter reloads it at once and reports the difference.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings

from mailadmin.errors import ServiceError

DEFAULT_FILE = Path(__file__).with_name("rules.yaml")
TAG_NAME = re.compile(r"^[A-Z0-9_]{1,64}\*?$")
ACTIONS = ("allow", "quarantine", "reject", "discard")
FIELDS = {"tag", "score", "enabled", "action", "description", "report", "header", "pattern", "body"}


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
    families = tuple(sorted((r for r in rules.values() if r.family), key=lambda r: -len(r.tag)))
    matchers = tuple(r for r in rules.values() if r.pattern is not None and r.enabled)
    return RuleSet(version, rules, families, matchers)


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


def diff(old: RuleSet | None, new: RuleSet) -> dict[str, Any]:
    """What a reload changed: tags added, removed, and changed (score/enabled/action)."""
    before = old.rules if old else {}
    changed = {}
    for tag in sorted(set(before) & set(new.rules)):
        a, b = before[tag], new.rules[tag]
        if (a.summary(), a.pattern and a.pattern.pattern, a.header, a.report) != (
            b.summary(),
            b.pattern and b.pattern.pattern,
            b.header,
            b.report,
        ):
            changed[tag] = {"from": a.summary(), "to": b.summary()}
    return {
        "version": new.version,
        "previousVersion": old.version if old else None,
        "rules": len(new.rules),
        "added": sorted(set(new.rules) - set(before)),
        "removed": sorted(set(before) - set(new.rules)),
        "changed": changed,
    }


class _Loaded:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.key: tuple[str, float, int] | None = None
        self.rules: RuleSet | None = None


_loaded = _Loaded()


def _load(path: Path) -> tuple[RuleSet, tuple[str, float, int]]:
    try:
        stat = os.stat(path)
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesError(f"cannot read the rules file {path}: {exc.strerror}") from None
    return parse_rules(text, source=path.name), (str(path), stat.st_mtime, stat.st_size)


def current() -> RuleSet:
    """The rules in force, re-read when the file changed (a bad edit keeps the old ones)."""
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
            except RulesError:
                if _loaded.rules is None:
                    raise
                _loaded.key = key  # keep the rules in force; reload() reports the error
    return _loaded.rules


def reload() -> dict[str, Any]:
    """Read the file now; answers the difference (RulesError leaves the rules unchanged)."""
    with _loaded.lock:
        new, key = _load(rules_path())
        old = _loaded.rules
        _loaded.rules, _loaded.key = new, key
    return diff(old, new)
