"""Writes to principals. Every change goes through here, whoever asks for it.

A principal's editable state is a dict keyed by the management API's field names
(`name`, `emails`, `memberOf`, ...). Create starts from defaults, update from the current
state plus PATCH operations; both then run the same checks (`_resolve`) on the whole new
state before anything is written, inside one transaction, so a request changes all or
nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction

from apps.accounts.auth import api_keys
from apps.accounts.auth.common import require_main_login_to_set_secret
from apps.accounts.auth.hashers import import_password_hash, looks_like_crypt_hash
from apps.accounts.emails import (
    InvalidAddress,
    display_address,
    display_domain,
    domain_of,
    normalize_address,
)
from apps.accounts.emails import normalize_domain as _normalize_domain
from apps.accounts.models import Principal, PrincipalEmail, PrincipalType
from apps.accounts.names import foreign_domain_problem, foreign_parent_problem, name_problem
from apps.accounts.permissions import ALL_PERMISSIONS, BUILTIN_ROLES, Perm
from apps.accounts.principals.selectors import principal_scope
from apps.spamfilter import bayes
from mailadmin.audit import audit
from mailadmin.errors import NotFound, PermissionDenied, ServiceError

T = PrincipalType
SUPERADMIN_ROLE = "admin"

SCALAR_FIELDS = (
    "name",
    "description",
    "quota",
    "maxDomains",
    "maxAccounts",
    "maxMailboxesPerUser",
)
LIST_FIELDS = (
    "emails",
    "urls",
    "memberOf",
    "roles",
    "lists",
    "members",
    "enabledPermissions",
    "disabledPermissions",
    "externalMembers",
)
# Set once at creation: moving a principal between tenants or types is a delete + create.
FIXED_FIELDS = ("type", "tenant")
SECRET_FIELD = "secrets"  # noqa: S105 - a field name, not a secret
EDITABLE_FIELDS = frozenset((*SCALAR_FIELDS, *LIST_FIELDS, SECRET_FIELD))
PATCH_ACTIONS = ("set", "addItem", "removeItem")
# What the columns hold (BigIntegerField, PositiveIntegerField on every database we run on).
MAX_QUOTA = 2**63 - 1
MAX_LIMIT_VALUE = 2**31 - 1

# Which fields may hold a value for each type ("description" and "name" apply to all).
APPLIES: dict[str, frozenset[str]] = {
    T.INDIVIDUAL: frozenset(
        {
            "quota",
            "secrets",
            "emails",
            "urls",
            "memberOf",
            "roles",
            "lists",
            "enabledPermissions",
            "disabledPermissions",
        }
    ),
    T.GROUP: frozenset({"emails", "urls", "memberOf", "lists", "members"}),
    T.LIST: frozenset({"emails", "urls", "members", "externalMembers"}),
    T.DOMAIN: frozenset(),
    T.TENANT: frozenset({"quota", "maxDomains", "maxAccounts", "maxMailboxesPerUser"}),
    T.ROLE: frozenset({"enabledPermissions", "disabledPermissions", "members"}),
    T.API_KEY: frozenset({"roles", "enabledPermissions", "disabledPermissions"}),
}
# Who may appear in `members` of each type.
MEMBER_TYPES: dict[str, frozenset[str]] = {
    T.GROUP: frozenset({T.INDIVIDUAL, T.GROUP}),
    T.LIST: frozenset({T.INDIVIDUAL, T.GROUP, T.LIST}),
    T.ROLE: frozenset({T.INDIVIDUAL, T.API_KEY}),
}
TYPE_PERMISSIONS: dict[str, dict[str, str]] = {
    "create": {T.TENANT: Perm.TENANT_CREATE, T.API_KEY: Perm.API_KEY_CREATE},
    "update": {T.TENANT: Perm.TENANT_UPDATE},
    "delete": {T.TENANT: Perm.TENANT_DELETE, T.API_KEY: Perm.API_KEY_DELETE},
}
BASE_PERMISSIONS = {
    "create": Perm.PRINCIPAL_CREATE,
    "update": Perm.PRINCIPAL_UPDATE,
    "delete": Perm.PRINCIPAL_DELETE,
}


# --- small public helpers (bootstrap, fixtures) -----------------------------------------


@transaction.atomic
def tenant_ensure(*, name: str, description: str = "") -> Principal:
    tenant, created = Principal.objects.get_or_create(
        name=name, defaults={"type": PrincipalType.TENANT, "description": description}
    )
    if created:
        audit(actor=None, action="principal.create", obj=tenant, changes={"type": "tenant"})
    return tenant


def builtin_role(name: str) -> Principal:
    return Principal.objects.get(name=name, type=PrincipalType.ROLE, tenant=None)


def is_builtin_role(principal: Principal) -> bool:
    return (
        principal.type == T.ROLE and principal.tenant_id is None and principal.name in BUILTIN_ROLES
    )


def principal_state(principal: Principal) -> dict[str, Any]:
    """The editable state of a principal, keyed by API field names (never the secret)."""
    groups = principal.member_of.all()
    if principal.type == T.ROLE:
        members = principal.role_holders.all()
    elif principal.type in MEMBER_TYPES:
        members = principal.members.all()
    else:
        members = []
    return {
        "type": principal.type,
        "tenant": principal.tenant.name if principal.tenant_id else None,
        "name": principal.name,
        "description": principal.description,
        "quota": principal.quota,
        "maxDomains": principal.max_domains,
        "maxAccounts": principal.max_accounts,
        "maxMailboxesPerUser": principal.max_mailboxes_per_user,
        "emails": [e.address for e in principal.emails.all()],
        "urls": list(principal.urls),
        "memberOf": sorted(g.name for g in groups if g.type != T.LIST),
        "lists": sorted(g.name for g in groups if g.type == T.LIST),
        "roles": sorted(r.name for r in principal.roles.all()),
        "members": sorted(m.name for m in members),
        "enabledPermissions": list(principal.enabled_permissions),
        "disabledPermissions": list(principal.disabled_permissions),
        "externalMembers": list(principal.external_members),
    }


# --- create / update / delete ----------------------------------------------------------


@transaction.atomic
def principal_create(*, actor: Principal, data: dict[str, Any]) -> Principal:
    """Create a principal from API-shaped `data` (already parsed to the right types)."""
    type_ = data.get("type")
    if type_ not in APPLIES:
        raise ServiceError(f"Unknown principal type: {type_}", field="type")
    _require(actor, "create", type_)
    if type_ == T.API_KEY:
        return _api_key_create(actor, data)
    tenant = _tenant_for_create(actor, type_, data)
    state: dict[str, Any] = {
        "type": type_,
        "tenant": tenant.name if tenant else None,
        "name": "",
        "description": "",
        "quota": 0,
        "maxDomains": None,
        "maxAccounts": None,
        "maxMailboxesPerUser": None,
        **{name: [] for name in LIST_FIELDS},
    }
    unknown = set(data) - EDITABLE_FIELDS - set(FIXED_FIELDS)
    if unknown:
        raise ServiceError(f"Unrecognized field: {sorted(unknown)[0]}", field=sorted(unknown)[0])
    password = None
    for name, value in data.items():
        if name in FIXED_FIELDS:
            continue
        if name == SECRET_FIELD:
            password = _password_from(value)
            continue
        state[name] = _typed(name, value)
    if not state["name"]:
        raise ServiceError("Missing required field: name", field="name")
    if password and SECRET_FIELD not in APPLIES[type_]:
        _not_applicable(SECRET_FIELD, type_)

    plan = _resolve(actor=actor, state=state, before=None, tenant=tenant, principal=None)
    principal = Principal(
        type=type_, tenant=tenant, name=plan.state["name"], created_by=actor if actor.pk else None
    )
    if password:
        _set_secret(principal, password)
    else:
        principal.set_unusable_password()
    _write(principal, plan, created=True)
    changes = {k: v for k, v in plan.state.items() if v not in ([], None, "", 0)}
    if password:
        changes[SECRET_FIELD] = True  # redacted by audit(): only says a password was set
    audit(
        actor=actor,
        action="principal.create",
        obj=principal,
        tenant_id=_audit_tenant(principal),
        changes=changes,
    )
    return principal


@transaction.atomic
def principal_update(
    *, actor: Principal, principal: Principal, operations: Sequence[dict[str, Any]]
) -> Principal:
    """Apply PATCH operations ({action, field, value}); all of them or none."""
    _require(actor, "update", principal.type)
    _ensure_in_scope(actor, principal)
    if is_builtin_role(principal):
        raise ServiceError(f"The built-in role {principal.name} can't be changed.")
    before = principal_state(principal)
    state = {k: (list(v) if isinstance(v, list) else v) for k, v in before.items()}
    password: str | None = None
    remove_password = False
    for index, op in enumerate(operations):
        action, name, value = op.get("action"), op.get("field"), op.get("value")
        if action not in PATCH_ACTIONS:
            raise ServiceError(f"Unknown action: {action}", field=f"[{index}].action")
        if name in FIXED_FIELDS:
            raise ServiceError(f"The field {name} can't be changed.", field=name)
        if name not in EDITABLE_FIELDS:
            raise ServiceError(f"Unrecognized field: {name}", field=name)
        if name == SECRET_FIELD:
            if SECRET_FIELD not in APPLIES[principal.type]:
                _not_applicable(name, principal.type)
            require_main_login_to_set_secret(actor, principal)
            password = None if action == "removeItem" else _password_from(value)
            remove_password = password is None
            continue
        if action == "set":
            state[name] = _typed(name, value)
        elif name not in LIST_FIELDS:
            raise ServiceError(
                f"The action {action} does not apply to the field {name}.", field=name
            )
        else:
            item = _typed_item(name, value)
            if action == "addItem" and item not in state[name]:
                state[name].append(item)
            elif action == "removeItem" and item in state[name]:
                state[name].remove(item)

    tenant = principal.tenant
    plan = _resolve(actor=actor, state=state, before=before, tenant=tenant, principal=principal)
    changes = _diff(before, plan.state)
    if password:
        _set_secret(principal, password)
        changes[SECRET_FIELD] = True
    elif remove_password:
        principal.set_unusable_password()
        changes[SECRET_FIELD] = True
    if not changes:
        return principal
    _write(principal, plan, created=False, changed=set(changes))
    audit(
        actor=actor,
        action="principal.update",
        obj=principal,
        tenant_id=_audit_tenant(principal),
        changes=changes,
    )
    return principal


@transaction.atomic
def principal_delete(*, actor: Principal, principal: Principal) -> None:
    _require(actor, "delete", principal.type)
    _ensure_in_scope(actor, principal)
    if principal.pk == actor.pk:
        raise ServiceError("You can't delete your own account.")
    if principal.type == T.API_KEY:
        api_keys.api_key_revoke(actor=actor, key=principal)  # kept for the audit trail
        return
    if is_builtin_role(principal):
        raise ServiceError(f"The built-in role {principal.name} can't be deleted.")
    changes: dict[str, Any] = {"type": principal.type, "name": principal.name}
    if principal.type == T.DOMAIN:
        _check_domain_unused(principal)
    if principal.type == T.TENANT:
        if not actor.reaches_all_tenants:
            raise PermissionDenied(Perm.TENANT_DELETE)
        counts = Counter(principal.tenant_principals.values_list("type", flat=True))
        changes["deletedPrincipals"] = dict(sorted(counts.items()))
    if principal.type == T.INDIVIDUAL:
        api_keys.api_keys_revoke_owned(actor=actor, owner=principal)
    accounts = _accounts_deleted_with(principal)
    tenant_id = None if principal.type == T.TENANT else principal.tenant_id
    object_id, name = str(principal.pk), principal.name
    principal.delete()
    # Their Bayes models are keyed by a scope string (nothing cascades to them) and may
    # live in Redis: purged once the delete is committed, never for one rolled back; a
    # store that fails then is logged, the delete stands.
    if accounts:
        transaction.on_commit(lambda: bayes.purge_accounts(accounts), robust=True)
    audit(
        actor=actor,
        action="principal.delete",
        object_type="principal",
        object_id=object_id,
        object_repr=name,
        tenant_id=tenant_id,
        changes=changes,
    )


def _accounts_deleted_with(principal: Principal) -> list[int]:
    """The individual accounts a delete removes: the principal, or a tenant's all."""
    if principal.type == T.INDIVIDUAL:
        return [principal.pk]
    if principal.type == T.TENANT:
        individuals = principal.tenant_principals.filter(type=T.INDIVIDUAL)
        return list(individuals.values_list("pk", flat=True))
    return []


# --- checking ---------------------------------------------------------------------------


@dataclass
class _Plan:
    """The checked new state and the rows it points at, ready to write."""

    state: dict[str, Any]
    member_of: list[Principal] = field(default_factory=list)
    roles: list[Principal] = field(default_factory=list)
    members: list[Principal] = field(default_factory=list)
    is_superuser: bool = False
    mailbox_name: str | None = None  # a renamed mailbox's new local part


def _resolve(
    *,
    actor: Principal,
    state: dict[str, Any],
    before: dict[str, Any] | None,
    tenant: Principal | None,
    principal: Principal | None,
) -> _Plan:
    type_ = state["type"]
    previous = before or {name: [] for name in LIST_FIELDS}

    def changed(name: str) -> bool:
        return before is None or before.get(name) != state.get(name)

    for name in (*SCALAR_FIELDS, *LIST_FIELDS):
        if name in {"name", "description"} or name in APPLIES[type_]:
            continue
        if state.get(name) not in (None, [], 0, ""):
            _not_applicable(name, type_)

    # name
    mailbox_name = None
    if changed("name"):
        state["name"] = _check_name(state["name"], type_, principal, actor=actor, tenant=tenant)
        if type_ == T.DOMAIN and principal is not None:
            _check_domain_unused(principal)
        if type_ == T.INDIVIDUAL and principal is not None:
            mailbox_name = _follow_mailbox_rename(state, previous, principal)
    if len(state["description"]) > 1024:
        raise ServiceError(
            "Invalid value for field description: at most 1024 characters.", field="description"
        )

    # quota and limits
    for name in ("quota", "maxDomains", "maxAccounts", "maxMailboxesPerUser"):
        value = state.get(name)
        if value is not None and value < 0:
            raise ServiceError(f"Invalid value for field {name}: must not be negative.", field=name)
        highest = MAX_QUOTA if name == "quota" else MAX_LIMIT_VALUE
        if value is not None and value > highest:
            raise ServiceError(
                f"Invalid value for field {name}: must be at most {highest}.", field=name
            )
    locked_tenant = _lock(tenant) if tenant is not None else None
    tenant_quota = locked_tenant.quota if locked_tenant else 0
    if changed("quota") and tenant_quota and state["quota"] > tenant_quota:
        raise ServiceError(
            f"The quota can't exceed the quota of tenant {locked_tenant.name} "
            f"({tenant_quota} bytes).",
            field="quota",
        )
    if before is None and locked_tenant is not None:
        _check_tenant_capacity(locked_tenant, type_)

    # permissions
    for name in ("enabledPermissions", "disabledPermissions"):
        state[name] = _unique(state[name], name)
        for perm in state[name]:
            if perm not in ALL_PERMISSIONS:
                raise ServiceError(f"Unknown permission: {perm}", field=name)
    if not actor.is_superuser:
        for perm in set(state["enabledPermissions"]) - set(previous["enabledPermissions"]):
            if not actor.has_permission(perm):
                raise ServiceError(
                    f"You can't grant the permission '{perm}' because you don't hold it.",
                    field="enabledPermissions",
                )

    plan = _Plan(state=state, mailbox_name=mailbox_name)

    # roles
    state["roles"] = _unique(state["roles"], "roles")
    plan.roles = _roles(actor, state, previous, tenant)
    plan.is_superuser = type_ == T.INDIVIDUAL and SUPERADMIN_ROLE in state["roles"]
    if plan.is_superuser and tenant is not None:
        raise ServiceError(
            f"The role {SUPERADMIN_ROLE} is only for superadmins, who belong to no tenant.",
            field="roles",
        )
    # A superadmin's API key has no tenant either: it has its owner's reach.
    if tenant is None and type_ not in (T.TENANT, T.API_KEY) and not plan.is_superuser:
        if principal is not None and principal.is_superuser:
            raise ServiceError(f"A superadmin must keep the role {SUPERADMIN_ROLE}.", field="roles")
        if not actor.reaches_all_tenants:
            # Tenant admins never get here (their objects go into their tenant); this
            # keeps any other caller from making server-wide principals.
            raise ServiceError(
                f"A principal of type {type_} must belong to a tenant.", field="tenant"
            )

    # memberships
    for name in ("memberOf", "lists", "members"):
        state[name] = _unique(state[name], name)
    self_name = state["name"]
    for name in ("memberOf", "lists", "members"):
        if self_name in state[name]:
            raise ServiceError("A principal can't be a member of itself.", field=name)
    wanted = {*state["memberOf"], *state["lists"], *state["members"]}
    found = _by_name(tenant, wanted)
    plan.member_of = [_expect(found, n, {T.GROUP}, "a group") for n in state["memberOf"]]
    plan.member_of += [_expect(found, n, {T.LIST}, "a mailing list") for n in state["lists"]]
    if state["members"]:
        kinds = MEMBER_TYPES[type_]
        plan.members = [_expect(found, n, kinds, "a possible member") for n in state["members"]]
    if (
        type_ == T.ROLE
        and not actor.is_superuser
        and set(state["members"]) - set(previous["members"])
    ):
        # Handing out a role grants what it carries: only as much as the actor holds.
        carried = set(state["enabledPermissions"]) - set(state["disabledPermissions"])
        missing = sorted(carried - actor.permissions)
        if missing:
            raise ServiceError(
                f"You can't grant the role '{state['name']}' because it carries the permission "
                f"'{missing[0]}' you don't hold.",
                field="members",
            )

    # addresses
    if changed("emails"):
        state["emails"] = [_address(a, "emails") for a in state["emails"]]
        _check_emails(state["emails"], tenant, principal, type_)
    if changed("externalMembers"):
        state["externalMembers"] = [
            _address(a, "externalMembers") for a in state["externalMembers"]
        ]
        _unique(state["externalMembers"], "externalMembers", display_address)
    for url in state["urls"]:
        if not url or len(url) > 1024:
            raise ServiceError(f"Invalid value for field urls: '{url[:64]}'", field="urls")
    return plan


def _check_name(
    name: str,
    type_: str,
    principal: Principal | None,
    *,
    actor: Principal,
    tenant: Principal | None,
) -> str:
    if type_ == T.DOMAIN:
        name = _normalize_domain(name)
    else:
        problem = name_problem(name) or foreign_domain_problem(name, tenant.pk if tenant else None)
        if problem is not None:
            raise ServiceError(problem, field="name")
    taken = Principal.objects.filter(name__iexact=name)
    if principal is not None:
        taken = taken.exclude(pk=principal.pk)
    if taken.exists():
        raise ServiceError(f"The name '{name}' is already taken.", field="name")
    if type_ == T.DOMAIN:
        _check_not_an_alias(name, actor=actor)
        problem = foreign_parent_problem(actor, name, tenant.pk if tenant else None)
        if problem is not None:
            raise ServiceError(problem, field="name")
    return name


def _check_not_an_alias(name: str, *, actor: Principal) -> None:
    """A domain can't take the name of a domain alias (hosted domains are looked up first:
    it would take the alias's mail). Only the alias's own tenant learns which domain has
    it; to anyone else the name is simply taken."""
    aliased = (
        Principal.objects.filter(type=T.DOMAIN, domain_aliases__alias=name)
        .only("name", "tenant_id")
        .first()
    )
    if aliased is None:
        return
    if principal_scope(actor).filter(pk=aliased.pk).exists():
        raise ServiceError(
            f"The domain {display_domain(name)} is an alias of {display_domain(aliased.name)}; "
            "remove the alias first.",
            field="name",
        )
    raise ServiceError(f"The name '{name}' is already taken.", field="name")


def _follow_mailbox_rename(
    state: dict[str, Any], previous: dict[str, Any], principal: Principal
) -> str | None:
    """A mailbox (the domains app's profile of an individual) is named by its primary
    address on its domain: a rename keeps the domain, and the primary address moves along
    unless the same change sets the addresses. Returns the new local part, None when the
    principal is no mailbox."""
    try:
        profile = principal.mailbox_profile
    except ObjectDoesNotExist:
        return None
    domain = profile.domain.name
    try:
        address = normalize_address(state["name"])
    except InvalidAddress:
        address = ""
    if domain_of(address) != domain:
        raise ServiceError(
            f"{previous['name']} is a mailbox of {display_domain(domain)}: its name must stay "
            f"an address @{display_domain(domain)}.",
            field="name",
        )
    local = address.partition("@")[0]
    # A profile left with a stale name (renames before profiles followed) may hold it.
    clash = type(profile).objects.filter(domain_id=profile.domain_id, name=local)
    if clash.exclude(pk=profile.pk).exists():
        raise ServiceError(f"The name '{address}' is already taken.", field="name")
    state["name"] = address
    emails = state["emails"]
    if emails == previous["emails"] and emails and emails[0] == previous["name"]:
        state["emails"] = [address, *(e for e in emails[1:] if e != address)]
    return local


def _check_domain_unused(domain: Principal) -> None:
    """Renaming or deleting a domain would strand the addresses on it."""
    in_use = PrincipalEmail.objects.filter(address__endswith=f"@{domain.name}").count()
    if in_use:
        raise ServiceError(
            f"The domain {display_domain(domain.name)} still has {in_use} "
            "address(es); remove them first."
        )


def _check_tenant_capacity(tenant: Principal, type_: str) -> None:
    for kind, limit, noun in (
        (T.INDIVIDUAL, tenant.max_accounts, "accounts"),
        (T.DOMAIN, tenant.max_domains, "domains"),
    ):
        if type_ == kind and limit is not None:
            used = Principal.objects.filter(tenant=tenant, type=kind).count()
            if used >= limit:
                raise ServiceError(f"Tenant {tenant.name} has reached its limit of {limit} {noun}.")


def email_domains_check(
    addresses: Sequence[str], tenant: Principal | None, *, field: str = "emails"
) -> None:
    """A tenant's addresses are on its domains; the server's own (tenant-less) principals'
    addresses on the server's own domains. Checked before whether an address is in use,
    which would tell whether another tenant has it."""
    domains = {domain_of(a) for a in addresses}
    owned = set(
        Principal.objects.filter(type=T.DOMAIN, tenant=tenant, name__in=domains).values_list(
            "name", flat=True
        )
    )
    for address in addresses:
        if domain_of(address) not in owned:
            shown = display_domain(domain_of(address))
            raise ServiceError(
                f"The domain {shown} is not a domain of this tenant."
                if tenant is not None
                else f"The domain {shown} is not one of the server's own domains.",
                field=field,
            )


def _check_emails(
    addresses: list[str], tenant: Principal | None, principal: Principal | None, type_: str
) -> None:
    _unique(addresses, "emails", display_address)
    limit = tenant.max_mailboxes_per_user if tenant is not None else None
    if type_ == T.INDIVIDUAL and limit is not None and len(addresses) > limit:
        raise ServiceError(
            f"Tenant {tenant.name} allows at most {limit} addresses per account.",
            field="emails",
        )
    if not addresses:
        return
    email_domains_check(addresses, tenant)
    in_use = PrincipalEmail.objects.filter(address__in=addresses)
    if principal is not None:
        in_use = in_use.exclude(principal=principal)
    taken = set(in_use.values_list("address", flat=True))
    for address in addresses:
        if address in taken:
            raise ServiceError(
                f"The email address {display_address(address)} is already in use.",
                field="emails",
            )


def _roles(
    actor: Principal, state: dict[str, Any], previous: dict[str, Any], tenant: Principal | None
) -> list[Principal]:
    names = state["roles"]
    if not names:
        return []
    tenant_roles = Principal.objects.filter(type=T.ROLE, name__in=names)
    tenant_roles = (
        tenant_roles.filter(tenant=tenant)
        if tenant is not None
        else tenant_roles.filter(tenant__isnull=True)
    )
    found = {r.name: r for r in tenant_roles}
    builtin = [n for n in names if n in BUILTIN_ROLES and n not in found]
    found.update(
        {r.name: r for r in Principal.objects.filter(type=T.ROLE, tenant=None, name__in=builtin)}
    )
    roles = []
    for name in names:
        role = found.get(name)
        if role is None:
            raise ServiceError(f"No such principal: {name}", field="roles")
        roles.append(role)
    if actor.is_superuser:
        return roles
    for role in roles:
        if role.name in previous["roles"]:
            continue
        if is_builtin_role(role) and role.name == SUPERADMIN_ROLE:
            raise ServiceError(
                f"Only a superadmin can grant the role {SUPERADMIN_ROLE}.", field="roles"
            )
        missing = sorted(role.role_permissions() - actor.permissions)
        if missing:
            raise ServiceError(
                f"You can't grant the role '{role.name}' because it carries the permission "
                f"'{missing[0]}' you don't hold.",
                field="roles",
            )
    return roles


def _by_name(tenant: Principal | None, names: Iterable[str]) -> dict[str, Principal]:
    """Principals of the same tenant (or, for tenant-less ones, the server's own)."""
    names = set(names)
    if not names:
        return {}
    rows = Principal.objects.filter(tenant=tenant, name__in=names).only("id", "name", "type")
    return {p.name: p for p in rows}


def _expect(found: dict[str, Principal], name: str, types: Iterable[str], what: str) -> Principal:
    principal = found.get(name)
    if principal is None:
        raise ServiceError(f"No such principal: {name}")
    if principal.type not in types:
        raise ServiceError(f"'{name}' is not {what}.")
    return principal


# --- writing ----------------------------------------------------------------------------


def _write(
    principal: Principal, plan: _Plan, *, created: bool, changed: set[str] | None = None
) -> None:
    state = plan.state

    def touched(name: str) -> bool:
        return created or name in (changed or set())

    principal.name = state["name"]
    principal.description = state["description"]
    principal.quota = state["quota"] or 0
    principal.max_domains = state["maxDomains"]
    principal.max_accounts = state["maxAccounts"]
    principal.max_mailboxes_per_user = state["maxMailboxesPerUser"]
    principal.urls = list(state["urls"])
    principal.enabled_permissions = list(state["enabledPermissions"])
    principal.disabled_permissions = list(state["disabledPermissions"])
    principal.external_members = list(state["externalMembers"])
    principal.is_superuser = plan.is_superuser
    try:
        with transaction.atomic():
            principal.save()
    except IntegrityError:
        raise ServiceError(f"The name '{principal.name}' is already taken.", field="name") from None
    if plan.mailbox_name is not None:
        principal.mailbox_profile.name = plan.mailbox_name
        principal.mailbox_profile.save(update_fields=["name", "updated_at"])
    if touched("emails"):
        if not created:
            principal.emails.all().delete()
        try:
            with transaction.atomic():
                PrincipalEmail.objects.bulk_create(
                    PrincipalEmail(principal=principal, address=address, position=position)
                    for position, address in enumerate(state["emails"])
                )
        except IntegrityError:
            raise ServiceError(
                "One of the email addresses is already in use.", field="emails"
            ) from None
        getattr(principal, "_prefetched_objects_cache", {}).pop("emails", None)
    if touched("memberOf") or touched("lists"):
        principal.member_of.set(plan.member_of)
    if touched("roles"):
        principal.roles.set(plan.roles)
    if (
        principal.type == T.API_KEY
        and not created
        and (touched("roles") or touched("enabledPermissions"))
    ):
        # An explicit list now narrows the key instead of "all of the owner's".
        Principal.objects.filter(pk=principal.pk).update(all_owner_permissions=False)
        principal.all_owner_permissions = False
    if touched("members"):
        if principal.type == T.ROLE:
            principal.role_holders.set(plan.members)
        elif principal.type in MEMBER_TYPES:
            principal.members.set(plan.members)
    principal._permissions_cache = None


# --- small helpers ----------------------------------------------------------------------


def _require(actor: Principal, verb: str, type_: str) -> None:
    for perm in (BASE_PERMISSIONS[verb], TYPE_PERMISSIONS[verb].get(type_)):
        if perm and not actor.has_permission(perm):
            raise PermissionDenied(perm)


def _ensure_in_scope(actor: Principal, principal: Principal) -> None:
    """Foreign and missing look alike: both are NotFound."""
    visible = principal_scope(actor).filter(pk=principal.pk)
    if principal.type == T.TENANT and not actor.reaches_all_tenants:
        visible = visible.none()
    if not visible.exists():
        raise NotFound()


def _api_key_create(actor: Principal, data: dict[str, Any]) -> Principal:
    """POST /api/principal with type apiKey: the same key as POST /api/account/api-keys.

    The key's list is `enabledPermissions` (omitted: all of the owner's); the bearer secret
    is `secrets`, chosen by the caller, since this answer carries only the id.
    """
    allowed = {"type", "name", "description", "tenant", "enabledPermissions", SECRET_FIELD}
    for name in sorted(set(data) - allowed):
        if data[name] not in (None, [], "", 0):
            raise ServiceError(
                f"The field {name} does not apply when creating an API key.", field=name
            )
    requested = data.get("tenant") or None
    if requested is not None and requested != (actor.tenant.name if actor.tenant_id else None):
        raise ServiceError(
            "An API key belongs to its owner's tenant: leave tenant out.", field="tenant"
        )
    if not data.get("name"):
        raise ServiceError("Missing required field: name", field="name")
    secret = _password_from(data[SECRET_FIELD]) if SECRET_FIELD in data else None
    if secret is None:
        raise ServiceError(
            "Missing required field: secrets (the key's bearer secret; POST "
            "/api/account/api-keys generates one instead)",
            field=SECRET_FIELD,
        )
    key, _ = api_keys.api_key_create(
        actor=actor,
        name=_typed("name", data.get("name", "")),
        description=_typed("description", data.get("description")),
        permissions=_typed("enabledPermissions", data["enabledPermissions"])
        if "enabledPermissions" in data
        else None,
        secret=secret,
    )
    return key


def _tenant_for_create(actor: Principal, type_: str, data: dict[str, Any]) -> Principal | None:
    requested = data.get("tenant") or None
    if type_ == T.TENANT:
        if requested:
            raise ServiceError("A tenant can't belong to a tenant.", field="tenant")
        return None
    if not actor.reaches_all_tenants:
        if actor.tenant_id is None:
            raise PermissionDenied(Perm.PRINCIPAL_CREATE)
        tenant = actor.tenant
        if requested and requested != tenant.name:
            raise ServiceError(f"No such principal: {requested}", field="tenant")
        return tenant
    if requested is None:
        return None
    tenant = Principal.objects.filter(type=T.TENANT, name=requested).first()
    if tenant is None:
        raise ServiceError(f"No such principal: {requested}", field="tenant")
    return tenant


def _lock(tenant: Principal) -> Principal:
    """Serialize limit checks of one tenant (a row lock on PostgreSQL)."""
    return Principal.objects.select_for_update().get(pk=tenant.pk)


def _audit_tenant(principal: Principal) -> int | None:
    return principal.pk if principal.type == T.TENANT else principal.tenant_id


def _typed(name: str, value: Any) -> Any:
    """Guard against wrongly typed values from any caller (the API parses them first)."""
    if name in LIST_FIELDS:
        if not isinstance(value, list | tuple):
            raise ServiceError(
                f"Invalid value for field {name}: expected a list of strings.", field=name
            )
        return [_typed_item(name, v) for v in value]
    if name in {"name", "description"}:
        if value is None and name == "description":
            return ""
        if not isinstance(value, str):
            raise ServiceError(f"Invalid value for field {name}: expected a string.", field=name)
        return value.strip()
    if value is None and name != "quota":
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ServiceError(f"Invalid value for field {name}: expected an integer.", field=name)
    return value


def _typed_item(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ServiceError(f"Invalid value for field {name}: expected a string.", field=name)
    value = value.strip()
    if name in {"emails", "externalMembers"}:
        return _address(value, name)
    return value


def _address(value: str, name: str) -> str:
    try:
        return normalize_address(value)
    except ServiceError as exc:
        raise ServiceError(exc.message, field=name) from None


def _password_from(value: Any) -> str | None:
    """The password in a `secrets` value; None for an empty list (no password)."""
    if isinstance(value, list | tuple):
        if not value:
            return None
        value = value[-1]
    if not isinstance(value, str) or not value:
        raise ServiceError(
            "Invalid value for field secrets: expected a non-empty string.", field=SECRET_FIELD
        )
    return value


def _set_secret(principal: Principal, secret: str) -> None:
    """A plain password is checked and hashed with Argon2; a crypt(3) hash migrated from
    another mail server ($6$, $5$, bcrypt) is stored as it is and re-hashed at first login."""
    imported = import_password_hash(secret)
    if imported is not None:
        principal.password = imported
        return
    if looks_like_crypt_hash(secret):
        raise ServiceError(
            "Invalid value for field secrets: the password hash is malformed.",
            field=SECRET_FIELD,
        )
    _validate_password(secret, principal)
    principal.set_password(secret)


def _validate_password(password: str, principal: Principal) -> None:
    try:
        validate_password(password, principal)
    except DjangoValidationError as exc:
        raise ServiceError(
            f"Invalid value for field secrets: {' '.join(exc.messages)}", field=SECRET_FIELD
        ) from None


def _unique(values: list[str], name: str, show=lambda v: v) -> list[str]:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ServiceError(f"{show(value)} is listed twice in {name}.", field=name)
        seen.add(value)
    return values


def _not_applicable(name: str, type_: str) -> None:
    raise ServiceError(
        f"The field {name} does not apply to a principal of type {type_}.", field=name
    )


def _diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Changed fields: scalars and ordered lists as from/to, sets as added/removed."""
    changes: dict[str, Any] = {}
    for name in (*SCALAR_FIELDS, *LIST_FIELDS):
        old, new = before.get(name), after.get(name)
        if old == new:
            continue
        if name in LIST_FIELDS and name not in {"emails", "urls"}:
            added = [v for v in new if v not in old]
            removed = [v for v in old if v not in new]
            if added or removed:
                changes[name] = {"added": added, "removed": removed}
        else:
            changes[name] = {"from": old, "to": new}
    return changes
