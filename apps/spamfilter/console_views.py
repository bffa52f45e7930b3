"""Spam filter console pages beside the classify tester: Bayes status with train and purge,
the DMARC troubleshooter, and a mailbox's Spam tab (block/safe lists, spam settings).

Each page calls the services the API calls (apps.spamfilter.services for Bayes and the
troubleshooter, apps.spamfilter.sender_lists for the lists and settings): the rules and
their messages live there once. A refused form answers 422 with itself.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from apps.accounts.emails import display_domain
from apps.accounts.models import Principal, PrincipalType
from apps.accounts.permissions import Perm
from apps.accounts.principals.selectors import principal_get, principal_list
from apps.domains import mailbox_selectors, selectors
from apps.spamfilter import bayes, sender_lists, services
from apps.spamfilter.api import troubleshoot_data
from apps.spamfilter.console_forms import (
    AccountSearchForm,
    BayesTrainForm,
    DmarcTroubleshootForm,
    SenderListEntryForm,
    SpamSettingForm,
)
from apps.spamfilter.forms import MAX_FORM_BODY, MAX_MESSAGE
from apps.spamfilter.models import SenderListEntry
from mailadmin.api.pagination import Page, PageNav, page_nav, paginate_query
from mailadmin.converters import digits
from mailadmin.core.decorators import form_body_limit, permission_required
from mailadmin.core.forms import refusal_form
from mailadmin.core.rendering import FORM_INVALID, redirect_after_form, render_form, render_page
from mailadmin.errors import NotFound, ServiceError

PAGE_SIZE = 20
MAX_TOTAL = 10_000

# --- Bayes -------------------------------------------------------------------------------


def _accounts(request: HttpRequest, search: str):
    """One page of the accounts the actor may train (itself alone without principal-list
    and principal-get: the service reads another account's model only with the latter),
    each with its model's learned counts: a fixed number of queries, one Redis round trip."""
    actor = request.user
    if actor.has_permission(Perm.PRINCIPAL_LIST) and actor.has_permission(Perm.PRINCIPAL_GET):
        listing = principal_list(actor=actor, types=[PrincipalType.INDIVIDUAL], search=search)
    else:
        listing = Principal.objects.filter(pk=actor.pk, type=PrincipalType.INDIVIDUAL)
    pagination = paginate_query(
        {"q": search, "page": request.GET.get("page", ""), "cursor": request.GET.get("cursor", "")},
        listing,
        limit=PAGE_SIZE,
        max_total=MAX_TOTAL,
        path=reverse("spamfilter:bayes"),
    )
    accounts = list(pagination.page.items)
    counts = bayes.learned_many([bayes.account_scope(a.pk) for a in accounts])
    rows = [{"account": a, "spam": s, "ham": h} for a, (s, h) in zip(accounts, counts, strict=True)]
    return rows, pagination


def _bayes_context(request: HttpRequest, train_form: BayesTrainForm | None = None) -> dict:
    actor = request.user
    search_form = AccountSearchForm(request.GET or None)
    search = search_form.cleaned_data["q"].strip() if search_form.is_valid() else ""
    rows, pagination = _accounts(request, search)
    global_counts = None
    if actor.reaches_all_tenants:
        global_counts = services.bayes_learned(actor=actor)
    initial = {"account": request.GET.get("account", "")[:255]}
    return {
        "global_counts": global_counts,
        "minimum": settings.MAILADMIN_SPAM_BAYES_MIN_LEARNS,
        "search_form": search_form,
        "search": search,
        "rows": rows,
        "pagination": pagination,
        "train_form": train_form or BayesTrainForm(initial=initial),
        "can_purge_global": actor.reaches_all_tenants
        and actor.has_permission(Perm.PURGE_IN_MEMORY_STORE),
        "can_purge_account": actor.has_permission(Perm.PURGE_ACCOUNT),
    }


@permission_required(Perm.SPAM_FILTER_TRAIN)
@require_http_methods(["GET"])
def bayes_status(request: HttpRequest) -> HttpResponse:
    """What the global model and each account's model have learned; train; purge."""
    return render_page(
        request, "spamfilter/bayes.html", _bayes_context(request), partial="bayes-accounts"
    )


@form_body_limit(MAX_MESSAGE + 1_000_000)
@permission_required(Perm.SPAM_FILTER_TRAIN)
@require_POST
def bayes_train(request: HttpRequest) -> HttpResponse:
    form = BayesTrainForm(request.POST, request.FILES)
    if getattr(request, "form_text_too_large", False):
        # Multipart text stops at Django's limit (FormBodyLimitMiddleware); files do not.
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE / 1_048_576
        form.add_error(
            "message",
            f"The pasted message is larger than {limit:.3g} MB: upload it as a file instead.",
        )
    elif form.is_valid():
        account = form.cleaned_data["account"].strip() or None
        spam = form.cleaned_data["kind"] == "spam"
        try:
            model = services.bayes_train(
                actor=request.user, message=form.raw_message(), spam=spam, account_id=account
            )
        except ServiceError as exc:
            field = "message" if exc.field == "body" else "account" if account else None
            form.add_error(field, exc.message)
        else:
            learned = "spam" if spam else "ham"
            messages.success(request, f"Learned the message as {learned} in the {model}.")
            return redirect_after_form(request, reverse("spamfilter:bayes"))
    context = _bayes_context(request, train_form=form)
    return render_form(
        request, "spamfilter/bayes.html", context, form=form, partial="bayes-train-form"
    )


def _purge(request: HttpRequest, account: Principal | None) -> HttpResponse:
    """GET asks to confirm; POST deletes the model (the service checks who may)."""
    account_id = str(account.pk) if account else None
    form = forms.Form()
    if request.method == "POST":
        try:
            services.bayes_purge(actor=request.user, account_id=account_id)
        except ServiceError as exc:
            form = refusal_form(exc)
        else:
            name = f"the Bayes model of {account.name}" if account else "the global Bayes model"
            messages.success(request, f"Deleted {name}.")
            return redirect_after_form(request, reverse("spamfilter:bayes"))
    try:
        spam, ham = services.bayes_learned(actor=request.user, account_id=account_id)
    except ServiceError as exc:
        if account is not None:
            raise Http404 from None
        form, spam, ham = refusal_form(exc), 0, 0
    context = {"account": account, "spam": spam, "ham": ham, "form": form}
    return render_form(request, "spamfilter/bayes_purge.html", context)


@permission_required(Perm.PURGE_IN_MEMORY_STORE)
@require_http_methods(["GET", "POST"])
def bayes_purge_global(request: HttpRequest) -> HttpResponse:
    return _purge(request, None)


@permission_required(Perm.PURGE_ACCOUNT)
@require_http_methods(["GET", "POST"])
def bayes_purge_account(request: HttpRequest, account_id: int) -> HttpResponse:
    try:
        account = principal_get(actor=request.user, id_or_name=account_id)
    except NotFound:
        raise Http404 from None
    if account.type != PrincipalType.INDIVIDUAL:
        raise Http404
    return _purge(request, account)


# --- DMARC troubleshooter ----------------------------------------------------------------


@form_body_limit(MAX_FORM_BODY)
@permission_required(Perm.TROUBLESHOOT)
@require_http_methods(["GET", "POST"])
def dmarc_troubleshoot(request: HttpRequest) -> HttpResponse:
    """The form of POST /api/troubleshoot/dmarc, its answer shown field by field."""
    result = None
    if request.method == "POST":
        form = DmarcTroubleshootForm(request.POST)
        if form.is_valid():
            values = form.cleaned_data
            try:
                results, elapsed = services.dmarc_troubleshoot(
                    actor=request.user,
                    remote_ip=values["remote_ip"] or "",
                    ehlo_domain=values["ehlo_domain"],
                    mail_from=values["mail_from"],
                    message=values["body"].encode("utf-8", "surrogateescape"),
                )
            except ServiceError as exc:
                form.add_service_error(exc)
            else:
                result = troubleshoot_data(results, elapsed)
    else:
        form = DmarcTroubleshootForm()
    context = {"form": form, "result": result}
    return render_form(request, "spamfilter/dmarc.html", context, partial="dmarc-form")


# --- a mailbox's Spam tab ------------------------------------------------------------------


def _mailbox(request: HttpRequest, domain_id: int, mailbox_id: int):
    """(domain, mailbox profile), both visible to the actor and belonging together; else 404."""
    try:
        domain = selectors.domain_get(actor=request.user, name_or_id=domain_id)
        mailbox = mailbox_selectors.mailbox_by_id(actor=request.user, mailbox_id=mailbox_id)
    except NotFound:
        raise Http404 from None
    if mailbox.domain_id != domain.pk:
        raise Http404
    return domain, mailbox


LIST_TITLES = dict(SenderListEntry.LISTS)
LIST_ORDER = (
    SenderListEntry.BLOCK,
    SenderListEntry.SAFE,
    SenderListEntry.BLOCK_IP,
    SenderListEntry.SAFE_IP,
)
LIST_HELP = {
    SenderListEntry.BLOCK: "Addresses and domains (a domain covers its subdomains) whose mail "
    "this mailbox does not take.",
    SenderListEntry.SAFE: "Addresses and domains never junked or refused for this mailbox, "
    "when the message proves it comes from them (DMARC, or aligned SPF or DKIM).",
    SenderListEntry.BLOCK_IP: "IPv4/IPv6 addresses or CIDR networks of sending servers.",
    SenderListEntry.SAFE_IP: "Sending servers (IPv4/IPv6, CIDR) whose mail is never junked.",
}


LIST_PAGE = 50  # entries of one list a page


def _list_page(request: HttpRequest, name: str, entries: list[str], path: str) -> PageNav:
    """One list's page through the one pager: `?list=<name>&page=<n>` pages that list (the
    others stay on their first page). The list is already read whole (bounded), so the page
    is cut from it here and costs no query."""
    raw = request.GET.get("page", "") if request.GET.get("list") == name else ""
    number = int(raw) if digits(raw) and len(raw) < 7 else 1
    pages = max(1, -(-len(entries) // LIST_PAGE))
    number = min(max(number, 1), pages)
    start = (number - 1) * LIST_PAGE
    page = Page(
        items=entries[start : start + LIST_PAGE],
        total=len(entries),
        total_capped=False,
        number=number,
        limit=LIST_PAGE,
    )
    return page_nav({"list": name, "page": str(number)}, page, path=path)


def _lists_context(request: HttpRequest, domain, mailbox, forms: dict | None = None) -> dict:
    actor = request.user
    forms = forms or {}
    every = sender_lists.entry_lists(actor=actor, mailbox=mailbox.principal)
    path = reverse("spamfilter:mailbox-spam", args=[domain.pk, mailbox.pk])
    lists = []
    for name in LIST_ORDER:
        nav = _list_page(request, name, every.get(name, []), path)
        lists.append(
            {
                "name": name,
                "title": LIST_TITLES[name],
                "help": LIST_HELP[name],
                "entries": nav.page.items,
                "count": nav.page.total,
                "pagination": nav,
                "form": forms.get(name) or SenderListEntryForm(prefix=name),
            }
        )
    return {
        "domain": domain,
        "display_name": display_domain(domain.name),
        "mailbox": mailbox,
        "lists": lists,
        "max_entries": sender_lists.MAX_ENTRIES,
        "can_update": actor.has_permission(Perm.PRINCIPAL_UPDATE),
    }


def _settings_form(request: HttpRequest, mailbox) -> SpamSettingForm:
    setting = sender_lists.setting_get(actor=request.user, mailbox=mailbox.principal)
    return SpamSettingForm(initial=sender_lists.setting_data(setting))


def _spam_page(request, domain, mailbox, *, forms=None, settings_form=None, status=200):
    context = _lists_context(request, domain, mailbox, forms)
    context["settings_form"] = settings_form or _settings_form(request, mailbox)
    return render_page(request, "spamfilter/mailbox_spam.html", context, status=status)


@permission_required(Perm.PRINCIPAL_GET)
@require_http_methods(["GET"])
def mailbox_spam(request: HttpRequest, domain_id: int, mailbox_id: int) -> HttpResponse:
    """The mailbox page's Spam tab: its four lists (a page of each) and its spam settings.
    htmx asking for another page of one list (`?list=<name>&page=<n>`) gets that list."""
    domain, mailbox = _mailbox(request, domain_id, mailbox_id)
    wanted = request.GET.get("list", "")
    if request.htmx and wanted in LIST_ORDER:
        context = _lists_context(request, domain, mailbox)
        context["list"] = next(item for item in context["lists"] if item["name"] == wanted)
        return render_page(request, "spamfilter/mailbox_spam.html#spam-list", context)
    return _spam_page(request, domain, mailbox)


def _lists_answer(request, domain, mailbox, forms: dict | None = None) -> HttpResponse:
    """htmx: the lists partial (422 when a form carries errors); else the page, or back to
    it after a change."""
    failed = any(f.errors for f in (forms or {}).values())
    status = FORM_INVALID if failed else 200
    if request.htmx:
        context = _lists_context(request, domain, mailbox, forms)
        return render_page(
            request, "spamfilter/mailbox_spam.html#mailbox-spam-lists", context, status=status
        )
    if failed:
        return _spam_page(request, domain, mailbox, forms=forms, status=status)
    return redirect("spamfilter:mailbox-spam", domain_id=domain.pk, mailbox_id=mailbox.pk)


def _list_name(list_name: str) -> str:
    if list_name not in sender_lists.LISTS:
        raise Http404
    return list_name


@permission_required(Perm.PRINCIPAL_UPDATE)
@require_POST
def mailbox_list_add(
    request: HttpRequest, domain_id: int, mailbox_id: int, list_name: str
) -> HttpResponse:
    domain, mailbox = _mailbox(request, domain_id, mailbox_id)
    form = SenderListEntryForm(request.POST, prefix=_list_name(list_name))
    if form.is_valid():
        try:
            sender_lists.entry_add(
                actor=request.user,
                mailbox=mailbox.principal,
                domain=domain,
                list_name=list_name,
                value=form.cleaned_data["address"],
            )
        except ServiceError as exc:
            form.add_service_error(exc)
        else:
            form = None
    return _lists_answer(request, domain, mailbox, {list_name: form} if form else None)


@permission_required(Perm.PRINCIPAL_UPDATE)
@require_POST
def mailbox_list_remove(
    request: HttpRequest, domain_id: int, mailbox_id: int, list_name: str
) -> HttpResponse:
    domain, mailbox = _mailbox(request, domain_id, mailbox_id)
    _list_name(list_name)
    try:
        sender_lists.entry_remove(
            actor=request.user,
            mailbox=mailbox.principal,
            list_name=list_name,
            value=request.POST.get("value", "")[:320],
        )
    except ServiceError as exc:
        form = SenderListEntryForm(prefix=list_name, data={})
        form.add_error(None, exc.message)
        return _lists_answer(request, domain, mailbox, {list_name: form})
    return _lists_answer(request, domain, mailbox)


@permission_required(Perm.PRINCIPAL_UPDATE)
@require_POST
def mailbox_spam_settings(request: HttpRequest, domain_id: int, mailbox_id: int) -> HttpResponse:
    domain, mailbox = _mailbox(request, domain_id, mailbox_id)
    form = SpamSettingForm(request.POST)
    if form.is_valid():
        try:
            setting = sender_lists.setting_update(
                actor=request.user, mailbox=mailbox.principal, raw=form.raw()
            )
        except ServiceError as exc:
            form.add_service_error(exc)
        else:
            form = SpamSettingForm(initial=sender_lists.setting_data(setting))
            form.saved = True
            if not request.htmx:
                messages.success(request, f"Saved the spam settings of {mailbox.principal.name}.")
                return redirect(
                    "spamfilter:mailbox-spam", domain_id=domain.pk, mailbox_id=mailbox.pk
                )
    context = {"domain": domain, "mailbox": mailbox, "settings_form": form, "can_update": True}
    if request.htmx:
        status = FORM_INVALID if form.errors else 200
        return render_page(
            request, "spamfilter/mailbox_spam.html#mailbox-spam-settings", context, status=status
        )
    return _spam_page(request, domain, mailbox, settings_form=form, status=FORM_INVALID)
