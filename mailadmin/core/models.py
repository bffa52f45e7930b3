"""TaskRun: the progress and result of a long Celery task, shown live on the page."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class TaskRun(models.Model):
    """One piece of long work: what to run (task name + arguments), who started it, how far
    it got, and the lease of the worker carrying it out (see mailadmin.core.taskbase)."""

    class State(models.TextChoices):
        PENDING = "pending", "Waiting for a worker"
        RUNNING = "running", "Running"
        SUCCESS = "success", "Done"
        FAILURE = "failure", "Failed"

    UNFINISHED = (State.PENDING, State.RUNNING)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=64)
    title = models.CharField(max_length=255)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Who started it, kept when they are deleted (empty: the schedule started it), and from
    # where: the worker acts in that audit context.
    actor_name = models.CharField(max_length=255, blank=True, default="")
    actor_ip = models.GenericIPAddressField(null=True, blank=True)
    tenant = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.CASCADE, related_name="+"
    )
    # The Celery task (by name: the starter never imports it) and its keyword arguments.
    task_name = models.CharField(max_length=128, blank=True, default="")
    arguments = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    message = models.CharField(max_length=1024, blank=True, default="")
    result = models.JSONField(default=dict, blank=True)
    # Claims so far, and how many the task allows (set by the task when it claims).
    attempts = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=1)
    # A pending run is not taken before this (retry backoff); the reaper re-sends wake-ups
    # that were lost long after it.
    available_at = models.DateTimeField(default=timezone.now)
    # The current claim: every write of its worker names it, so a worker that lost its
    # lease (and was replaced) can no longer change the run.
    claim_id = models.UUIDField(null=True, blank=True, editable=False)
    worker = models.CharField(max_length=255, blank=True, default="")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["tenant", "-created_at"]),
            models.Index(fields=["kind", "-created_at"]),
            # the reaper: expired leases, lost wake-ups, old finished runs
            models.Index(fields=["state", "lease_expires_at"]),
            models.Index(fields=["state", "available_at"]),
            models.Index(fields=["finished_at"]),
        ]
        constraints = [
            # Starting a kind that is already under way shows that run instead of a twin.
            models.UniqueConstraint(
                fields=["kind"],
                condition=models.Q(state__in=["pending", "running"]),
                name="taskrun_one_unfinished_per_kind",
            )
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.state})"

    @property
    def finished(self) -> bool:
        return self.state in {self.State.SUCCESS, self.State.FAILURE}

    @property
    def percent(self) -> int:
        if self.state == self.State.SUCCESS:
            return 100
        return int(self.done * 100 / self.total) if self.total else 0


class AuditEvent(models.Model):
    """Who changed what, when, from where, through which interface (never secrets)."""

    class Interface(models.TextChoices):
        HTML = "html", "Console"
        API = "api", "REST API"
        ADMIN = "admin", "Django admin"
        TASK = "task", "Task"
        COMMAND = "command", "Command"
        SMTP = "smtp", "SMTP"

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=255, blank=True, default="")
    # SET_NULL: deleting a tenant keeps its history (then visible to superadmins only).
    tenant = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    interface = models.CharField(max_length=16, choices=Interface.choices)
    ip = models.GenericIPAddressField(null=True, blank=True)
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64, blank=True, default="")
    object_repr = models.CharField(max_length=255, blank=True, default="")
    changes = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        # One per filter of the audit page and API, tenant first (how tenants query it),
        # and without the tenant for superadmins.
        indexes = [
            models.Index(fields=["tenant", "-created_at"]),
            models.Index(fields=["tenant", "action", "-created_at"]),
            models.Index(fields=["tenant", "actor_name", "-created_at"]),
            models.Index(fields=["tenant", "interface", "-created_at"]),
            models.Index(fields=["tenant", "object_type", "object_id"]),
            models.Index(fields=["action", "-created_at"]),
            models.Index(fields=["actor_name", "-created_at"]),
            models.Index(fields=["object_type", "object_id"]),
        ]

    def __str__(self) -> str:
        return f"{self.actor_name} {self.action} {self.object_type} {self.object_repr}"


class SpentToken(models.Model):
    """A single-use token that was used (mailadmin.api.streams): its SHA-256, kept until
    the token would have expired. A table, not the cache: a cache may evict or cull the
    entry while the token is still valid, and the token would open a second stream."""

    digest = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.digest[:12]} until {self.expires_at:%Y-%m-%d %H:%M:%S}"
