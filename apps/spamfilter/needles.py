"""A cheap necessary condition for a rule's regular expression: strings of which at least
one must occur (lower-cased) in any text the pattern matches.

A body rule such as `\\b(?:viagra|cialis|...)\\b` is compiled case-insensitively, which
leaves Python's regex engine no literal prefix to skip ahead with: it tries the pattern at
every position of the text. `str.__contains__` finds a plain string far faster, so the scan
tries the needles first and runs the pattern only when one occurs. The answer is the
pattern's own either way: the needles only rule out texts the pattern cannot match.

The text is compared lower-cased. That is sound because only ASCII letters match ASCII
pattern letters, except four characters (`FOLDS_ONTO_ASCII`: U+0130, U+0131, U+017F LONG
S, U+212A KELVIN SIGN match `i`, `s` or `k` case-insensitively): a text holding one of
those is not ruled out (`lowered` answers None). A needle with a non-ASCII letter makes
no needles at all.
"""

from __future__ import annotations

import re
from functools import lru_cache

try:  # the parser's home since Python 3.11
    from re import _constants as _c
    from re import _parser
except ImportError:  # pragma: no cover - Python 3.10 and older
    import sre_constants as _c  # type: ignore[no-redef]
    import sre_parse as _parser  # type: ignore[no-redef]

_REPEATS = {_c.MAX_REPEAT, _c.MIN_REPEAT} | (
    {_c.POSSESSIVE_REPEAT} if hasattr(_c, "POSSESSIVE_REPEAT") else set()
)
_ATOMIC = getattr(_c, "ATOMIC_GROUP", None)
# The non-ASCII characters that match an ASCII letter case-insensitively (Unicode 15, as
# tests/unit/spamfilter/test_needles.py recomputes over every code point).
FOLDS_ONTO_ASCII = re.compile("[\u0130\u0131\u017f\u212a]")


def _cased(char: str) -> bool:
    return char.lower() != char or char.upper() != char


def _sets(items) -> list[frozenset[str]]:
    """Sets of strings such that every match of this sequence contains one string of each
    set (its parts in order; empty: nothing is known)."""
    candidates: list[frozenset[str]] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            candidates.append(frozenset(["".join(run)]))
            run.clear()

    for op, av in items:
        if op is _c.LITERAL:
            run.append(chr(av))
            continue
        flush()
        found = None
        if op is _c.SUBPATTERN:
            found = _required(av[-1])
        elif op is _c.BRANCH:
            alternatives = [_required(alternative) for alternative in av[1]]
            if all(a is not None for a in alternatives):
                found = frozenset().union(*alternatives)
        elif op in _REPEATS:
            minimum, _maximum, body = av
            found = _required(body) if minimum >= 1 else None
        elif _ATOMIC is not None and op is _ATOMIC:
            found = _required(av)
        # Anything else (classes, anchors, look-arounds, back-references) asks for no
        # particular string: it breaks a run of literals and adds nothing.
        if found:
            candidates.append(found)
    flush()
    return candidates


def _telling(found: frozenset[str]) -> tuple[int, int]:
    return min(map(len, found)), -len(found)  # long strings, few of them: few chance hits


def _required(items) -> frozenset[str] | None:
    """One set of strings every match of this sequence contains one of (None: none)."""
    candidates = _sets(items)
    return max(candidates, key=_telling) if candidates else None


@lru_cache(maxsize=1024)
def needles(pattern: re.Pattern) -> tuple[tuple[str, ...], ...]:
    """The pattern's needles, lower-cased: sets (at most three, the most telling) of which
    a matching text contains a string of each. Empty when nothing is known, or when a
    needle holds a non-ASCII letter (whose case-insensitive matches are not simple)."""
    try:
        found = _sets(_parser.parse(pattern.pattern, pattern.flags))
    except Exception:  # noqa: BLE001 - an unusual construct: simply no shortcut
        return ()
    if any(_cased(ch) for group in found for s in group for ch in s if not ch.isascii()):
        return ()
    found.sort(key=_telling, reverse=True)
    return tuple(tuple(sorted({s.lower() for s in group})) for group in found[:3])


def lowered(text: str) -> str | None:
    """The text to look for needles in, or None when they cannot rule it out."""
    if text.isascii() or not FOLDS_ONTO_ASCII.search(text):
        return text.lower()
    return None


def may_match(pattern: re.Pattern, lowered: str | None) -> bool:
    """False only when the pattern cannot match the text whose `lowered()` this is
    (None: it is not ruled out)."""
    if lowered is None:
        return True
    return all(any(n in lowered for n in group) for group in needles(pattern))
