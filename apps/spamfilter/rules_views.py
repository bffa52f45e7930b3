"""The rules editor: every rule of the rules file with its score and enabled flag, and the
administrators' overrides kept in the settings store, edited inline one row at a time; above
them the score thresholds (spam, quarantine, reject, discard), edited likewise."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django import forms
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from apps.accounts.permissions import Perm
from apps.config.views import superadmin_only
from apps.spamfilter import overrides, rules, thresholds
from mailadmin.core.decorators import permission_required
from mailadmin.core.forms import ServiceErrorsMixin
from mailadmin.core.rendering import redirect_after_form, render_form, render_page
from mailadmin.errors import ServiceError

TEMPLATE = "spamfilter/rules.html"


class ScoreField(forms.FloatField):
    """A number as the settings store reads one (rules.NUMBER): float() alone also takes
    "1_0" (ten), "\u0663" (an Arabic-Indic three), "1e2" and "nan", which the store and its
    API refuse."""

    def to_python(self, value):
        text = value.strip() if isinstance(value, str) else value
        if isinstance(text, str) and text and not rules.NUMBER.match(text):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return super().to_python(text)


class RuleOverrideForm(ServiceErrorsMixin, forms.Form):
    score = ScoreField(
        label="Override score",
        required=False,
        min_value=-rules.MAX_SCORE,
        max_value=rules.MAX_SCORE,
        error_messages={"invalid": f"Enter a number from {-rules.MAX_SCORE:g} to "
                        f"{rules.MAX_SCORE:g}."},
    )  # fmt: skip
    enabled = forms.BooleanField(label="Enabled", required=False)


class ThresholdForm(ServiceErrorsMixin, forms.Form):
    """Only carries the text: the settings store checks it (the API's exact messages)."""

    value = forms.CharField(label="Threshold", required=False, max_length=32)


def rules_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A process that never read a usable rules file has no rules to edit: the page says
    why (503) rather than failing with a 500."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            rules.bundled()
        except rules.RulesError as exc:
            context = {"unusable": exc.message, "rows": [], "thresholds": []}
            return render_page(request, TEMPLATE, context, status=503)
        return view(request, *args, **kwargs)

    return wrapper


def _row(request: HttpRequest, tag: str) -> overrides.RuleRow:
    row = overrides.rule_row(actor=request.user, tag=tag)
    if row is None:
        raise Http404(f"No rule {tag} in the rules file.")
    return row


def _render_row(request, row, *, form=None, status=None) -> HttpResponse:
    context = {"row": row, "form": form, "form_tag": row.tag if form is not None else None}
    if getattr(request, "htmx", False):
        if form is not None:
            return render_form(request, TEMPLATE, context, partial="rule-row", status=status)
        return render_page(request, TEMPLATE, context, partial="rule-row")
    if form is not None and form.errors:
        return _page(request, form=form, form_tag=row.tag)
    return redirect_after_form(request, reverse("spamfilter:rules"))


def _page(
    request, *, form=None, form_tag=None, threshold_form=None, threshold_name=None
) -> HttpResponse:
    search = (request.GET.get("q") or "").strip()[:64]
    stored = overrides.stored_overrides(actor=request.user)
    rows = overrides.rule_rows(actor=request.user, search=search, stored=stored)
    context = {
        "rows": rows,
        "orphans": overrides.orphan_rows(actor=request.user, stored=stored),
        "search": search,
        "total": len(rows),
        "overridden": sum(1 for r in rows if r.overridden),
        "version": rules.bundled().version,
        "refused": rules.refused(),
        "thresholds": thresholds.threshold_rows(actor=request.user),
        "form": form,
        "form_tag": form_tag,
        "threshold_form": threshold_form,
        "threshold_name": threshold_name,
    }
    failed = [f for f in (form, threshold_form) if f is not None and f.errors]
    status = 422 if failed else 200
    return render_page(request, TEMPLATE, context, partial="rules-table", status=status)


@permission_required(Perm.SPAM_FILTER_UPDATE, Perm.SETTINGS_LIST)
@superadmin_only
@require_GET
@rules_required
def rule_list(request: HttpRequest) -> HttpResponse:
    return _page(request)


@permission_required(Perm.SPAM_FILTER_UPDATE, Perm.SETTINGS_UPDATE)
@superadmin_only
@require_http_methods(["GET", "POST"])
@rules_required
def rule_edit(request: HttpRequest, tag: str) -> HttpResponse:
    row = _row(request, tag)
    if request.method != "POST":
        return _render_row(request, row)
    form = RuleOverrideForm(request.POST)
    if form.is_valid():
        try:
            overrides.rule_override_set(
                actor=request.user,
                tag=row.tag,
                score=form.cleaned_data["score"],
                enabled=form.cleaned_data["enabled"],
            )
        except ServiceError as exc:
            form.add_error("score" if exc.field and exc.field.endswith(".score") else None,
                           exc.message)  # fmt: skip
        else:
            return _render_row(request, _row(request, tag))
    return _render_row(request, row, form=form)


@permission_required(Perm.SPAM_FILTER_UPDATE, Perm.SETTINGS_DELETE)
@superadmin_only
@require_http_methods(["GET", "POST"])
@rules_required
def rule_reset(request: HttpRequest, tag: str) -> HttpResponse:
    row = overrides.rule_row(actor=request.user, tag=tag)
    if row is None:
        return _orphan_reset(request, tag)
    if request.method == "POST":
        overrides.rule_override_reset(actor=request.user, tag=row.tag)
        row = _row(request, tag)
    return _render_row(request, row)


def _orphan_reset(request: HttpRequest, tag: str) -> HttpResponse:
    """The overrides of a tag the rules file no longer has: POST deletes them (htmx: the
    row goes), GET answers the row."""
    orphan = overrides.orphan_row(actor=request.user, tag=tag)
    if orphan is None:
        raise Http404(f"No rule {tag} in the rules file.")
    if request.method == "POST":
        overrides.rule_override_reset(actor=request.user, tag=orphan.tag)
        if getattr(request, "htmx", False):
            return HttpResponse("")
    elif getattr(request, "htmx", False):
        return render_page(request, TEMPLATE, {"orphan": orphan}, partial="orphan-row")
    return redirect_after_form(request, reverse("spamfilter:rules"))


def _render_threshold(request, row, *, form=None) -> HttpResponse:
    context = {"threshold": row, "threshold_form": form, "threshold_name": row.name}
    if getattr(request, "htmx", False):
        if form is not None:
            return render_form(request, TEMPLATE, context, form=form, partial="threshold-row")
        return render_page(request, TEMPLATE, context, partial="threshold-row")
    if form is not None and form.errors:
        return _page(request, threshold_form=form, threshold_name=row.name)
    return redirect_after_form(request, reverse("spamfilter:rules"))


@permission_required(Perm.SPAM_FILTER_UPDATE, Perm.SETTINGS_UPDATE)
@superadmin_only
@require_http_methods(["GET", "POST"])
@rules_required
def threshold_edit(request: HttpRequest, name: str) -> HttpResponse:
    row = thresholds.threshold_row(actor=request.user, name=name)
    if row is None:
        raise Http404(f"No spam-filter threshold {name}.")
    if request.method != "POST":
        return _render_threshold(request, row)
    form = ThresholdForm(request.POST)
    if form.is_valid():
        try:
            thresholds.threshold_set(
                actor=request.user, name=name, value=form.cleaned_data["value"]
            )
        except ServiceError as exc:
            form.add_error("value", exc.message)
        else:
            return _render_threshold(
                request, thresholds.threshold_row(actor=request.user, name=name)
            )
    return _render_threshold(request, row, form=form)
