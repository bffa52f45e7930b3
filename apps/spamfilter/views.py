"""Spam filter pages: the classify tester (paste a message, see its score and why)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_http_methods

from apps.accounts.permissions import Perm
from apps.spamfilter import rules, services
from apps.spamfilter.forms import MAX_FORM_BODY, ClassifyForm
from mailadmin.core.decorators import form_body_limit, permission_required
from mailadmin.core.rendering import render_form
from mailadmin.errors import ServiceError


def _rows(verdict: services.Verdict) -> list[dict]:
    ruleset = rules.current()
    rows = []
    for tag, result in verdict.tags.items():
        rule = ruleset.find(tag)
        rows.append(
            {
                "tag": tag,
                "value": result.value,
                "action": result.action,
                "description": rule.description if rule else "",
            }
        )
    rows.sort(key=lambda r: (-abs(r["value"]), r["tag"]))
    return rows


@form_body_limit(MAX_FORM_BODY)
@permission_required(Perm.SPAM_FILTER_CLASSIFY)
@require_http_methods(["GET", "POST"])
def classify(request: HttpRequest) -> HttpResponse:
    context: dict = {"verdict": None}
    if request.method == "POST":
        form = ClassifyForm(request.POST)
        if form.is_valid():
            values = form.cleaned_data
            try:
                verdict = services.classify(
                    actor=request.user,
                    message=values["message"].encode("utf-8", "replace"),
                    remote_ip=values["remote_ip"] or "",
                    ehlo_domain=values["ehlo_domain"],
                    env_from=values["env_from"],
                    env_rcpt_to=values["env_rcpt_to"],
                    is_tls=values["is_tls"],
                    smtputf8=values["smtputf8"],
                )
            except ServiceError as exc:
                form.add_service_error(exc)
            else:
                context.update(verdict=verdict, rows=_rows(verdict))
    else:
        form = ClassifyForm()
    context["form"] = form
    return render_form(request, "spamfilter/classify.html", context, partial="classify-form")
