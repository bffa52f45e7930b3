"""Spam filter API (management API): classify, train, the Bayes purge endpoints and the
rules reload (/api/update/spam-filter)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import parsers, serializers

from apps.accounts.permissions import Perm
from apps.spamfilter import services
from mailadmin.api.parsers import JSONParser, PayloadTooLarge, body_limit, too_large_detail
from mailadmin.api.schema import NULL_DATA, PROBLEM, envelope
from mailadmin.api.serializers import (
    StrictBooleanField,
    StrictCharField,
    StrictIntegerField,
    StrictSerializer,
)
from mailadmin.api.views import MethodPermissionApi, ok
from mailadmin.errors import ValidationFailed

MAX_RECIPIENTS = 1000
# envFromFlags is the MAIL FROM parameters as the spec's product numbers them (its SMTP
# library's MAIL_* bits); the one the scan needs is SMTPUTF8, 1 << 5.
MAIL_SMTPUTF8 = 1 << 5
ACCOUNT_PARAMETER = OpenApiParameter(
    "account_id",
    {"type": "string", "minLength": 1, "maxLength": 255},
    OpenApiParameter.PATH,
    description="The account's name or id",
)


@extend_schema_field(
    {"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}, {"maxLength": 0}]}
)
class RemoteIpField(serializers.IPAddressField):
    pass


class ClassifyInput(StrictSerializer):
    """The management API's request: only `message` is required."""

    message = StrictCharField(trim_whitespace=False, max_length=10_000_000)
    remoteIp = RemoteIpField(required=False, allow_blank=True)  # noqa: N815
    ehloDomain = StrictCharField(required=False, allow_blank=True, max_length=255)  # noqa: N815
    authenticatedAs = StrictCharField(  # noqa: N815
        required=False, allow_null=True, allow_blank=True, max_length=255
    )
    isTls = StrictBooleanField(required=False, default=False)  # noqa: N815
    envFrom = StrictCharField(required=False, allow_blank=True, max_length=512)  # noqa: N815
    envFromFlags = StrictIntegerField(  # noqa: N815
        required=False,
        min_value=0,
        max_value=2**31 - 1,
        help_text="MAIL FROM parameters as bits; 32 (1 << 5) is SMTPUTF8.",
    )
    envRcptTo = serializers.ListField(  # noqa: N815
        child=StrictCharField(max_length=512), required=False, max_length=MAX_RECIPIENTS
    )


TAG_RESULT = inline_serializer(
    name="SpamTagResult",
    fields={"action": serializers.CharField(), "value": serializers.FloatField()},
)
CLASSIFY_RESULT = envelope(
    "SpamClassification",
    inline_serializer(
        name="SpamClassificationData",
        fields={
            "score": serializers.FloatField(),
            "tags": serializers.DictField(child=TAG_RESULT),
            "disposition": inline_serializer(
                name="SpamDisposition",
                fields={
                    "action": serializers.ChoiceField(
                        choices=["allow", "quarantine", "reject", "discard"]
                    ),
                    "value": serializers.CharField(help_text="X-Spam-Result and X-Spam-Status"),
                },
            ),
            "authenticationResults": serializers.CharField(
                help_text="The Authentication-Results header (RFC 8601)"
            ),
        },
    ),
)


def verdict_data(verdict: services.Verdict) -> dict[str, Any]:
    return {
        "score": verdict.score,
        "tags": {
            tag: {"action": r.action, "value": r.value} for tag, r in sorted(verdict.tags.items())
        },
        "disposition": {"action": verdict.action, "value": verdict.disposition_value},
        "authenticationResults": verdict.authentication_results,
    }


class ClassifyApi(MethodPermissionApi):
    method_permissions = {"POST": Perm.SPAM_FILTER_CLASSIFY}

    @extend_schema(
        operation_id="spam_filter_classify",
        request=ClassifyInput,
        responses={200: CLASSIFY_RESULT, 400: PROBLEM, 403: PROBLEM},
        description=(
            "Scores a message as if it had been received with this envelope: sender "
            "authentication (SPF, DKIM, ARC, DMARC, iprev) against live DNS, the rules "
            "and Bayes. Nothing is stored."
        ),
    )
    def post(self, request):
        data = ClassifyInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        verdict = services.classify(
            actor=request.user,
            message=values["message"].encode("utf-8", "surrogateescape"),
            remote_ip=values.get("remoteIp") or "",
            ehlo_domain=values.get("ehloDomain") or "",
            env_from=values.get("envFrom") or "",
            env_rcpt_to=values.get("envRcptTo") or [],
            authenticated_as=values.get("authenticatedAs") or "",
            is_tls=values.get("isTls", False),
            smtputf8=bool(values.get("envFromFlags", 0) & MAIL_SMTPUTF8),
        )
        return ok(verdict_data(verdict))


class RawMessageParser(parsers.BaseParser):
    """The body as the message itself (bounded like every other body)."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None) -> bytes:
        limit = body_limit()
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise PayloadTooLarge(too_large_detail())
        return raw


class MessageRfc822Parser(RawMessageParser):
    media_type = "message/rfc822"


class TextPlainParser(RawMessageParser):
    media_type = "text/plain"


class FormBodyParser(RawMessageParser):
    # The spec's code sample sends the message with this content type, unencoded.
    media_type = "application/x-www-form-urlencoded"


class OctetStreamParser(RawMessageParser):
    media_type = "application/octet-stream"


def _message_body(request) -> bytes:
    data = request.data
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode("utf-8", "surrogateescape")
    raise ValidationFailed(
        "The body must be the message: raw (message/rfc822 or text/plain) or a JSON string.",
        field="body",
    )


TRAIN_BODY = {
    "message/rfc822": {"type": "string", "minLength": 1},
    "text/plain": {"type": "string", "minLength": 1},
    "application/json": {"type": "string", "minLength": 1},
}


def _train_view(kind: str, per_account: bool) -> type[MethodPermissionApi]:
    class TrainApi(MethodPermissionApi):
        method_permissions = {"POST": Perm.SPAM_FILTER_TRAIN}
        parser_classes = [
            JSONParser,
            MessageRfc822Parser,
            TextPlainParser,
            FormBodyParser,
            OctetStreamParser,
        ]

        @extend_schema(
            operation_id=f"spam_filter_train_{kind}" + ("_account" if per_account else ""),
            request=TRAIN_BODY,
            parameters=[ACCOUNT_PARAMETER] if per_account else [],
            responses={200: NULL_DATA, 400: PROBLEM, 403: PROBLEM, 404: PROBLEM, 413: PROBLEM},
            description=(
                f"Teaches the {'account' if per_account else 'global'} Bayes model that the "
                f"message is {kind}. The global model is shared by every tenant: only a "
                "superadmin trains it."
            ),
        )
        def post(self, request, account_id: str | None = None):
            services.bayes_train(
                actor=request.user,
                message=_message_body(request),
                spam=kind == "spam",
                account_id=account_id,
            )
            return ok(None)

    name = f"Train{kind.capitalize()}{'Account' if per_account else ''}Api"
    TrainApi.__name__ = TrainApi.__qualname__ = name
    return TrainApi


TrainSpamApi = _train_view("spam", False)
TrainHamApi = _train_view("ham", False)
TrainSpamAccountApi = _train_view("spam", True)
TrainHamAccountApi = _train_view("ham", True)


class BayesGlobalPurgeApi(MethodPermissionApi):
    method_permissions = {"GET": Perm.PURGE_IN_MEMORY_STORE}

    @extend_schema(
        operation_id="bayes_global_purge",
        responses={200: NULL_DATA, 403: PROBLEM},
        description="Deletes the global Bayes model (it learns again from nothing).",
    )
    def get(self, request):
        services.bayes_purge(actor=request.user)
        return ok(None)


class BayesAccountPurgeApi(MethodPermissionApi):
    method_permissions = {"GET": Perm.PURGE_ACCOUNT}

    @extend_schema(
        operation_id="bayes_account_purge",
        parameters=[ACCOUNT_PARAMETER],
        responses={200: NULL_DATA, 403: PROBLEM, 404: PROBLEM},
        description="Deletes one account's Bayes model.",
    )
    def get(self, request, account_id: str):
        services.bayes_purge(actor=request.user, account_id=account_id)
        return ok(None)


RELOAD_RESULT = envelope(
    "SpamFilterUpdate",
    inline_serializer(
        name="SpamFilterUpdateData",
        fields={
            "version": serializers.CharField(),
            "previousVersion": serializers.CharField(allow_null=True),
            "rules": serializers.IntegerField(),
            "added": serializers.ListField(child=serializers.CharField()),
            "removed": serializers.ListField(child=serializers.CharField()),
            "changed": serializers.DictField(
                child=serializers.DictField(),
                help_text=(
                    "Rules changed in force: {tag: {from, to}}, each {score, enabled, action}; "
                    "an overridden rule whose entry in the file changed also has "
                    "file: {from, to}, the file's own values (from and to may then be equal)"
                ),
            ),
            "overrides": serializers.DictField(
                child=serializers.DictField(),
                help_text="Rules the settings store overrides: {tag: {score, enabled}}",
            ),
            "thresholds": serializers.DictField(
                child=serializers.FloatField(),
                help_text="Thresholds in force: {spam, quarantine, reject, discard} (0 = off)",
            ),
            "thresholdOverrides": serializers.ListField(
                child=serializers.CharField(),
                help_text="Thresholds set in the settings store (the others: the environment)",
            ),
            "thresholdsChanged": serializers.DictField(
                child=serializers.DictField(),
                help_text="Thresholds changed since the previous reload: {name: {from, to}}",
            ),
        },
    ),
)


class SpamFilterUpdateApi(MethodPermissionApi):
    method_permissions = {"GET": Perm.SPAM_FILTER_UPDATE}

    @extend_schema(
        operation_id="spam_filter_update",
        responses={200: RELOAD_RESULT, 400: PROBLEM, 403: PROBLEM},
        description=(
            "Reloads the rules file and the overrides of the settings store "
            "(spam-filter.rule.<TAG>.score / .enabled) and answers what changed since the "
            "previous reload: tags added, removed, and changed (score, enabled, action, "
            "overrides included; a file change under an override too), the overrides in "
            "force, and the score thresholds in force "
            "(spam-filter.threshold.<name> over MAILADMIN_SPAM_THRESHOLD_*) with those "
            "changed since the previous reload. A file that does not load is "
            "a 400 naming the problem; the rules in force stay."
        ),
    )
    def get(self, request):
        return ok(services.rules_reload(actor=request.user))


class DmarcTroubleshootInput(StrictSerializer):
    remoteIp = RemoteIpField(required=False, allow_blank=True)  # noqa: N815
    ehloDomain = StrictCharField(required=False, allow_blank=True, max_length=255)  # noqa: N815
    mailFrom = StrictCharField(required=False, allow_blank=True, max_length=512)  # noqa: N815
    # The message: DKIM, ARC and DMARC need it (the spec marks nothing required).
    body = StrictCharField(trim_whitespace=False, max_length=10_000_000)


# Result names as the management API writes them.
RESULT_TYPES = {
    "pass": "pass",
    "fail": "fail",
    "softfail": "softFail",
    "neutral": "neutral",
    "none": "none",
    "temperror": "tempError",
    "permerror": "permError",
    "": "none",
}
RESULT = inline_serializer(name="AuthResultType", fields={"type": serializers.CharField()})
TROUBLESHOOT_RESULT = envelope(
    "DmarcTroubleshooting",
    inline_serializer(
        name="DmarcTroubleshootingData",
        fields={
            "spfEhloDomain": serializers.CharField(),
            "spfEhloResult": RESULT,
            "spfMailFromDomain": serializers.CharField(),
            "spfMailFromResult": inline_serializer(
                name="SpfMailFromResult",
                fields={
                    "type": serializers.CharField(),
                    "details": serializers.CharField(allow_null=True),
                },
            ),
            "ipRevResult": RESULT,
            "ipRevPtr": serializers.ListField(child=serializers.CharField()),
            "dkimResults": serializers.ListField(
                child=inline_serializer(
                    name="DkimResultItem",
                    fields={
                        "type": serializers.CharField(),
                        "domain": serializers.CharField(),
                        "selector": serializers.CharField(),
                        "details": serializers.CharField(allow_null=True),
                    },
                )
            ),
            "dkimPass": serializers.BooleanField(),
            "arcResult": RESULT,
            "dmarcResult": RESULT,
            "dmarcPass": serializers.BooleanField(),
            "dmarcPolicy": serializers.CharField(),
            "elapsed": serializers.IntegerField(help_text="milliseconds"),
        },
    ),
)


def _details(result: str, text: str) -> str | None:
    return text or None if result in ("temperror", "permerror", "fail") else None


TESTING_MODE = "the key is in testing mode (t=y): judged as unsigned"


def _dkim_details(result) -> str | None:
    details = _details(result.result, result.detail)
    if result.counts:
        return details
    return f"{details}; {TESTING_MODE}" if details else TESTING_MODE


def troubleshoot_data(results, elapsed: float) -> dict[str, Any]:
    helo = results.helo_spf
    dmarc = results.dmarc
    return {
        "spfEhloDomain": results.helo,
        "spfEhloResult": {"type": RESULT_TYPES.get(helo.result if helo else "", "none")},
        "spfMailFromDomain": results.spf.domain,
        "spfMailFromResult": {
            "type": RESULT_TYPES.get(results.spf.result, "none"),
            "details": _details(results.spf.result, results.spf.explanation),
        },
        "ipRevResult": {"type": RESULT_TYPES.get(results.iprev.result, "none")},
        "ipRevPtr": [f"{name}." for name in results.iprev.names],
        "dkimResults": [
            {
                "type": RESULT_TYPES.get(r.result, r.result),
                "domain": r.domain,
                "selector": r.selector,
                "details": _dkim_details(r),
            }
            for r in results.dkim
        ],
        "dkimPass": any(r.verified for r in results.dkim),
        "arcResult": {"type": RESULT_TYPES.get(results.arc.result, "none")},
        "dmarcResult": {"type": RESULT_TYPES.get(dmarc.result, "none")},
        "dmarcPass": dmarc.result == "pass",
        "dmarcPolicy": dmarc.published_policy,
        "elapsed": round(elapsed * 1000),
    }


class DmarcTroubleshootApi(MethodPermissionApi):
    method_permissions = {"POST": Perm.TROUBLESHOOT}

    @extend_schema(
        operation_id="troubleshoot_dmarc",
        request=DmarcTroubleshootInput,
        responses={200: TROUBLESHOOT_RESULT, 400: PROBLEM, 403: PROBLEM},
        description=(
            "SPF (HELO and MAIL FROM), iprev, DKIM, ARC and DMARC for a message as if it "
            "arrived now from remoteIp, asked of live DNS."
        ),
    )
    def post(self, request):
        data = DmarcTroubleshootInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        results, elapsed = services.dmarc_troubleshoot(
            actor=request.user,
            remote_ip=values.get("remoteIp") or "",
            ehlo_domain=values.get("ehloDomain") or "",
            mail_from=values.get("mailFrom") or "",
            message=(values.get("body") or "").encode("utf-8", "surrogateescape"),
        )
        return ok(troubleshoot_data(results, elapsed))
