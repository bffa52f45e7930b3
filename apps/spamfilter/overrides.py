"""Administrators' overrides of the spam-filter rules (score, enabled), kept in the settings
store under `spam-filter.rule.<TAG>.`: what the rules editor shows and writes. Writes go
through the settings store's own service (superadmins only, audited, checked)."""

from __future__ import annotations

from dataclasses import dataclass

from apps.accounts.models import Principal
from apps.config import services as settings_services
from apps.config.selectors import require_superadmin, setting_list
from apps.spamfilter import rules


@dataclass(frozen=True)
class RuleRow:
    tag: str
    description: str
    action: str
    bundled_score: float
    bundled_enabled: bool
    score: float | None  # the override, None when the file's score holds
    enabled: bool | None  # likewise
    kind: str  # "header", "body" or "computed"

    @property
    def effective_score(self) -> float:
        return self.bundled_score if self.score is None else self.score

    @property
    def effective_enabled(self) -> bool:
        return self.bundled_enabled if self.enabled is None else self.enabled

    @property
    def overridden(self) -> bool:
        return self.score is not None or self.enabled is not None

    @property
    def dom_id(self) -> str:
        return "rule-" + self.tag.replace("*", "-any")


@dataclass(frozen=True)
class OrphanRow:
    """Overrides stored for a tag the rules file no longer has: every scan ignores them, yet
    they stay in the store and apply again should a later file bring the tag back."""

    tag: str
    values: tuple[tuple[str, str], ...]  # (field, stored text), by field

    @property
    def dom_id(self) -> str:
        return "orphan-" + self.tag.replace("*", "-any")


def stored_overrides(*, actor: Principal) -> dict[str, str]:
    """Every `spam-filter.rule.*` key of the store with its value (one query)."""
    return dict(setting_list(actor=actor, prefix=rules.OVERRIDE_PREFIX).values_list("key", "value"))


def orphan_rows(*, actor: Principal, stored: dict[str, str] | None = None) -> list[OrphanRow]:
    """The stored overrides whose tag is not in the rules file, by tag."""
    require_superadmin(actor)
    base = rules.bundled()
    if stored is None:
        stored = stored_overrides(actor=actor)
    found: dict[str, list[tuple[str, str]]] = {}
    for key, value in stored.items():
        match = rules.OVERRIDE_KEY.match(key)
        if match is not None and match["tag"] not in base.rules:
            found.setdefault(match["tag"], []).append((match["field"], value))
    return [OrphanRow(tag, tuple(sorted(values))) for tag, values in sorted(found.items())]


def orphan_row(*, actor: Principal, tag: str) -> OrphanRow | None:
    return next((r for r in orphan_rows(actor=actor) if r.tag == tag), None)


def rule_rows(
    *, actor: Principal, search: str = "", stored: dict[str, str] | None = None
) -> list[RuleRow]:
    """Every rule of the file with its override (one query: the store's rule keys)."""
    require_superadmin(actor)
    base = rules.bundled()
    if stored is None:
        stored = stored_overrides(actor=actor)
    merged = rules.apply_overrides(base, stored)
    needle = search.strip().upper()
    rows = []
    for tag, rule in base.rules.items():
        if needle and needle not in tag and needle.lower() not in rule.description.lower():
            continue
        override = merged.overrides.get(tag, {})
        rows.append(
            RuleRow(
                tag=tag,
                description=rule.description,
                action=rule.action,
                bundled_score=rule.score,
                bundled_enabled=rule.enabled,
                score=override.get("score"),
                enabled=override.get("enabled"),
                kind="header" if rule.header else "body" if rule.body else "computed",
            )
        )
    return rows


def rule_row(*, actor: Principal, tag: str) -> RuleRow | None:
    return next((r for r in rule_rows(actor=actor) if r.tag == tag), None)


def rule_override_set(
    *, actor: Principal, tag: str, score: float | str | None, enabled: bool
) -> None:
    """Set the rule's overrides: `score` None drops the score override; `enabled` equal to
    the file's drops that override (so the editor's toggle leaves no needless row)."""
    base = rules.bundled().rules.get(tag)
    score_key = rules.override_key(tag, "score")
    enabled_key = rules.override_key(tag, "enabled")
    values: list[tuple[str, str]] = []
    drop: list[str] = []
    if score is None or score == "":
        drop.append(score_key)
    else:
        values.append((score_key, score if isinstance(score, str) else rules.score_text(score)))
    if base is not None and enabled == base.enabled:
        drop.append(enabled_key)
    else:
        values.append((enabled_key, "true" if enabled else "false"))
    changes: list[settings_services.Change] = []
    if drop:
        changes.append(settings_services.Delete(keys=drop))
    if values:
        changes.append(settings_services.Insert(values=values))
    settings_services.settings_update(actor=actor, changes=changes)


def rule_override_reset(*, actor: Principal, tag: str) -> None:
    """Back to the file's score and enabled flag (for a tag the file no longer has: its
    overrides gone from the store)."""
    prefix = f"{rules.OVERRIDE_PREFIX}{tag}."
    settings_services.settings_update(actor=actor, changes=[settings_services.Clear(prefix)])
