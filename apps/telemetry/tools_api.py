"""Logs and delivery troubleshooting under /api/ (management API paths)."""

from __future__ import annotations

import json
import logging
from datetime import datetime

from django.conf import settings
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers

from apps.accounts.permissions import Perm
from apps.telemetry import logs, troubleshoot
from mailadmin.api.pagination import PageParams
from mailadmin.api.permissions import PUBLIC, require
from mailadmin.api.schema import PROBLEM, envelope
from mailadmin.api.serializers import custom_error
from mailadmin.api.streams import event_stream
from mailadmin.api.views import ApiView, ok

log = logging.getLogger(__name__)

LEVEL_NAMES = "DEBUG, INFO, WARNING, ERROR or CRITICAL"


def log_filters(query) -> logs.LogFilter:
    """`level` (minimum), `text`, `since` (ISO 8601) from a query; 400 naming the field."""
    level_name = (query.get("level") or "").strip().upper()
    if level_name and level_name not in logs.LEVELS:
        raise custom_error("level", f"Invalid value for field level: use {LEVEL_NAMES}.")
    since_text = (query.get("since") or "").strip()
    since: datetime | None = None
    if "since" in query:  # present but empty is as wrong as malformed
        try:
            since = parse_datetime(since_text)
        except ValueError:
            since = None
        if since is None:
            raise custom_error(
                "since", "Invalid value for field since: use an ISO 8601 date and time."
            )
        if since.tzinfo is None:
            from datetime import UTC

            since = since.replace(tzinfo=UTC)
    text = (query.get("text") or "")[:200]
    return logs.LogFilter(logs.LEVELS.get(level_name, 0), text, since)


def log_list(*, actor, query) -> dict:
    """The spec's list body {"items", "total"}: newest first, total counted up to
    max-total (10,000 by default)."""
    troubleshoot.require_superadmin(actor, "The server's log")
    params = PageParams(data=query)
    params.is_valid(raise_exception=True)
    values = params.validated_data
    filters = log_filters(query)
    limit = values["limit"]
    items, total = logs.log_page(
        settings.MAILADMIN_LOG_FILE,
        filters=filters,
        offset=(values["page"] - 1) * limit,
        limit=limit,
        max_total=values["max_total"],
    )
    return {"items": items, "total": total}


LOG_ITEM_FIELDS = {
    "timestamp": serializers.CharField(),
    "level": serializers.CharField(),
    "event": serializers.CharField(),
    "event_id": serializers.CharField(),
    "details": serializers.CharField(),
}


class LogListApi(ApiView):
    """Superadmins only: the records name hosts, addresses and every tenant's activity."""

    permission_classes = [require(Perm.LOGS_VIEW)]

    @extend_schema(
        parameters=[
            OpenApiParameter("page", OpenApiTypes.INT),
            OpenApiParameter("limit", OpenApiTypes.INT),
            OpenApiParameter("level", OpenApiTypes.STR, description=f"Minimum: {LEVEL_NAMES}"),
            OpenApiParameter("text", OpenApiTypes.STR, description="Case-insensitive search"),
            OpenApiParameter("since", OpenApiTypes.DATETIME),
        ],
        responses={
            200: envelope(
                "LogList",
                inline_serializer(
                    "LogPage",
                    {
                        "items": inline_serializer("LogItem", LOG_ITEM_FIELDS, many=True),
                        "total": serializers.IntegerField(),
                    },
                ),
            ),
            400: PROBLEM,
            403: PROBLEM,
        },
        description="mailadmin's own log records, newest first (superadmins only).",
    )
    def get(self, request):
        return ok(log_list(actor=request.user, query=request.query_params))


class TroubleshootTokenApi(ApiView):
    permission_classes = [require(Perm.TROUBLESHOOT)]

    @extend_schema(
        responses={200: envelope("TroubleshootToken", serializers.CharField()), 403: PROBLEM},
        description=(
            "A token for GET /api/troubleshoot/delivery/{recipient}?token= (valid "
            f"{troubleshoot.TOKEN_SECONDS} s, for the superadmin it was issued to)."
        ),
    )
    def get(self, request):
        return ok(troubleshoot.token_issue(actor=request.user))


def sse(event: dict) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


def delivery_stream(recipient: str, token: str):
    troubleshoot.parse_recipient(recipient)  # a bad one is a 400, before the stream starts

    def events():
        try:
            for event in troubleshoot.delivery_steps(recipient):  # from the first lookup on,
                yield sse(event)  # inside the stream's slot
        except Exception as exc:  # the stream has begun: say so in it, not as a 500
            log.exception("delivery troubleshooting of %s failed", recipient)
            yield sse({"type": "verdict", "outcome": troubleshoot.FAILURE,
                       "detail": f"Troubleshooting failed: {type(exc).__name__}"})  # fmt: skip

    return event_stream(events(), token=token, seconds=troubleshoot.TOKEN_SECONDS)


class TroubleshootDeliveryApi(ApiView):
    """The token is the credential (EventSource sends no Authorization header), so the
    route itself is public; an absent, forged or expired token is a 401."""

    permission_classes = [require(PUBLIC)]
    authentication_classes: list = []

    @extend_schema(
        parameters=[OpenApiParameter("token", OpenApiTypes.STR, required=True)],
        responses={
            (200, "text/event-stream"): OpenApiTypes.STR,
            400: PROBLEM,
            401: PROBLEM,
            403: PROBLEM,
            429: PROBLEM,
        },
        description=(
            "Server-Sent Events: one `step` event per step (MX lookup, MTA-STS, addresses, "
            "DANE, connect, EHLO, STARTTLS, MAIL FROM:<>, RCPT TO, QUIT; never DATA), each "
            "{step, outcome, detail, elapsedMs}, then one `verdict` event; the stream ends."
        ),
    )
    def get(self, request, recipient: str):
        token = request.query_params.get("token")
        troubleshoot.token_principal(token)
        return delivery_stream(recipient, token)
