"""After an HTMX request, hand Django's messages to the page as an HX-Trigger event."""

from __future__ import annotations

import json

from django.contrib import messages


class HtmxMessagesMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not getattr(request, "htmx", False) or 300 <= response.status_code < 400:
            return response
        if "HX-Redirect" in response.headers or "HX-Location" in response.headers:
            return response  # the next full page shows them
        pending = [
            {"level": m.level_tag, "message": str(m.message)}
            for m in messages.get_messages(request)
        ]
        if not pending:
            return response
        triggers = {}
        if "HX-Trigger" in response.headers:
            raw = response.headers["HX-Trigger"]
            try:
                triggers = json.loads(raw)
            except ValueError:
                triggers = {name.strip(): None for name in raw.split(",")}
        triggers["messages"] = pending
        response.headers["HX-Trigger"] = json.dumps(triggers)
        return response
