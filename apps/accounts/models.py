"""Principals: every account, group, list, domain, tenant, role and API key is one row."""

from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.db import models
from django.db.models import Q
from django.db.models.functions import Upper
from django.utils import timezone

from apps.accounts.permissions import ALL_PERMISSIONS, BUILTIN_ROLES, SERVER_WIDE
from mailadmin.sealing import SealedTextField


class PrincipalType(models.TextChoices):
    INDIVIDUAL = "individual", "Account"
    GROUP = "group", "Group"
    LIST = "list", "Mailing list"
    DOMAIN = "domain", "Domain"
    TENANT = "tenant", "Tenant"
    ROLE = "role", "Role"
    API_KEY = "apiKey", "API key"


LOGIN_TYPES = (PrincipalType.INDIVIDUAL,)


class PrincipalManager(BaseUserManager["Principal"]):
    def get_by_natural_key(self, username: str) -> Principal:
        return self.get(name=username)

    def create_user(self, name: str, password: str | None = None, **fields) -> Principal:
        principal = self.model(name=name, **fields)
        principal.set_password(password) if password else principal.set_unusable_password()
        principal.save(using=self._db)
        return principal

    def create_superuser(self, name: str, password: str | None = None, **fields) -> Principal:
        fields.update(is_superuser=True, tenant=None, type=PrincipalType.INDIVIDUAL)
        return self.create_user(name, password, **fields)


class Principal(AbstractBaseUser):
    type = models.CharField(max_length=16, choices=PrincipalType.choices)
    name = models.CharField(max_length=255, unique=True)
    description = models.CharField(max_length=1024, blank=True, default="")
    tenant = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="tenant_principals",
        limit_choices_to={"type": PrincipalType.TENANT},
        help_text="Empty only for superadmins and the built-in roles.",
    )
    quota = models.BigIntegerField(default=0, help_text="Bytes; 0 means no limit.")
    is_superuser = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    roles = models.ManyToManyField(
        "self", symmetrical=False, blank=True, related_name="role_holders"
    )
    member_of = models.ManyToManyField(
        "self", symmetrical=False, blank=True, related_name="members"
    )
    enabled_permissions = models.JSONField(default=list, blank=True)
    disabled_permissions = models.JSONField(default=list, blank=True)
    urls = models.JSONField(default=list, blank=True)
    external_members = models.JSONField(
        default=list, blank=True, help_text="Addresses outside this server (mailing lists)."
    )
    # Tenant limits (type=tenant only); null means no limit. The disk limit is `quota`.
    max_domains = models.PositiveIntegerField(null=True, blank=True)
    max_accounts = models.PositiveIntegerField(null=True, blank=True)
    max_mailboxes_per_user = models.PositiveIntegerField(null=True, blank=True)
    # Two-factor authentication (individuals); the secret is sealed at rest (the attribute
    # holds the plain base32 value) and never shown after enrolment.
    totp_secret = SealedTextField(blank=True, default="", editable=False)
    otp_enabled = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="For an API key, its owner: the key acts with the owner's current reach "
        "and stops working when the owner is disabled or deleted.",
    )
    # API keys: every permission the owner holds (minus disabled_permissions), not a list.
    all_owner_permissions = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = PrincipalManager()

    # How the current request proved who this is (apps.accounts.auth.common.AuthMethod),
    # set by the authentication layer; None when a service is called from inside (tasks,
    # commands). Not a column: it belongs to one request, never to the row.
    authenticated_by: str | None = None

    USERNAME_FIELD = "name"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        ordering = ["name"]
        # Every list ordering has an index to seek (keyset paging) and, with `id` in it,
        # to skip a deep page's rows without reading the table (mailadmin.api.pagination).
        indexes = [
            models.Index(
                fields=["tenant", "type", "name"], include=["id"], name="principal_tenant_type_name"
            ),
            models.Index(fields=["type", "name"], include=["id"], name="principal_type_name"),
            models.Index(fields=["tenant", "name"], include=["id"], name="principal_tenant_name"),
            models.Index(fields=["tenant", "created_at", "id"], name="principal_tenant_created"),
            # The case-insensitive name check (`name__iexact`) of every create and rename.
            models.Index(Upper("name"), name="principal_name_upper"),
            # Substring search has backend-specific indexes (pg_trgm GIN on PostgreSQL, an
            # FTS5 trigram table on SQLite): see migration 0007_search_indexes.
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(type="tenant") | Q(tenant__isnull=True),
                name="tenant_has_no_tenant",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    # Django admin: only superadmins operate the admin site.
    @property
    def is_staff(self) -> bool:
        return self.is_superuser

    def has_perm(self, perm: str, obj=None) -> bool:
        return self.is_active and self.is_superuser

    def has_module_perms(self, app_label: str) -> bool:
        return self.is_active and self.is_superuser

    # mailadmin permissions
    def role_permissions(self) -> frozenset[str]:
        """What holding this role grants (built-in roles are defined in code)."""
        if self.tenant_id is None and self.name in BUILTIN_ROLES:
            return BUILTIN_ROLES[self.name]
        return frozenset(self.enabled_permissions) - frozenset(self.disabled_permissions)

    @property
    def permissions(self) -> frozenset[str]:
        """Effective permissions: roles ∪ enabled − disabled, never server-wide in a tenant.

        An API key has its owner's permissions *now*, narrowed by the key's own list.
        """
        cached = getattr(self, "_permissions_cache", None)
        if cached is not None:
            return cached
        if self.type == PrincipalType.API_KEY:
            perms = set(self._key_permissions())
        elif self.is_superuser:
            perms = set(ALL_PERMISSIONS)
        else:
            perms = set()
            for role in self.roles.all():
                perms |= role.role_permissions()
            perms |= set(self.enabled_permissions)
            perms -= set(self.disabled_permissions)
            if self.tenant_id is not None:
                perms -= SERVER_WIDE
            perms &= ALL_PERMISSIONS
        self._permissions_cache = frozenset(perms)
        return self._permissions_cache

    @property
    def key_owner(self) -> Principal | None:
        """The account an API key acts for, or None when it is gone, disabled or not one."""
        if self.type != PrincipalType.API_KEY or self.created_by_id is None:
            return None
        owner = self.created_by
        if not owner.is_active or owner.type != PrincipalType.INDIVIDUAL:
            return None
        return owner

    @property
    def acts_for(self) -> Principal | None:
        """The account whose own things this principal reaches as "its own": itself, or
        for an API key its owner (None when the owner is gone)."""
        return self.key_owner if self.type == PrincipalType.API_KEY else self

    def _key_permissions(self) -> frozenset[str]:
        owner = self.key_owner
        if owner is None:
            return frozenset()
        if self.all_owner_permissions:
            own = set(ALL_PERMISSIONS)
        else:
            own = set(self.enabled_permissions)
            for role in self.roles.all():
                own |= role.role_permissions()
        own -= set(self.disabled_permissions)
        return owner.permissions & own

    @property
    def reaches_all_tenants(self) -> bool:
        """Superadmins see every tenant, and so do their API keys (the owner's reach)."""
        if self.type == PrincipalType.API_KEY:
            owner = self.key_owner
            return owner is not None and owner.is_superuser
        return self.is_superuser

    def has_permission(self, permission: str) -> bool:
        return self.is_active and permission in self.permissions


class AccessToken(models.Model):
    """A bearer token: an OAuth-issued token or the secret of an API key (stored hashed)."""

    class Kind(models.TextChoices):
        OAUTH = "oauth", "OAuth token"
        API_KEY = "apiKey", "API key"

    principal = models.ForeignKey(Principal, on_delete=models.CASCADE, related_name="tokens")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    token_hash = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    # OAuth tokens: issued after the main password (and second factor), so the bearer may
    # change the account's credentials; False for tokens obtained with an app password.
    manages_credentials = models.BooleanField(default=False)

    class Meta:
        indexes = [models.Index(fields=["principal", "kind"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of {self.principal_id}"


class PrincipalEmail(models.Model):
    """An address of a principal: position 0 is the primary one, the rest are aliases.

    `address` is normalized: lower-case, the domain in punycode (IDNA). One address belongs
    to one principal on the whole server, since mail for it must go somewhere unambiguous.
    """

    principal = models.ForeignKey(Principal, on_delete=models.CASCADE, related_name="emails")
    address = models.CharField(max_length=320, unique=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        verbose_name = "email address"
        verbose_name_plural = "email addresses"
        ordering = ["principal_id", "position"]
        indexes = [models.Index(fields=["principal", "position"])]

    def __str__(self) -> str:
        return self.address


class AppPassword(models.Model):
    """A password for one mail client (HTTP Basic, SMTP/IMAP AUTH); never for the console."""

    principal = models.ForeignKey(Principal, on_delete=models.CASCADE, related_name="app_passwords")
    name = models.CharField(max_length=255)
    password = models.CharField(max_length=255)  # a Django password hash
    # A keyed SHA-256 of the password (apps.accounts.auth.app_passwords.lookup_digests):
    # finds the one row to verify without hashing the password against every row. Empty
    # for an imported crypt hash until its first use (the plain password is unknown).
    lookup = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["principal", "name"], name="app_password_name_unique"),
            models.UniqueConstraint(
                fields=["principal", "lookup"],
                condition=~Q(lookup=""),
                name="app_password_lookup_unique",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class RecoveryCode(models.Model):
    """A single-use code that stands in for a TOTP code; stored hashed."""

    principal = models.ForeignKey(
        Principal, on_delete=models.CASCADE, related_name="recovery_codes"
    )
    code_hash = models.CharField(max_length=64)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["principal", "code_hash"])]

    def __str__(self) -> str:
        return f"recovery code of {self.principal_id}"


class OAuthCode(models.Model):
    """A short-lived authorization code from POST /api/oauth, exchanged for a bearer token."""

    principal = models.ForeignKey(Principal, on_delete=models.CASCADE, related_name="+")
    code_hash = models.CharField(max_length=64, unique=True)
    client_id = models.CharField(max_length=255, blank=True, default="")
    redirect_uri = models.CharField(max_length=1024, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    # Passed on to the token: was the code asked for with the main password (see AccessToken)?
    manages_credentials = models.BooleanField(default=False)

    class Meta:
        verbose_name = "OAuth code"
        verbose_name_plural = "OAuth codes"

    def __str__(self) -> str:
        return f"OAuth code of {self.principal_id}"


class LoginThrottle(models.Model):
    """Failed logins per key for lockout: 'account:<name>|ip:<address>' (one account from
    one address) or 'ip:<address>' (one address, any account); see auth/login.py."""

    key = models.CharField(max_length=320, unique=True)
    failures = models.PositiveIntegerField(default=0)
    first_failure_at = models.DateTimeField(default=timezone.now)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True)
    # Locks so far in this streak: each one lasts twice as long as the one before.
    locks = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return self.key


class EncryptionSettings(models.Model):
    """Encryption at rest for an account's stored mail (applied by the store)."""

    class Type(models.TextChoices):
        DISABLED = "disabled", "Disabled"
        PGP = "pgp", "OpenPGP"
        SMIME = "smime", "S/MIME"

    principal = models.OneToOneField(Principal, on_delete=models.CASCADE, related_name="encryption")
    type = models.CharField(max_length=16, choices=Type.choices, default=Type.DISABLED)
    algorithm = models.CharField(max_length=16, blank=True, default="")
    certificates = models.TextField(blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "encryption settings"
        verbose_name_plural = "encryption settings"

    def __str__(self) -> str:
        return f"{self.type} for {self.principal_id}"
