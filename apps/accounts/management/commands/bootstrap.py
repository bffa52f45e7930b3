"""First-run setup: a superadmin and a demo tenant with its admin. Safe to run again."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from apps.accounts.models import Principal, PrincipalType
from apps.accounts.principals.services import builtin_role, tenant_ensure
from mailadmin.audit import audit


def _password_for(name: str) -> tuple[str, bool]:
    """The generated password of a bootstrap login, kept in var/ so it can be shown again."""
    path = settings.VAR_DIR / f"{name}.password"
    if path.exists():
        return path.read_text().strip(), False
    password = secrets.token_urlsafe(12)
    path.write_text(password)
    path.chmod(0o600)
    return password, True


class Command(BaseCommand):
    help = "Create the superadmin and a demo tenant with its admin; print their logins."

    @transaction.atomic
    def handle(self, *args, **options):
        logins = []
        for name, tenant_name, role in (
            ("superadmin", None, "admin"),
            ("demo-admin", "demo", "tenant-admin"),
        ):
            password, new = _password_for(name)
            principal = Principal.objects.filter(name=name).first()
            if principal is None:
                tenant = (
                    tenant_ensure(name=tenant_name, description="Demo tenant")
                    if (tenant_name)
                    else None
                )
                principal = Principal.objects.create_user(
                    name,
                    password,
                    type=PrincipalType.INDIVIDUAL,
                    tenant=tenant,
                    is_superuser=tenant is None,
                    description="Superadmin" if tenant is None else "Demo tenant admin",
                )
                principal.roles.add(builtin_role(role))
                audit(
                    actor=None,
                    action="principal.create",
                    obj=principal,
                    tenant_id=principal.tenant_id,
                    changes={"name": name, "roles": [role], "tenant": tenant_name},
                )
            elif new:
                continue  # someone else made this login: we don't know its password
            if principal.check_password(password):
                logins.append((name, password, tenant_name or "all tenants"))
        host, port = settings.MAILADMIN_HTTP_BIND
        for name, password, scope in logins:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Login at http://{host}:{port}/ as {name} / {password} ({scope})"
                )
            )
