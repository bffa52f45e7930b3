"""Fetch jobs API (/api/fetch/...), after the Maildaemon API (specs/mailbox-fetch-api.txt):
mailbox configurations (create, list, get, update, delete by uuid), "validate the
connection to the email and destination server", "Fetch now", and the monitoring of
processed mails (failed, successful; delete an entry).

Field names are the spec's (camelCase). The spec's OAuth (clientId, tenantId,
clientSecret), archiving and destination options are refused as unsupported. Extensions:
`security` (ssl | starttls | none: `useSsl` alone says ssl or starttls), `interval`
(minutes), and the last run's outcome on every configuration. The password is write-only.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers

from apps.accounts.permissions import Perm
from apps.queue import fetch_selectors as selectors
from apps.queue import fetch_services as services
from apps.queue.fetch_services import FetchValues
from apps.queue.models import FetchEntry, FetchJob
from mailadmin.api.pagination import paginate_request
from mailadmin.api.schema import PAGE_PARAMETERS, PROBLEM, NullField, envelope
from mailadmin.api.serializers import (
    QueryParams,
    StrictBooleanField,
    StrictCharField,
    StrictIntegerField,
    StrictSerializer,
    custom_error,
)
from mailadmin.api.views import MethodPermissionApi, ok

# The spec's fields this server does not offer: named, not silently dropped.
UNSUPPORTED = (
    "clientId",
    "tenantId",
    "clientSecret",
    "mailArchiving",
    "allowedEmailExtensions",
    "exportAttachments",
    "allowedAttachments",
    "destinations",
)
UNSUPPORTED_DETAIL = (
    "Unsupported field: {name} (OAuth client credentials, mail archiving and other "
    "destinations are not offered; mail is delivered into the local mailbox)"
)
UUID_PARAMETER = OpenApiParameter("uuid", OpenApiTypes.UUID, OpenApiParameter.PATH)
ENTRY_PARAMETER = OpenApiParameter("entry_id", OpenApiTypes.INT, OpenApiParameter.PATH)
MAILBOX_FILTER = OpenApiParameter(
    "mailbox", OpenApiTypes.STR, description="Only this configuration's entries (its uuid)"
)
SEARCH_PARAMETER = OpenApiParameter(
    "search", OpenApiTypes.STR, description="Part of the local mailbox or the remote host"
)


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def job_data(job: FetchJob) -> dict[str, Any]:
    return {
        "uuid": str(job.uuid),
        "active": job.active,
        "mailbox": job.mailbox_address,
        "host": job.host,
        "type": job.protocol,
        "port": job.port,
        "useSsl": job.security == FetchJob.Security.SSL,
        "security": job.security,
        "username": job.username,
        "folders": job.folders if job.protocol == FetchJob.Protocol.IMAP else None,
        "deleteMailsOnServer": job.delete_on_server,
        "interval": job.interval_minutes,
        "nextRun": _iso(job.next_run_at),
        "lastRun": _iso(job.last_run_at),
        "lastStatus": job.last_status,
        "lastError": job.last_error,
        "lastFetched": job.last_fetched,
        "lastFailed": job.last_failed,
        "createdAt": _iso(job.created_at),
    }


def info_data(job: FetchJob) -> dict[str, Any]:
    """The spec's "MailboxInfo": a configuration's state, without its settings."""
    return {
        "uuid": str(job.uuid),
        "mailbox": job.mailbox_address,
        "host": job.host,
        "type": job.protocol,
        "active": job.active,
        "running": job.claim_id is not None
        and job.lease_expires_at is not None
        and job.lease_expires_at > timezone.now(),
        "nextRun": _iso(job.next_run_at),
        "lastRun": _iso(job.last_run_at),
        "lastStatus": job.last_status,
        "lastError": job.last_error,
        "lastFetched": job.last_fetched,
        "lastFailed": job.last_failed,
    }


def entry_data(entry: FetchEntry) -> dict[str, Any]:
    return {
        "id": entry.pk,
        "mailbox": str(entry.job.uuid),
        "status": entry.status,
        "reason": entry.reason,
        "folder": entry.remote_folder,
        "remoteId": entry.remote_id,
        "messageId": entry.message_id,
        "subject": entry.subject,
        "sender": entry.sender,
        "size": entry.size,
        "processedAt": _iso(entry.created_at),
    }


class MailboxFetchConfiguration(serializers.Serializer):
    uuid = serializers.UUIDField()
    active = serializers.BooleanField()
    mailbox = serializers.EmailField()
    host = serializers.CharField()
    type = serializers.ChoiceField(choices=FetchJob.Protocol.choices)
    port = serializers.IntegerField()
    useSsl = serializers.BooleanField(help_text="Implicit TLS")  # noqa: N815 - the spec's
    security = serializers.ChoiceField(choices=FetchJob.Security.values)
    username = serializers.CharField()
    folders = serializers.ListField(child=serializers.CharField(), allow_null=True)
    deleteMailsOnServer = serializers.BooleanField()  # noqa: N815
    interval = serializers.IntegerField(help_text="Minutes between runs")
    nextRun = serializers.DateTimeField()  # noqa: N815
    lastRun = serializers.DateTimeField(allow_null=True)  # noqa: N815
    lastStatus = serializers.ChoiceField(choices=FetchJob.LastStatus.values)  # noqa: N815
    lastError = serializers.CharField()  # noqa: N815
    lastFetched = serializers.IntegerField()  # noqa: N815
    lastFailed = serializers.IntegerField()  # noqa: N815
    createdAt = serializers.DateTimeField()  # noqa: N815


class MailboxFetchInfo(serializers.Serializer):
    uuid = serializers.UUIDField()
    mailbox = serializers.EmailField()
    host = serializers.CharField()
    type = serializers.ChoiceField(choices=FetchJob.Protocol.choices)
    active = serializers.BooleanField()
    running = serializers.BooleanField(help_text="A run holds the configuration now")
    nextRun = serializers.DateTimeField()  # noqa: N815
    lastRun = serializers.DateTimeField(allow_null=True)  # noqa: N815
    lastStatus = serializers.ChoiceField(choices=FetchJob.LastStatus.values)  # noqa: N815
    lastError = serializers.CharField()  # noqa: N815
    lastFetched = serializers.IntegerField()  # noqa: N815
    lastFailed = serializers.IntegerField()  # noqa: N815


class MailboxFetchMonitoringEntry(serializers.Serializer):
    id = serializers.IntegerField()
    mailbox = serializers.UUIDField(help_text="The configuration's uuid")
    status = serializers.ChoiceField(choices=FetchEntry.Status.values)
    reason = serializers.CharField()
    folder = serializers.CharField()
    remoteId = serializers.CharField(help_text="IMAP UID or POP3 UIDL")  # noqa: N815
    messageId = serializers.CharField()  # noqa: N815
    subject = serializers.CharField()
    sender = serializers.CharField()
    size = serializers.IntegerField()
    processedAt = serializers.DateTimeField()  # noqa: N815


def _job() -> serializers.Serializer:
    return MailboxFetchConfiguration()


def _entry() -> serializers.Serializer:
    return MailboxFetchMonitoringEntry()


VALIDATION = inline_serializer(
    name="MailboxFetchValidation",
    fields={
        "ok": serializers.BooleanField(),
        "message": serializers.CharField(help_text="What was found, or the exact error"),
        "folders": serializers.ListField(child=serializers.CharField()),
        "missingFolders": serializers.ListField(child=serializers.CharField()),
        "destination": serializers.CharField(help_text="The local mailbox's state"),
    },
)


def _page(name: str, item) -> serializers.Serializer:
    return envelope(
        name,
        inline_serializer(
            name=f"{name}Data",
            fields={
                "items": serializers.ListField(child=item),
                "total": serializers.IntegerField(),
            },
        ),
    )


class JobInput(StrictSerializer):
    active = StrictBooleanField(required=False)
    mailbox = StrictCharField(max_length=320, required=False, allow_null=True)
    host = StrictCharField(max_length=255, required=False, allow_null=True)
    type = StrictCharField(max_length=16, required=False, allow_null=True)
    port = StrictIntegerField(min_value=0, max_value=65535, required=False)
    useSsl = StrictBooleanField(required=False)  # noqa: N815 - the spec's name
    security = serializers.ChoiceField(choices=FetchJob.Security.values, required=False)
    username = StrictCharField(max_length=320, required=False, allow_null=True)
    password = StrictCharField(
        max_length=1024, required=False, allow_null=True, trim_whitespace=False
    )
    folders = serializers.ListField(
        child=StrictCharField(max_length=255, allow_blank=True),
        max_length=services.MAX_FOLDERS,
        required=False,
        allow_null=True,
    )
    deleteMailsOnServer = StrictBooleanField(required=False)  # noqa: N815
    interval = StrictIntegerField(
        min_value=services.MIN_INTERVAL, max_value=services.MAX_INTERVAL, required=False
    )

    def to_internal_value(self, data):
        if isinstance(data, dict):
            for name in UNSUPPORTED:
                if name in data:
                    raise custom_error(name, UNSUPPORTED_DETAIL.format(name=name))
        return super().to_internal_value(data)

    def values(self) -> FetchValues:
        data = self.validated_data
        security = data.get("security")
        if "useSsl" in data:
            implied = FetchJob.Security.SSL if data["useSsl"] else FetchJob.Security.STARTTLS
            if security is None:
                security = implied
            elif (security == FetchJob.Security.SSL) != data["useSsl"]:
                raise custom_error(
                    "useSsl",
                    f"useSsl and security disagree: useSsl {str(data['useSsl']).lower()} with "
                    f"security {security}",
                )
        return FetchValues(
            mailbox=data.get("mailbox"),
            active=data.get("active"),
            protocol=data.get("type"),
            host=data.get("host"),
            port=data.get("port"),
            security=security,
            username=data.get("username"),
            password=data.get("password"),
            folders=data.get("folders"),
            delete_on_server=data.get("deleteMailsOnServer"),
            interval_minutes=data.get("interval"),
        )


def _input(request) -> FetchValues:
    body = JobInput(data=request.data)
    body.is_valid(raise_exception=True)
    return body.values()


class JobListParams(QueryParams):
    search = serializers.CharField(max_length=320, required=False)


class EntryListParams(QueryParams):
    mailbox = serializers.CharField(max_length=64, required=False)


class FetchJobListApi(MethodPermissionApi):
    method_permissions = {"GET": Perm.MAILBOX_FETCH_LIST, "POST": Perm.MAILBOX_FETCH_CREATE}

    @extend_schema(
        operation_id="fetch_mailboxes_list",
        parameters=[*PAGE_PARAMETERS, SEARCH_PARAMETER],
        responses={200: _page("MailboxFetchConfigurationPage", _job()), 400: PROBLEM},
    )
    def get(self, request):
        params = JobListParams(data=request.query_params)
        params.is_valid(raise_exception=True)
        jobs = selectors.fetch_job_list(
            actor=request.user, search=params.validated_data.get("search", "")
        )
        return ok(paginate_request(request, jobs, job_data))

    @extend_schema(
        operation_id="fetch_mailbox_create",
        description="Create a mailbox configuration: the local `mailbox` (an address of an "
        "account of your tenant) receives the mail of the remote account. Required: "
        "mailbox, type (imap or pop3), host, username, password.",
        request=JobInput,
        responses={200: envelope("MailboxFetchConfigurationCreated", _job()), 400: PROBLEM},
    )
    def post(self, request):
        job = services.fetch_job_create(actor=request.user, values=_input(request))
        return ok(job_data(job))


class FetchJobDetailApi(MethodPermissionApi):
    method_permissions = {
        "GET": Perm.MAILBOX_FETCH_GET,
        "PUT": Perm.MAILBOX_FETCH_UPDATE,
        "PATCH": Perm.MAILBOX_FETCH_UPDATE,
        "DELETE": Perm.MAILBOX_FETCH_DELETE,
    }

    @extend_schema(
        operation_id="fetch_mailbox_get",
        parameters=[UUID_PARAMETER],
        responses={200: envelope("MailboxFetchConfigurationData", _job()), 404: PROBLEM},
    )
    def get(self, request, uuid: str):
        return ok(job_data(selectors.fetch_job_get(actor=request.user, job_uuid=uuid)))

    def _update(self, request, uuid: str):
        job = selectors.fetch_job_get(actor=request.user, job_uuid=uuid)
        job = services.fetch_job_update(actor=request.user, job=job, values=_input(request))
        return ok(job_data(job))

    @extend_schema(
        operation_id="fetch_mailbox_update",
        parameters=[UUID_PARAMETER],
        description="Update the fields given (the others are kept). Changing type, host, port "
        "or username forgets which remote messages were already fetched.",
        request=JobInput,
        responses={200: envelope("MailboxFetchConfigurationUpdated", _job()), 404: PROBLEM},
    )
    def put(self, request, uuid: str):
        return self._update(request, uuid)

    @extend_schema(
        operation_id="fetch_mailbox_patch",
        parameters=[UUID_PARAMETER],
        description="Same as PUT.",
        request=JobInput,
        responses={200: envelope("MailboxFetchConfigurationPatched", _job()), 404: PROBLEM},
    )
    def patch(self, request, uuid: str):
        return self._update(request, uuid)

    @extend_schema(
        operation_id="fetch_mailbox_delete",
        parameters=[UUID_PARAMETER],
        description="Delete the configuration and its monitoring entries (mail already "
        "fetched stays in the mailbox).",
        responses={200: envelope("MailboxFetchDeleted", NullField()), 404: PROBLEM},
    )
    def delete(self, request, uuid: str):
        job = selectors.fetch_job_get(actor=request.user, job_uuid=uuid)
        services.fetch_job_delete(actor=request.user, job=job)
        return ok(None)


class FetchJobValidateApi(MethodPermissionApi):
    method_permissions = {"GET": Perm.MAILBOX_FETCH_UPDATE, "POST": Perm.MAILBOX_FETCH_UPDATE}

    @extend_schema(
        operation_id="fetch_mailbox_validate",
        parameters=[UUID_PARAMETER],
        description="Validate the connection to the email and destination server: log in, "
        "list the folders (IMAP) or count the messages (POP3), check the local mailbox. "
        "Answers 200 with ok false and the server's exact error when it fails.",
        request=None,
        responses={200: envelope("MailboxFetchValidationData", VALIDATION), 404: PROBLEM},
    )
    def post(self, request, uuid: str):
        job = selectors.fetch_job_get(actor=request.user, job_uuid=uuid)
        return ok(services.fetch_job_validate(actor=request.user, job=job).as_dict())

    @extend_schema(
        operation_id="fetch_mailbox_validate_get",
        parameters=[UUID_PARAMETER],
        description="Same as POST.",
        responses={200: envelope("MailboxFetchValidationResult", VALIDATION), 404: PROBLEM},
    )
    def get(self, request, uuid: str):
        return self.post(request, uuid)


class FetchJobRunApi(MethodPermissionApi):
    method_permissions = {"POST": Perm.MAILBOX_FETCH_UPDATE}

    @extend_schema(
        operation_id="fetch_mailbox_run",
        parameters=[UUID_PARAMETER],
        description="Fetch now: a run of this configuration (or the one under way), watched "
        "at /api/task/{taskId}.",
        request=None,
        responses={
            202: envelope(
                "MailboxFetchRun",
                inline_serializer(
                    name="MailboxFetchRunData",
                    fields={"taskId": serializers.UUIDField(), "state": serializers.CharField()},
                ),
            ),
            404: PROBLEM,
        },
    )
    def post(self, request, uuid: str):
        job = selectors.fetch_job_get(actor=request.user, job_uuid=uuid)
        run = services.fetch_job_run_start(actor=request.user, job=job)
        return ok({"taskId": str(run.pk), "state": run.state}, status=202)


def _entries(request, status: str):
    params = EntryListParams(data=request.query_params)
    params.is_valid(raise_exception=True)
    job = None
    if params.validated_data.get("mailbox"):
        job = selectors.fetch_job_get(actor=request.user, job_uuid=params.validated_data["mailbox"])
    entries = selectors.fetch_entry_list(actor=request.user, status=status, job=job)
    return ok(paginate_request(request, entries, entry_data))


class FetchFailedListApi(MethodPermissionApi):
    method_permissions = {"GET": Perm.MAILBOX_FETCH_LIST}

    @extend_schema(
        operation_id="fetch_monitoring_failed",
        parameters=[*PAGE_PARAMETERS, MAILBOX_FILTER],
        description="Entries of failed processed mails, newest first.",
        responses={200: _page("MailboxFetchFailedPage", _entry()), 400: PROBLEM},
    )
    def get(self, request):
        return _entries(request, FetchEntry.Status.FAILED)


class FetchSuccessfulListApi(MethodPermissionApi):
    method_permissions = {"GET": Perm.MAILBOX_FETCH_LIST}

    @extend_schema(
        operation_id="fetch_monitoring_successful",
        parameters=[*PAGE_PARAMETERS, MAILBOX_FILTER],
        description="Entries of successfully processed mails, newest first.",
        responses={200: _page("MailboxFetchSuccessfulPage", _entry()), 400: PROBLEM},
    )
    def get(self, request):
        return _entries(request, FetchEntry.Status.SUCCESS)


class FetchInfoListApi(MethodPermissionApi):
    method_permissions = {"GET": Perm.MAILBOX_FETCH_LIST}

    @extend_schema(
        operation_id="fetch_monitoring_info",
        parameters=PAGE_PARAMETERS,
        description="Get all entries from MailboxInfo: each configuration's state (running, "
        "the last run's outcome, the next run).",
        responses={200: _page("MailboxFetchInfoPage", MailboxFetchInfo()), 400: PROBLEM},
    )
    def get(self, request):
        jobs = selectors.fetch_job_list(actor=request.user)
        return ok(paginate_request(request, jobs, info_data))


class FetchEntryDetailApi(MethodPermissionApi):
    method_permissions = {"GET": Perm.MAILBOX_FETCH_GET, "DELETE": Perm.MAILBOX_FETCH_DELETE}

    @extend_schema(
        operation_id="fetch_monitoring_get",
        parameters=[ENTRY_PARAMETER],
        responses={200: envelope("MailboxFetchMonitoringEntryData", _entry()), 404: PROBLEM},
    )
    def get(self, request, entry_id: int):
        return ok(entry_data(selectors.fetch_entry_get(actor=request.user, entry_id=entry_id)))

    @extend_schema(
        operation_id="fetch_monitoring_delete",
        parameters=[ENTRY_PARAMETER],
        responses={200: envelope("MailboxFetchMonitoringDeleted", NullField()), 404: PROBLEM},
    )
    def delete(self, request, entry_id: int):
        entry = selectors.fetch_entry_get(actor=request.user, entry_id=entry_id)
        services.fetch_entry_delete(actor=request.user, entry=entry)
        return ok(None)
