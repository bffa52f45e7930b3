"""The one paging helper of every list, API and HTML alike.

Lists page with the spec's `page`/`limit` (and count up to `max-total`), which is OFFSET
paging: fine near the start, but a database walks every skipped row, so page 20,000 of a
million principals costs as much as reading them all. Two rules keep every page cheap:

- OFFSET goes at most MAX_OFFSET rows deep. Beyond it a page is reached with `cursor`
  (keyset or "seek" paging): every page answers the opaque cursors of the pages after and
  before it, and `cursor=last` is the last page. A cursor holds the ordering key of a
  row, and the next page is `WHERE (key) > (that key) ORDER BY key LIMIT n`, which an
  index answers by seeking, however deep.
- The total is counted only up to `max-total`, and not at all when the page itself shows
  where the list ends (a short page). A broad search is not counted: its total is
  PostgreSQL's planner estimate (`totalEstimated`), or a count that stops at 1,000.

Text search pages through `Search`, which picks a plan per term (see there).

Keyset paging needs an ordering on the model's own non-null fields, all in one direction,
ending with a unique one (`("name",)`, `("-created_at", "-id")`); for other orderings
(small lists such as DKIM keys) cursors are not offered and OFFSET is not capped.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import partial
from typing import Any
from urllib.parse import urlencode

from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import connections
from django.db.models import F, Model, QuerySet
from django.db.models.fields.tuple_lookups import (
    Tuple,
    TupleGreaterThan,
    TupleGreaterThanOrEqual,
    TupleLessThan,
    TupleLessThanOrEqual,
    TupleLookupMixin,
)
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers

from mailadmin.api.serializers import custom_error
from mailadmin.converters import digits

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
DEFAULT_MAX_TOTAL = 10_000
# Input bounds: a page or a counting cap past these is a 400 naming the field, never an
# integer the database can't hold (OverflowError) or a COUNT nobody needs.
MAX_PAGE = 1_000_000
MAX_MAX_TOTAL = 1_000_000
# How deep `page` may go (in rows); deeper pages are reached with `cursor`.
MAX_OFFSET = 10_000
MAX_CURSOR = 2048
LAST = "last"

CURSOR_PARAMETER = OpenApiParameter(
    "cursor",
    OpenApiTypes.STR,
    description=(
        f"Keyset paging: the `next` or `previous` cursor of a page, or `{LAST}` for the last "
        f"page. Needed for items beyond the first {MAX_OFFSET:,} (`page` x `limit` goes no "
        "deeper); with a cursor, `page` is ignored."
    ),
)


class InvalidCursor(ValueError):
    """A cursor that is malformed or belongs to another ordering."""


class PageParams(serializers.Serializer):
    page = serializers.IntegerField(min_value=1, max_value=MAX_PAGE, default=1)
    limit = serializers.IntegerField(min_value=1, max_value=MAX_LIMIT, default=DEFAULT_LIMIT)
    cursor = serializers.CharField(max_length=MAX_CURSOR, required=False, allow_blank=True)

    def get_fields(self):
        fields = super().get_fields()
        # The query parameter is spelled max-total, and errors must name it so.
        fields["max-total"] = serializers.IntegerField(
            source="max_total", min_value=1, max_value=MAX_MAX_TOTAL, default=DEFAULT_MAX_TOTAL
        )
        return fields

    def to_internal_value(self, data):
        data = dict(data.items()) if hasattr(data, "items") else data
        return super().to_internal_value(
            {k: v for k, v in data.items() if k in {"page", "limit", "max-total", "cursor"}}
        )


@dataclass(frozen=True)
class Page:
    items: Sequence[Any]
    total: int
    total_capped: bool  # total is a lower bound (counting stopped at max-total)
    total_estimated: bool = False  # total is the planner's estimate
    number: int | None = None  # 1-based; None for a page reached by cursor
    limit: int = DEFAULT_LIMIT
    next_cursor: str | None = None
    previous_cursor: str | None = None
    seekable: bool = False  # cursors work for this ordering

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.limit))


# --- the ordering key ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Key:
    fields: tuple[str, ...]  # model attribute names, in ordering order
    descending: bool

    @property
    def signature(self) -> str:
        return ("-" if self.descending else "") + ",".join(self.fields)


def _seek_key(queryset: QuerySet) -> _Key | None:
    """The queryset's ordering as a key cursors can seek on, or None when it can't be."""
    ordering = list(queryset.query.order_by or queryset.model._meta.ordering)
    if not ordering or not all(isinstance(o, str) for o in ordering):
        return None
    descending = {o.startswith("-") for o in ordering}
    if len(descending) != 1:
        return None
    meta = queryset.model._meta
    fields = []
    for name in (o.lstrip("-") for o in ordering):
        try:
            field = meta.pk if name == "pk" else meta.get_field(name)
        except FieldDoesNotExist:
            return None  # a relation path or an annotation
        if not getattr(field, "concrete", False) or field.null or field.is_relation:
            return None
        fields.append(field)
    if not (fields[-1].primary_key or fields[-1].unique):
        return None
    return _Key(tuple(f.attname for f in fields), descending.pop())


def _key_of(item: Model, key: _Key) -> list[Any]:
    return [getattr(item, name) for name in key.fields]


def _encode(key: _Key, direction: str, values: list[Any]) -> str:
    plain = [v.isoformat() if isinstance(v, date | datetime) else v for v in values]
    raw = json.dumps({"o": key.signature, "d": direction, "k": plain}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


NOT_OURS = "The cursor is not one this server gave out."


def _decode(cursor: str, key: _Key, model: type[Model]) -> tuple[str, list[Any] | None]:
    """(direction, key values) of a cursor; ("before", None) is the last page."""
    if cursor == LAST:
        return "before", None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError):
        raise InvalidCursor(NOT_OURS) from None
    if not isinstance(data, dict) or data.get("d") not in ("after", "before"):
        raise InvalidCursor(NOT_OURS)
    if data.get("o") != key.signature:
        raise InvalidCursor("The cursor belongs to another ordering of this list.")
    values = data.get("k")
    if not isinstance(values, list) or len(values) != len(key.fields):
        raise InvalidCursor(NOT_OURS)
    meta = model._meta
    try:
        typed = [
            _field(meta, name).to_python(value)
            for name, value in zip(key.fields, values, strict=True)
        ]
    except (ValidationError, TypeError, ValueError):
        raise InvalidCursor(NOT_OURS) from None
    if any(v is None or (isinstance(v, int) and not -(2**63) <= v < 2**63) for v in typed):
        raise InvalidCursor(NOT_OURS)  # a 64-bit column holds no bigger number
    return data["d"], typed


def _field(meta, attname: str):
    return next(f for f in meta.concrete_fields if f.attname == attname)


def _row_comparison(lookup: type) -> type:
    """`lookup` spelt as a row comparison, (a, b) > (x, y), on every backend (SQLite has
    had row values since 3.15): an index on (a, b) then seeks. Django spells it as ORs on
    SQLite, which no index range can use."""

    def as_sql(self, compiler, connection):
        return super(TupleLookupMixin, self).as_sql(compiler, connection)

    return type(f"Row{lookup.__name__}", (lookup,), {"as_sql": as_sql})


_AFTER = _row_comparison(TupleGreaterThan)
_BEFORE = _row_comparison(TupleLessThan)
_UP_TO = _row_comparison(TupleLessThanOrEqual)
_DOWN_TO = _row_comparison(TupleGreaterThanOrEqual)


def _seek(queryset: QuerySet, key: _Key, values: list[Any], *, forward: bool) -> QuerySet:
    """Rows after (forward) or before the key in the list's own order."""
    ascending = forward != key.descending
    lookup = _AFTER if ascending else _BEFORE
    columns = Tuple(*(F(name) for name in key.fields))
    return queryset.filter(lookup(columns, tuple(values)))


def _reversed(queryset: QuerySet, key: _Key) -> QuerySet:
    prefix = "" if key.descending else "-"
    return queryset.order_by(*(prefix + name for name in key.fields))


# --- paging ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Search:
    """A text search over an ordered list, paged by whichever plan is cheap for its term.

    Sorting every match costs a row read per match; walking the list in order and
    checking each row costs a read per row walked. Neither is cheap for every term: a
    rare term is found at once through an index, but a walk for it reads the whole list;
    a term that matches half the list fills a page within a few rows walked, but has too
    many matches to sort. So, in turn:

    0. Where an index hands the matches back in the list's own (name) order (`ordered`),
       read the page from it: at most a few thousand rows whatever the term.
    1. Ask the indexes (`arms`) for at most NARROW matches; if that is all of them, page
       those.
    2. Walk at most WINDOW rows of the list from where the page starts, checking `match`
       on each; if they hold the page, done.
    3. Sort all the matches found through the indexes, up to FULL_SORT (a common term
       clustered away from the page's start, such as a first name in a list by name).
    4. Walk the whole list.

    `arms` returns querysets over the unsearched list (scoped and filtered like it) whose
    union is exactly the matches, each answered by an index, or None when no index can
    answer (a term shorter than a trigram, or a backend without one).

    `sortable` (optional) gives step 3 the matches as one queryset to sort instead of the
    union of the arms, for at most n matches (None: more than n, or no index): on
    PostgreSQL one bitmap OR of the indexes over the list's own rows, where a union of
    arms joined to another table lets the planner pick a hash join over the whole list.

    `ordered` (optional) reads up to n matches from a name on (None: from the list's
    end), upwards or downwards (the bool), as (pk, key, name) in the order of `key`, a
    number that never decreases as the name grows but may tie (equal keys, different
    names), with an estimate of all the matches (or None); None when it cannot answer
    this search. Only for lists ordered by name.
    """

    queryset: QuerySet  # the list without the search: scoped, filtered, ordered
    match: Any  # Q or boolean expression: the search, checked row by row
    arms: Callable[[], list[QuerySet] | None]
    # Whether there may be at most n matches, where asking the arms would cost more than
    # a quick look (an index that cannot stop early when its answer is cut to the list).
    few: Callable[[int], bool] | None = None
    sortable: Callable[[int], QuerySet | None] | None = None
    ordered: Callable[[str | None, bool, int], Ordered | None] | None = None


# What `Search.ordered` answers: up to n matches as (pk, key, name), and an estimate of
# all the matches (None: no estimate).
Ordered = tuple[list[tuple[Any, int, str]], int | None]
# Each a bound on rows read: the probe reads up to NARROW + 1 per index, the walk WINDOW.
NARROW = 300
WINDOW = 2_500
FULL_SORT = 200_000
# Step 0 answers pages whose last row is at most ORDERED_DEPTH matches from where it
# reads, and reads TIE_BUDGET matches more, so that names sharing the last row's key
# (which stops at 9 characters) are all in hand to be put in order.
ORDERED_DEPTH = 2_000
TIE_BUDGET = 1_000
# Without a planner estimate, a broad search counts this far at most.
SEARCH_COUNT_MAX = 1_000


@dataclass(frozen=True)
class _At:
    """Where a page starts: `offset` rows after the key `values` (or the list's start),
    reading in the list's order (`forward`) or against it."""

    offset: int
    values: list[Any] | None
    forward: bool
    limit: int


# Reads up to limit + 1 rows at a position, in reading order, and the exact number of
# rows in the list when that came for free (else None).
Fetch = Callable[[QuerySet, "_Key | None", _At], tuple[list[Any], int | None]]
# (total, capped, estimated) for a max-total.
Total = Callable[[int], tuple[int, bool, bool]]


def paginate(
    listing: QuerySet | Search,
    *,
    page: int = 1,
    limit: int = DEFAULT_LIMIT,
    max_total: int = DEFAULT_MAX_TOTAL,
    cursor: str | None = None,
) -> Page:
    """One page by page number (OFFSET, capped) or by cursor (keyset).

    Raises InvalidCursor for a bad cursor and for a page deeper than MAX_OFFSET rows.
    """
    args = {"page": page, "limit": limit, "max_total": max_total, "cursor": cursor or None}
    if not isinstance(listing, Search):
        return _paginate(listing, fetch=_slice, total=partial(_capped_count, listing), **args)
    queryset, search = listing.queryset, listing
    total = partial(_search_total, queryset.filter(search.match))
    if search.ordered is not None:
        estimates: list[int] = []
        fetch = partial(_index_ordered, search.ordered, estimates)

        def estimated(max_total: int) -> tuple[int, bool, bool]:
            return (estimates[0], False, True) if estimates else total(max_total)

        try:
            return _paginate(queryset, fetch=fetch, total=estimated, **args)
        except NotInOrder:
            pass
    arms = search.arms()
    if arms is not None and (search.few is None or search.few(NARROW)):
        ids = _few_matches(arms, NARROW)
        if ids is not None:
            few = queryset.filter(pk__in=ids)
            return _paginate(few, fetch=_slice, total=partial(_capped_count, few), **args)
    matches = queryset.filter(search.match)
    try:
        return _paginate(matches, fetch=partial(_windowed, queryset), total=total, **args)
    except WindowTooNarrow:
        pass
    to_sort = _to_sort(search, arms)
    if to_sort is not None:
        try:
            return _paginate(queryset, fetch=partial(_sorted_union, to_sort), total=total, **args)
        except TooManyMatches:
            pass
    return _paginate(matches, fetch=_slice, total=total, **args)


def _to_sort(search: Search, arms: list[QuerySet] | None) -> list[QuerySet] | None:
    """What step 3 sorts: the search's own sortable queryset, or the union of the arms;
    None when there is nothing an index answers, or too much to sort."""
    if arms is None:
        return None
    if search.sortable is None:
        return arms
    one = search.sortable(FULL_SORT)
    return None if one is None else [one]


class NotInOrder(Exception):
    """The ordered index cannot answer this page: another ordering, a page too deep, more
    names tied on the key at its end than were read, or rows the list does not hold."""


class WindowTooNarrow(Exception):
    """The rows walked held fewer matches than the page needs."""


class TooManyMatches(Exception):
    """More matches than FULL_SORT: too many to sort."""


def _paginate(
    queryset: QuerySet,
    *,
    page: int,
    limit: int,
    max_total: int,
    cursor: str | None,
    fetch: Fetch,
    total: Total,
) -> Page:
    key = _seek_key(queryset)
    if cursor and key is None:
        raise InvalidCursor("This list does not page by cursor; use page.")
    if cursor:
        direction, values = _decode(cursor, key, queryset.model)
        at = _At(offset=0, values=values, forward=direction == "after", limit=limit)
    else:
        at = _At(offset=(page - 1) * limit, values=None, forward=True, limit=limit)
        if key is not None and at.offset > MAX_OFFSET:
            raise InvalidCursor(
                f"Pages reach {MAX_OFFSET:,} items deep at most; page on with the cursor "
                f"of a page (or cursor={LAST})."
            )
    rows, known = fetch(queryset, key, at)
    more = len(rows) > limit
    items = rows[:limit] if at.forward else rows[:limit][::-1]
    if cursor:
        more_after = more if at.forward else at.values is not None
        more_before = True if at.forward else more
    else:
        more_after, more_before = more, page > 1
    if not cursor and not more and (items or page == 1):
        count, capped, estimated = at.offset + len(items), False, False  # the end is here
    elif known is not None:
        count, capped, estimated = min(known, max_total), known >= max_total, False
    else:
        count, capped, estimated = total(max_total)

    def cursor_of(direction: str, item: Any) -> str:
        return _encode(key, direction, _key_of(item, key))

    return Page(
        items=items,
        total=count,
        total_capped=capped,
        total_estimated=estimated,
        number=None if cursor else page,
        limit=limit,
        next_cursor=cursor_of("after", items[-1]) if key and items and more_after else None,
        previous_cursor=(cursor_of("before", items[0]) if key and items and more_before else None),
        seekable=key is not None,
    )


def _positioned(queryset: QuerySet, key: _Key | None, at: _At) -> QuerySet:
    """The queryset in reading order, after the position's key."""
    if key is None:
        return queryset
    ordered = queryset if at.forward else _reversed(queryset, key)
    if at.values is not None:
        ordered = _seek(ordered, key, at.values, forward=at.forward)
    return ordered


def _slice(queryset: QuerySet, key: _Key | None, at: _At) -> tuple[list[Any], None]:
    ordered = _positioned(queryset, key, at)
    end = at.offset + at.limit + 1
    if not at.offset:
        return list(ordered[:end]), None
    # Skip the rows by primary key alone (an index-only scan where the ordering's index
    # holds the pk), then read only the page's rows. Two queries, not a subquery: a
    # planner may run a LIMIT/OFFSET subquery again for every row it joins.
    ids = list(ordered.values_list("pk", flat=True)[at.offset : end])
    return list(ordered.filter(pk__in=ids)) if ids else [], None


def _windowed(
    unsearched: QuerySet, matches: QuerySet, key: _Key | None, at: _At
) -> tuple[list[Any], None]:
    """Matches among the WINDOW rows of the unsearched list that follow the position
    (after its offset): the bound is the key of the last of those rows, found by walking
    an index, so checking the search costs at most WINDOW row reads. Raises
    WindowTooNarrow when those rows hold too few matches to decide the page."""
    if key is None:
        return _slice(matches, key, at)
    last = at.offset + WINDOW
    bound = list(_positioned(unsearched, key, at).values_list(*key.fields)[last : last + 1])
    if not bound:
        return _slice(matches, key, at)  # the rest of the list is shorter than the window
    ascending = at.forward != key.descending
    within = _UP_TO if ascending else _DOWN_TO
    columns = Tuple(*(F(name) for name in key.fields))
    ordered = _positioned(matches, key, at).filter(within(columns, tuple(bound[0])))
    rows = list(ordered[at.offset : at.offset + at.limit + 1])
    if len(rows) <= at.limit:
        raise WindowTooNarrow
    return rows, None


def _sorted_union(
    arms: list[QuerySet], queryset: QuerySet, key: _Key | None, at: _At
) -> tuple[list[Any], int | None]:
    """The page sorted out of all matches found through the indexes, in one query: a
    UNION cannot be walked in index order, so the database reads the matches once and
    sorts them (no walk over the rows that do not match). Raises TooManyMatches when
    there are more than FULL_SORT.

    The matches are read once into a CTE (used twice, so the database materialises it),
    counted, and only the page's rows are kept in sorted order (a top-N sort): ranking
    and counting every match with window functions cost as much again as reading them."""
    if key is None:
        raise TooManyMatches
    # Named columns: the pk as k0, the key fields as k1, k2...
    columns = {f"k{n}": F(name) for n, name in enumerate(["pk", *key.fields])}
    parts, params = [], []
    for n, arm in enumerate(arms):
        positioned = _positioned(arm.order_by(), key, at).order_by()
        # The LIMIT also keeps the planner from walking the list in order to fill the page.
        named = positioned.annotate(**columns).values_list(*columns)[: FULL_SORT + 1]
        sql, arm_params = named.query.sql_with_params()
        parts.append(f"SELECT * FROM ({sql}) arm{n}")  # noqa: S608 - SQL from querysets
        params.extend(arm_params)
    ascending = at.forward != key.descending
    keys = range(1, len(key.fields) + 1)
    order = ", ".join(f"k{n} {'ASC' if ascending else 'DESC'}" for n in keys)
    page_order = ", ".join(f"page.k{n} {'ASC' if ascending else 'DESC'}" for n in keys)
    # The count's row always comes back, so the count does even when OFFSET skips all.
    sql = (
        f"WITH matches AS ({' UNION '.join(parts)}) "  # noqa: S608
        "SELECT page.k0, counted.matched FROM (SELECT count(*) AS matched FROM matches) counted "
        f"LEFT JOIN (SELECT * FROM matches ORDER BY {order} LIMIT %s OFFSET %s) page ON 1 = 1 "
        f"ORDER BY {page_order}"
    )
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(sql, [*params, at.limit + 1, at.offset])
        found = cursor.fetchall()
    matched = found[0][1] if found else 0
    if matched > FULL_SORT:
        raise TooManyMatches
    ids = [row[0] for row in found if row[0] is not None]
    rows = {row.pk: row for row in queryset.filter(pk__in=ids)}
    # The count is of what follows the position's key: the total only without one.
    return [rows[pk] for pk in ids if pk in rows], matched if at.values is None else None


def _index_ordered(
    ordered: Callable[[str | None, bool, int], Ordered | None],
    estimates: list[int],
    queryset: QuerySet,
    key: _Key | None,
    at: _At,
) -> tuple[list[Any], int | None]:
    """The page out of the matches an index hands back in key order (step 0).

    Reading n matches in key order gets every match whose key comes before the last one
    read; those are exactly the first matches in name order, once sorted by name (names
    are unique). The last key's run of ties may go on beyond what was read, so its rows
    are dropped, and the page is answered only if the rest reach past its end.

    When not all matches were read, the index's estimate of them (at least as many as
    were read) goes into `estimates`, for the total."""
    if key is None or key.fields != ("name",):
        raise NotInOrder
    wanted = at.offset + at.limit + 1
    if wanted > ORDERED_DEPTH:
        raise NotInOrder
    ascending = at.forward != key.descending
    after = at.values[0] if at.values is not None else None
    count = wanted + TIE_BUDGET
    answer = ordered(after, ascending, count)
    if answer is None:
        raise NotInOrder
    found, estimate = answer
    complete = len(found) < count
    if not complete and estimate is not None:
        estimates.append(max(estimate, count))
    if not complete:
        boundary = found[-1][1]
        found = [row for row in found if row[1] != boundary]
    if after is not None:  # rows tied with the cursor's key come too
        found = [row for row in found if (row[2] > after if ascending else row[2] < after)]
    # Python orders str by code point, as PostgreSQL's C collations order UTF-8 bytes: the
    # callers offer `ordered` only there.
    found.sort(key=lambda row: row[2], reverse=not ascending)
    if not complete and len(found) < wanted:
        raise NotInOrder
    ids = [row[0] for row in found[at.offset : wanted]]
    rows = {row.pk: row for row in queryset.filter(pk__in=ids)} if ids else {}
    if len(rows) != len(ids):  # never, while the index and the list agree
        raise NotInOrder
    return [rows[pk] for pk in ids], len(found) if complete and after is None else None


def _few_matches(arms: list[QuerySet], limit: int) -> list[Any] | None:
    """The pks of all matches, if there are at most `limit`: one query, each arm stopping
    after limit + 1 rows (an arm that reaches them means "more")."""
    parts, params = [], []
    for n, arm in enumerate(arms):
        sql, arm_params = arm.order_by().values_list("pk")[: limit + 1].query.sql_with_params()
        parts.append(f"SELECT arm{n}.*, {n} FROM ({sql}) arm{n}")  # noqa: S608
        params.extend(arm_params)
    with connections[arms[0].db].cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts), params)
        rows = cursor.fetchall()
    per_arm = Counter(arm for _, arm in rows)
    if any(n > limit for n in per_arm.values()):
        return None
    ids = {pk for pk, _ in rows}
    return None if len(ids) > limit else sorted(ids)


def _capped_count(queryset: QuerySet, max_total: int) -> tuple[int, bool, bool]:
    """(total, capped, estimated): a COUNT over at most max_total rows."""
    total = queryset.order_by()[:max_total].count()
    return total, total >= max_total, False


def _search_total(queryset: QuerySet, max_total: int) -> tuple[int, bool, bool]:
    """A broad search is not counted: PostgreSQL's planner estimate when it is big,
    else a COUNT that stops early."""
    guess = estimate_count(queryset)
    if guess is not None and guess >= SEARCH_COUNT_MAX:
        return guess, False, True
    return _capped_count(queryset, min(max_total, SEARCH_COUNT_MAX))


def estimate_count(queryset: QuerySet) -> int | None:
    """PostgreSQL's row estimate for the queryset (None elsewhere): costs one EXPLAIN."""
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return None
    sql, params = queryset.order_by().values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


# --- the API -----------------------------------------------------------------------------


def paginate_request(
    request,
    listing: QuerySet | Search,
    serialize: Callable[[Any], Any],
    *,
    prepare: Callable[[Sequence[Any]], None] | None = None,
) -> dict[str, Any]:
    """The list body: items and total as the spec has them, plus the cursors.

    `prepare` loads what rendering the page's items needs that depends on the rows
    themselves (e.g. members of the groups only)."""
    params = PageParams(data=request.query_params)
    params.is_valid(raise_exception=True)
    values = params.validated_data
    try:
        page = paginate(
            listing,
            page=values["page"],
            limit=values["limit"],
            max_total=values["max_total"],
            cursor=values.get("cursor") or None,
        )
    except InvalidCursor as exc:
        field = "cursor" if values.get("cursor") else "page"
        raise custom_error(field, f"Invalid value for field {field}: {exc}") from None
    if prepare is not None:
        prepare(page.items)
    body: dict[str, Any] = {"items": [serialize(item) for item in page.items], "total": page.total}
    if page.seekable:
        body["next"] = page.next_cursor
        body["previous"] = page.previous_cursor
    if page.total_estimated:
        body["totalEstimated"] = True
    return body


# --- HTML lists ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PageNav:
    """What `_pagination.html` shows: the page, and links that keep the other parameters."""

    page: Page
    first: str | None
    previous: str | None
    next: str | None
    last: str | None

    @property
    def label(self) -> str:
        page = self.page
        if page.number is not None:
            plus = "+" if page.total_capped or page.total_estimated else ""
            return f"Page {page.number:,} of {page.pages:,}{plus}"
        return "Last page" if page.next_cursor is None else "Later page"

    @property
    def total(self) -> str:
        page = self.page
        if page.total_estimated:
            return f"about {page.total:,} in all"
        return f"{page.total:,}{'+' if page.total_capped else ''} in all"


def paginate_query(
    query: Mapping[str, str],
    listing: QuerySet | Search,
    *,
    limit: int = DEFAULT_LIMIT,
    max_total: int = DEFAULT_MAX_TOTAL,
    prepare: Callable[[Sequence[Any]], None] | None = None,
    path: str = "",
) -> PageNav:
    """A console list's page from its query string; a bad page or cursor shows the first.
    `prepare` as for paginate_request; `path` where the links go (default: this page)."""
    raw_page = query.get("page") or ""
    number = int(raw_page) if digits(raw_page) and len(raw_page) < 10 else 1
    cursor = (query.get("cursor") or "")[:MAX_CURSOR] or None
    try:
        page = paginate(
            listing, page=max(number, 1), limit=limit, max_total=max_total, cursor=cursor
        )
    except InvalidCursor:
        page = paginate(listing, page=1, limit=limit, max_total=max_total)
    if prepare is not None:
        prepare(page.items)
    return page_nav(query, page, path=path)


def page_nav(query: Mapping[str, str], page: Page, *, path: str = "") -> PageNav:
    kept = {k: v for k, v in query.items() if k not in ("page", "cursor") and v not in ("", None)}

    def url(**changes: Any) -> str:
        return path + "?" + urlencode({**kept, **changes})

    def by_cursor(cursor: str | None) -> str | None:
        return url(cursor=cursor) if cursor else None

    number = page.number
    if number is not None:
        previous = url(page=number - 1) if number > 1 else None
        deeper_ok = number * page.limit <= MAX_OFFSET or not page.seekable
        more = page.next_cursor is not None or (not page.seekable and number < page.pages)
        if not more:
            next_ = None
        elif deeper_ok:
            next_ = url(page=number + 1)
        else:
            next_ = by_cursor(page.next_cursor)
    else:
        previous = by_cursor(page.previous_cursor)
        next_ = by_cursor(page.next_cursor)
    first = url(page=1) if previous else None
    last = url(cursor=LAST) if page.seekable and next_ else None
    return PageNav(page=page, first=first, previous=previous, next=next_, last=last)
