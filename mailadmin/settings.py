"""Settings, all from the environment (see README: "Environment variables")."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from mailadmin.env import (
    NEW_FERNET_KEY_COMMAND,
    env_bind,
    env_bool,
    env_float,
    env_int,
    env_nameservers,
    env_str,
    env_url,
    generated_once,
    parse_fernet_keys,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("MAILADMIN_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

MAILADMIN_ENV = env_str("MAILADMIN_ENV", "development")
if MAILADMIN_ENV not in {"development", "production"}:
    raise ImproperlyConfigured("MAILADMIN_ENV must be development or production")
PRODUCTION = MAILADMIN_ENV == "production"
DEBUG = env_bool("MAILADMIN_DEBUG", default=not PRODUCTION)


def _secret_key() -> str:
    key = env_str("SECRET_KEY")
    if key:
        return key
    if PRODUCTION:
        raise ImproperlyConfigured("SECRET_KEY (or SECRET_KEY_FILE) is required in production")
    return generated_once(VAR_DIR / "secret_key", lambda: secrets.token_urlsafe(50))


def _secrets_keys() -> list[str]:
    """Keys that seal stored secrets (DKIM private keys, TOTP secrets): the first seals,
    every one unseals, so `manage.py rotate_secrets_key` can move to a new key."""
    raw = env_str("MAILADMIN_SECRETS_KEY")
    if not raw:
        if PRODUCTION:
            raise ImproperlyConfigured(
                "MAILADMIN_SECRETS_KEY (or MAILADMIN_SECRETS_KEY_FILE) is required in "
                f"production; make one with {NEW_FERNET_KEY_COMMAND}"
            )
        raw = generated_once(VAR_DIR / "secrets_key", lambda: Fernet.generate_key().decode())
    return parse_fernet_keys(raw, name="MAILADMIN_SECRETS_KEY")


SECRET_KEY = _secret_key()
MAILADMIN_SECRETS_KEYS = _secrets_keys()
ALLOWED_HOSTS = [
    h.strip() for h in env_str("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",") if h
]
CSRF_TRUSTED_ORIGINS = [o for o in env_str("CSRF_TRUSTED_ORIGINS").split(",") if o]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials.apps.SimpleAppConfig",  # loaders are set below
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "mailadmin.core",
    "apps.accounts",
    "apps.domains",
    "apps.queue",
    "apps.reports",
    "apps.spamfilter",
    "apps.telemetry",
    "apps.store",
    "apps.config",
]

MIDDLEWARE = [
    # /.well-known/mta-sts.txt for mta-sts.<hosted domain> (Host headers no ALLOWED_HOSTS
    # can list); every other request passes through.
    "apps.domains.middleware.MtaStsPolicyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Content-Security-Policy (with a nonce per request) and Permissions-Policy.
    "mailadmin.core.middleware.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Early, so it also reshapes the error pages of the middleware below it.
    "mailadmin.api.middleware.ApiProblemMiddleware",
    # A NUL in a query string: 400 before any view (problem JSON under /api/); in a
    # console page's path: 404.
    "mailadmin.core.middleware.NulCharacterMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Before the CSRF check reads the form: the pages that take a pasted message.
    "mailadmin.core.middleware.FormBodyLimitMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "mailadmin.core.middleware.HtmxMessagesMiddleware",
    "mailadmin.audit.AuditContextMiddleware",
]

ROOT_URLCONF = "mailadmin.urls"
WSGI_APPLICATION = "mailadmin.wsgi.application"
ASGI_APPLICATION = "mailadmin.asgi.application"

_TEMPLATE_LOADERS = [
    "django.template.loaders.filesystem.Loader",
    "django.template.loaders.app_directories.Loader",
]
if not DEBUG:
    _TEMPLATE_LOADERS = [("django.template.loaders.cached.Loader", _TEMPLATE_LOADERS)]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "OPTIONS": {
            # template_partials' loader resolves "page.html#partial" names (see style.md).
            "loaders": [("template_partials.loader.Loader", _TEMPLATE_LOADERS)],
            "builtins": ["template_partials.templatetags.partials"],
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "mailadmin.core.context_processors.navigation",
                "mailadmin.core.context_processors.tenant_switcher",
            ],
        },
    }
]

# --- Database -------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'mailadmin.sqlite3'}"
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        # WAL lets the web, worker and SMTP processes read while one of them writes.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    # A file, not :memory:, so a Celery worker process can share the test database; one per
    # pytest process so parallel runs don't trample each other.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis and Celery -----------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
CELERY_BROKER_URL = (
    env_str("CELERY_BROKER_URL")
    or REDIS_URL
    or (f"sqla+sqlite:///{VAR_DIR / 'celery-broker.sqlite3'}")
)
CELERY_TASK_ALWAYS_EAGER = False
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True  # results live in our own TaskRun rows
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_TASK_DEFAULT_QUEUE = "default"
MAILADMIN_CELERY_QUEUES = ["default", "delivery", "dns", "maintenance", "reports"]
CELERY_TASK_ROUTES = {
    "accounts.housekeeping": {"queue": "maintenance"},
    "core.reap_runs": {"queue": "maintenance"},
    "domains.dns_check": {"queue": "dns"},
    "domains.dns_check_due": {"queue": "dns"},
    "domains.dkim_rotation": {"queue": "dns"},
    "domains.dkim_rotation_due": {"queue": "dns"},
    "reports.purge": {"queue": "reports"},
    "reports.ingest": {"queue": "reports"},
    "queue.deliver": {"queue": "delivery"},
    "queue.sweep": {"queue": "delivery"},
    "reports.resolve_sources": {"queue": "reports"},
    "reports.resolve_sources_due": {"queue": "reports"},
    "reports.outgoing": {"queue": "reports"},
    "reports.outgoing_due": {"queue": "reports"},
    "reports.outgoing_send": {"queue": "reports"},
    "spamfilter.quarantine_due": {"queue": "maintenance"},
    "telemetry.purge": {"queue": "maintenance"},
    "spamfilter.quarantine_purge": {"queue": "maintenance"},
    "spamfilter.quarantine_digest": {"queue": "maintenance"},
    "spamfilter.bayes_forget_deleted": {"queue": "maintenance"},
    "spamfilter.bayes_forget_deleted_run": {"queue": "maintenance"},
    "store.purge_due": {"queue": "maintenance"},
    "store.purge_accounts": {"queue": "maintenance"},
    "store.purge_account": {"queue": "maintenance"},
    "store.purge_blob": {"queue": "maintenance"},
    "store.purge_data": {"queue": "maintenance"},
    "store.purge_in_memory": {"queue": "maintenance"},
    "store.reindex": {"queue": "maintenance"},
}
CELERY_BEAT_SCHEDULE = {
    # Metric buckets and trace events older than MAILADMIN_TELEMETRY_RETENTION_DAYS.
    "telemetry-purge": {"task": "telemetry.purge", "schedule": crontab(hour="4", minute="41")},
    # Runs whose worker died (lease expired) go back to a worker, or fail saying so.
    "core-reap-runs": {"task": "core.reap_runs", "schedule": 60},
    "accounts-housekeeping": {"task": "accounts.housekeeping", "schedule": 15 * 60},
    # Every minute; the task picks the domains with id % 60 == minute (hourly per domain).
    "domains-dns-check-due": {"task": "domains.dns_check_due", "schedule": crontab(minute="*")},
    "reports-purge": {"task": "reports.purge", "schedule": crontab(hour="3", minute="17")},
    # PTR names of report sources that have none (or an old one); ingests start it too.
    "reports-resolve-sources": {"task": "reports.resolve_sources_due", "schedule": 15 * 60},
    # Our own DMARC aggregate and TLS-RPT reports for yesterday (UTC), then sent when due.
    "reports-outgoing": {
        "task": "reports.outgoing_due",
        "schedule": crontab(hour="0", minute="23"),
    },
    "reports-outgoing-send": {"task": "reports.outgoing_send", "schedule": 10 * 60},
    # DKIM life cycle: pending keys whose record is found start signing; retiring keys past
    # their grace period are withdrawn.
    "domains-dkim-rotation": {"task": "domains.dkim_rotation_due", "schedule": 10 * 60},
    # Due queue entries whose wake-up was lost, leases of dead workers, DSNs, the chart.
    "queue-sweep": {"task": "queue.sweep", "schedule": 30},
    # Fetch jobs whose interval has passed: one run each (a job is never run twice at once).
    "queue-fetch-due": {"task": "queue.fetch_due", "schedule": 60},
    # The spam quarantine: items past their retention deleted, each owner's digest sent.
    "spamfilter-quarantine": {
        "task": "spamfilter.quarantine_due",
        "schedule": crontab(hour="6", minute="7"),
    },
    # Bayes models of deleted accounts whose own purge found the store down.
    "spamfilter-bayes-forget-deleted": {
        "task": "spamfilter.bayes_forget_deleted",
        "schedule": crontab(hour="6", minute="37"),
    },
    # The store's purges: accounts (expunge, Trash/Junk, undelete window), then data and
    # in-memory; blobs an hour later, when the day's account purge has let go of them.
    "store-purge": {"task": "store.purge_due", "schedule": crontab(hour="4", minute="11")},
    "store-purge-blob": {
        "task": "store.purge_due",
        "schedule": crontab(hour="5", minute="11"),
        "kwargs": {"blobs": True},
    },
}

# A worker holds a run this long past its last heartbeat (every quarter of it); then the
# reaper takes the run back.
MAILADMIN_TASK_LEASE_SECONDS = env_int("MAILADMIN_TASK_LEASE_SECONDS", 60)

CACHES = (
    {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
    if REDIS_URL
    else {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "mailadmin_cache",
        }
    }
)

# --- Mail plane -----------------------------------------------------------------------
MAILADMIN_DNS_NAMESERVERS = env_nameservers("MAILADMIN_DNS_NAMESERVERS")
MAILADMIN_DNS_TIMEOUT = float(env_int("MAILADMIN_DNS_TIMEOUT", 5))
# One domain's whole check (all its lookups, run concurrently) ends by this many seconds.
MAILADMIN_DNS_CHECK_DEADLINE = float(env_int("MAILADMIN_DNS_CHECK_DEADLINE", 15))
# "Check all" checks this many domains at once (each runs its ~16 lookups concurrently).
MAILADMIN_DNS_CHECK_CONCURRENCY = env_int("MAILADMIN_DNS_CHECK_CONCURRENCY", 50)
# "Check all" splits each batch of domains over this many worker processes (DNS only; the
# task's process stores the results): judging answers is CPU work, so one per core.
MAILADMIN_DNS_CHECK_PROCESSES = env_int("MAILADMIN_DNS_CHECK_PROCESSES", os.cpu_count() or 1)
# Inbound mail (the MX) is scanned: off stores every accepted message in the INBOX as is.
MAILADMIN_SPAM_FILTER = env_bool("MAILADMIN_SPAM_FILTER", default=True)
# Spam filter (apps.spamfilter): one scan's DNS lookups all end by this many seconds
# (then temperror); answers are kept this long (at most their TTL) for the next scans.
MAILADMIN_SPAM_DNS_DEADLINE = env_float("MAILADMIN_SPAM_DNS_DEADLINE", 5.0)
MAILADMIN_SPAM_DNS_CACHE_SECONDS = env_float("MAILADMIN_SPAM_DNS_CACHE_SECONDS", 300.0)
# Score thresholds; 0 turns an action off. At or above "spam" the message is marked
# (X-Spam-Status: Yes, Junk folder); the others are actions taken at or above them.
MAILADMIN_SPAM_THRESHOLD_SPAM = env_float("MAILADMIN_SPAM_THRESHOLD_SPAM", 5.0)
MAILADMIN_SPAM_THRESHOLD_QUARANTINE = env_float("MAILADMIN_SPAM_THRESHOLD_QUARANTINE", 0.0)
MAILADMIN_SPAM_THRESHOLD_REJECT = env_float("MAILADMIN_SPAM_THRESHOLD_REJECT", 15.0)
MAILADMIN_SPAM_THRESHOLD_DISCARD = env_float("MAILADMIN_SPAM_THRESHOLD_DISCARD", 0.0)
# Bayes votes only once a model has learned this many spam AND this many ham messages.
MAILADMIN_SPAM_BAYES_MIN_LEARNS = env_int("MAILADMIN_SPAM_BAYES_MIN_LEARNS", 50)
# The name in our Authentication-Results headers (RFC 8601 authserv-id); empty: hostname.
MAILADMIN_SPAM_AUTHSERV_ID = env_str("MAILADMIN_SPAM_AUTHSERV_ID")
# The rules file; empty: apps/spamfilter/rules.yaml as shipped.
MAILADMIN_SPAM_RULES_FILE = env_str("MAILADMIN_SPAM_RULES_FILE")
# How often (seconds) a process asks whether the settings store changed (one tiny query);
# a change made by this process is seen at once, one made by another within this time.
MAILADMIN_SETTINGS_REFRESH_SECONDS = env_float("MAILADMIN_SETTINGS_REFRESH_SECONDS", 1.0)
# DNS block lists asked with the sending IP, e.g. "zen.spamhaus.org:RBL_SPAMHAUS:4.0"
# (zone:TAG:score, comma-separated); off by default.
MAILADMIN_SPAM_DNSBL = env_str("MAILADMIN_SPAM_DNSBL")
# URI block lists asked with the registered domain of each link in the message, e.g.
# "dbl.spamhaus.org:URIBL_DBL:3.0,multi.uribl.com:URIBL_BLACK:3.0"; off by default.
MAILADMIN_SPAM_URIBL = env_str("MAILADMIN_SPAM_URIBL")
# Quarantined messages are deleted this many days after they arrived (0 keeps them); the
# daily digest to each quarantine's owner comes from this address (empty:
# noreply-quarantine@<hostname>).
MAILADMIN_QUARANTINE_RETENTION_DAYS = env_int("MAILADMIN_QUARANTINE_RETENTION_DAYS", 30)
MAILADMIN_QUARANTINE_DIGEST_FROM = env_str("MAILADMIN_QUARANTINE_DIGEST_FROM")
# Telemetry (apps.telemetry.events): events are buffered per process and written every
# FLUSH_SECONDS (0: only when flush() is called, as in tests) or once BATCH wait; past
# BUFFER waiting events new ones are dropped (and counted). Metrics and traces are kept
# RETENTION_DAYS; live streams last at most LIVE_SECONDS on a token valid TOKEN_SECONDS.
MAILADMIN_TELEMETRY_FLUSH_SECONDS = env_float("MAILADMIN_TELEMETRY_FLUSH_SECONDS", 2.0)
MAILADMIN_TELEMETRY_BATCH = env_int("MAILADMIN_TELEMETRY_BATCH", 1000)
MAILADMIN_TELEMETRY_BUFFER = env_int("MAILADMIN_TELEMETRY_BUFFER", 20_000)
MAILADMIN_TELEMETRY_RETENTION_DAYS = env_int("MAILADMIN_TELEMETRY_RETENTION_DAYS", 7)
MAILADMIN_TELEMETRY_LIVE_SECONDS = env_int("MAILADMIN_TELEMETRY_LIVE_SECONDS", 300)
MAILADMIN_TELEMETRY_TOKEN_SECONDS = env_int("MAILADMIN_TELEMETRY_TOKEN_SECONDS", 300)
# Threads of each web process (`serve`: gunicorn's gthread workers), and the Server-Sent
# Events streams (live telemetry, delivery troubleshooting) one process serves at once:
# each holds a thread while it lasts, so at most half of them, the rest for the console.
MAILADMIN_WEB_THREADS = max(2, env_int("MAILADMIN_WEB_THREADS", 8))
MAILADMIN_LIVE_STREAMS_MAX = min(
    env_int("MAILADMIN_LIVE_STREAMS_MAX", MAILADMIN_WEB_THREADS // 2), MAILADMIN_WEB_THREADS - 1
)
# The addresses this server sends mail from, which a domain's SPF must authorise; empty: the
# A/AAAA addresses of MAILADMIN_HOSTNAME.
MAILADMIN_OUTBOUND_IPS = [ip for ip in env_str("MAILADMIN_OUTBOUND_IPS").replace(",", " ").split()]
MAILADMIN_SMTP_REMOTE_PORT = env_int("MAILADMIN_SMTP_REMOTE_PORT", 25)
MAILADMIN_SMTP_BIND = env_bind(
    "MAILADMIN_SMTP_BIND", "0.0.0.0:25" if PRODUCTION else "127.0.0.1:2525", default_port=25
)
MAILADMIN_SUBMISSION_BIND = env_bind(
    "MAILADMIN_SUBMISSION_BIND",
    "0.0.0.0:587" if PRODUCTION else "127.0.0.1:5870",
    default_port=587,
)
MAILADMIN_HTTP_BIND = env_bind(
    "MAILADMIN_HTTP_BIND", "0.0.0.0:8000" if PRODUCTION else "127.0.0.1:8000", default_port=8000
)
MAILADMIN_HOSTNAME = env_str("MAILADMIN_HOSTNAME", "mail.localhost")
# Where people reach the console: links in mail (the quarantine digest) are built on it.
MAILADMIN_CONSOLE_URL = env_url(
    "MAILADMIN_CONSOLE_URL",
    f"https://{MAILADMIN_HOSTNAME}" if PRODUCTION else "http://127.0.0.1:8000",
)
MAILADMIN_MAX_MESSAGE_SIZE = env_int("MAILADMIN_MAX_MESSAGE_SIZE", 50 * 1024 * 1024)
# The header section of a message (bytes up to the blank line), as Postfix's default.
MAILADMIN_SMTP_MAX_HEADER_SIZE = env_int("MAILADMIN_SMTP_MAX_HEADER_SIZE", 100 * 1024)
MAILADMIN_SMTP_MAX_RECIPIENTS = env_int("MAILADMIN_SMTP_MAX_RECIPIENTS", 100)
# Open connections per listener (process), in all and from one address (IPv6: its /64).
MAILADMIN_SMTP_MAX_CONNECTIONS = env_int("MAILADMIN_SMTP_MAX_CONNECTIONS", 500)
MAILADMIN_SMTP_MAX_CONNECTIONS_PER_IP = env_int("MAILADMIN_SMTP_MAX_CONNECTIONS_PER_IP", 50)
# Threads running the listeners' database work (recipient lookups, AUTH, delivery).
MAILADMIN_SMTP_DB_THREADS = env_int("MAILADMIN_SMTP_DB_THREADS", 8)
# STARTTLS certificate (PEM chain; the key in its own file or in the same one). Empty: a
# self-signed certificate for MAILADMIN_HOSTNAME generated once into VAR_DIR.
MAILADMIN_TLS_CERT_FILE = env_str("MAILADMIN_TLS_CERT_FILE")
MAILADMIN_TLS_KEY_FILE = env_str("MAILADMIN_TLS_KEY_FILE")
# Submission: messages per window per account and per client address (0 = no limit).
MAILADMIN_SUBMISSION_RATE_ACCOUNT = env_int("MAILADMIN_SUBMISSION_RATE_ACCOUNT", 1000)
MAILADMIN_SUBMISSION_RATE_IP = env_int("MAILADMIN_SUBMISSION_RATE_IP", 3000)
MAILADMIN_SUBMISSION_RATE_WINDOW = env_int("MAILADMIN_SUBMISSION_RATE_WINDOW", 3600)

# --- Mail store (apps.store) -----------------------------------------------------------
# Message bytes, stored once by SHA-256 under <dir>/<aa>/<bb>/<hash>.
MAILADMIN_BLOB_DIR = Path(env_str("MAILADMIN_BLOB_DIR", str(VAR_DIR / "blobs")))
# The mail store's purges (apps.store.maintenance): expunged messages are kept this many
# days for undelete; Trash and Junk messages received longer ago are expunged (0 keeps them);
# a blob file no row references is deleted only once it is older than the grace period
# (a delivery writes the blob before its row).
MAILADMIN_STORE_UNDELETE_DAYS = env_int("MAILADMIN_STORE_UNDELETE_DAYS", 30)
MAILADMIN_STORE_TRASH_DAYS = env_int("MAILADMIN_STORE_TRASH_DAYS", 30)
MAILADMIN_STORE_JUNK_DAYS = env_int("MAILADMIN_STORE_JUNK_DAYS", 30)
MAILADMIN_STORE_BLOB_GRACE_MINUTES = env_int("MAILADMIN_STORE_BLOB_GRACE_MINUTES", 60)
# A long store run (all accounts, blobs, reindex) stops after this many seconds and records
# where; the next run goes on from there (the task's own limit is an hour).
MAILADMIN_STORE_RUN_BUDGET_SECONDS = env_int("MAILADMIN_STORE_RUN_BUDGET_SECONDS", 3000)
# --- Outbound queue (apps.queue) -------------------------------------------------------
# Seconds between delivery attempts of one domain: the list, then its last step forever.
MAILADMIN_QUEUE_RETRY_SCHEDULE = [
    int(s)
    for s in env_str("MAILADMIN_QUEUE_RETRY_SCHEDULE", "120,300,600,900,1800,3600,7200").split(",")
]
# A delay DSN after this long undelivered; a failure DSN (and no more tries) after expiry.
MAILADMIN_QUEUE_NOTIFY_SECONDS = env_int("MAILADMIN_QUEUE_NOTIFY_SECONDS", 24 * 3600)
MAILADMIN_QUEUE_EXPIRE_SECONDS = env_int("MAILADMIN_QUEUE_EXPIRE_SECONDS", 5 * 24 * 3600)
# A worker holds a domain entry this long per step (renewed between MX hosts); a worker
# killed mid-delivery lets it lapse and the sweep hands the entry to another.
MAILADMIN_QUEUE_LEASE_SECONDS = env_int("MAILADMIN_QUEUE_LEASE_SECONDS", 300)
MAILADMIN_QUEUE_SMTP_TIMEOUT = env_int("MAILADMIN_QUEUE_SMTP_TIMEOUT", 60)
# The longest a delivery troubleshooting run (GET /api/troubleshoot/delivery/...) may take.
MAILADMIN_TROUBLESHOOT_TIMEOUT = env_int("MAILADMIN_TROUBLESHOOT_TIMEOUT", 60)
# Idle pooled connections to remote MX hosts are closed after this many seconds.
MAILADMIN_QUEUE_POOL_IDLE_SECONDS = env_int("MAILADMIN_QUEUE_POOL_IDLE_SECONDS", 30)
# Delivered, failed and cancelled messages stay listed this many days, then are deleted.
MAILADMIN_QUEUE_KEEP_DAYS = env_int("MAILADMIN_QUEUE_KEEP_DAYS", 7)

# --- Fetch jobs (apps.queue.fetch): mail fetched from remote IMAP/POP3 mailboxes ------
# Seconds one network operation with the remote server may take (connect, each command).
MAILADMIN_FETCH_TIMEOUT = env_int("MAILADMIN_FETCH_TIMEOUT", 30)
# Messages one run processes at most; the rest are fetched by the next run, due at once.
MAILADMIN_FETCH_MAX_MESSAGES = env_int("MAILADMIN_FETCH_MAX_MESSAGES", 500)
# Monitoring entries (processed messages) are kept this many days (0 keeps them).
MAILADMIN_FETCH_KEEP_DAYS = env_int("MAILADMIN_FETCH_KEEP_DAYS", 30)

# Verified outbound TLS (apps.queue.tls_policy): DANE (TLSA records the resolver marks
# authenticated) and MTA-STS policies of destination domains; off: opportunistic TLS only.
MAILADMIN_QUEUE_TLS_POLICIES = env_bool("MAILADMIN_QUEUE_TLS_POLICIES", default=True)
# CA certificates (PEM) trusted for MTA-STS: policy fetches and MX certificates; empty: the
# system's. The HTTPS port of mta-sts.<domain> (443; tests serve it on loopback).
MAILADMIN_TLS_CA_FILE = env_str("MAILADMIN_TLS_CA_FILE")
MAILADMIN_MTA_STS_HTTPS_PORT = env_int("MAILADMIN_MTA_STS_HTTPS_PORT", 443)

# --- SRS (apps.queue.srs): the return path of mail relayed for a forwarding address ----
# Rewritten into the forwarding address's domain (or MAILADMIN_SRS_DOMAIN) so SPF passes
# at the destination; bounces to those addresses are checked (hash, age) and sent back.
MAILADMIN_SRS = env_bool("MAILADMIN_SRS", default=True)
# Comma-separated: the first signs, every one still reverses (rotation). Empty: derived
# from SECRET_KEY.
MAILADMIN_SRS_SECRET = env_str("MAILADMIN_SRS_SECRET")
MAILADMIN_SRS_DOMAIN = env_str("MAILADMIN_SRS_DOMAIN").strip().rstrip(".").lower()
MAILADMIN_SRS_MAX_AGE_DAYS = env_int("MAILADMIN_SRS_MAX_AGE_DAYS", 21)

# --- Domains: DKIM rotation and the published record set (apps.domains.records) ------
# A replaced or retired DKIM key stays published (not signing) this many days, so mail it
# signed still verifies; then its record is withdrawn and its private key destroyed.
MAILADMIN_DKIM_RETIRE_GRACE_DAYS = env_int("MAILADMIN_DKIM_RETIRE_GRACE_DAYS", 7)
# DMARC (rua/ruf) and TLS-RPT reports are sent to <local part>@<each hosted domain>.
MAILADMIN_DMARC_REPORT_LOCALPART = env_str("MAILADMIN_DMARC_REPORT_LOCALPART", "dmarc-reports")
MAILADMIN_TLSRPT_REPORT_LOCALPART = env_str("MAILADMIN_TLSRPT_REPORT_LOCALPART", "tls-reports")
# The MTA-STS policy served at https://mta-sts.<domain>/.well-known/mta-sts.txt.
MAILADMIN_MTA_STS_MODE = env_str("MAILADMIN_MTA_STS_MODE", "testing")
if MAILADMIN_MTA_STS_MODE not in {"enforce", "testing", "none"}:
    raise ImproperlyConfigured("MAILADMIN_MTA_STS_MODE must be enforce, testing or none")
MAILADMIN_MTA_STS_MAX_AGE = env_int("MAILADMIN_MTA_STS_MAX_AGE", 7 * 86400)

# --- Incoming reports (apps.reports) ---------------------------------------------------
# Caps on one file as sent, once decompressed, and on the records of one report; and how
# many days reports (and failed ingests) are kept before the daily purge (0 = forever).
MAILADMIN_REPORTS_MAX_UPLOAD = env_int("MAILADMIN_REPORTS_MAX_UPLOAD", 50 * 1024 * 1024)
MAILADMIN_REPORTS_MAX_DECOMPRESSED = env_int(
    "MAILADMIN_REPORTS_MAX_DECOMPRESSED", 200 * 1024 * 1024
)
MAILADMIN_REPORTS_MAX_RECORDS = env_int("MAILADMIN_REPORTS_MAX_RECORDS", 500_000)
MAILADMIN_REPORTS_RETENTION_DAYS = env_int("MAILADMIN_REPORTS_RETENTION_DAYS", 365)
# Uploads larger than this (all files together) are ingested by a worker, with progress.
MAILADMIN_REPORTS_ASYNC_UPLOAD = env_int("MAILADMIN_REPORTS_ASYNC_UPLOAD", 5 * 1024 * 1024)
# Seconds one PTR lookup of a report source may take (a worker does them, in batches).
MAILADMIN_REPORTS_PTR_TIMEOUT = float(env_int("MAILADMIN_REPORTS_PTR_TIMEOUT", 2))
# Our own outgoing DMARC aggregate and TLS-RPT reports: who we say we are, and the address
# they come from (bounces of reports go there too).
MAILADMIN_REPORTS_ORG_NAME = env_str("MAILADMIN_REPORTS_ORG_NAME", "") or MAILADMIN_HOSTNAME
MAILADMIN_REPORTS_FROM = (
    env_str("MAILADMIN_REPORTS_FROM", "") or f"noreply-reports@{MAILADMIN_HOSTNAME}"
)
# TLS-RPT reports POSTed to https: rua endpoints (RFC 8460 3): the CA bundle (PEM file) the
# endpoints' certificates are verified against (empty: the system's CAs) and the seconds
# one POST may take.
MAILADMIN_REPORTS_HTTPS_CA_BUNDLE = env_str("MAILADMIN_REPORTS_HTTPS_CA_BUNDLE", "")
MAILADMIN_REPORTS_HTTPS_TIMEOUT = env_int("MAILADMIN_REPORTS_HTTPS_TIMEOUT", 30)
# DMARC failure reports (RFC 6591) we send to a failing domain's ruf: at most this many
# per policy domain per hour (0 sends none).
MAILADMIN_REPORTS_RUF_PER_HOUR = env_int("MAILADMIN_REPORTS_RUF_PER_HOUR", 10)

# --- Auth -----------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.Principal"
AUTHENTICATION_BACKENDS = ["apps.accounts.auth.backends.PrincipalBackend"]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    # Hashes imported from other mail servers: accepted once, then re-hashed with Argon2.
    "apps.accounts.auth.hashers.SHA512CryptPasswordHasher",
    "apps.accounts.auth.hashers.SHA256CryptPasswordHasher",
    "apps.accounts.auth.hashers.BcryptCryptPasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
# Failed logins before a lockout, per account and per client address (NAT shares one):
# (failures, within seconds, locked for seconds).
MAILADMIN_LOGIN_LOCKOUT = {
    "account": (env_int("MAILADMIN_LOCKOUT_ACCOUNT_FAILURES", 5), 900, 900),
    "ip": (env_int("MAILADMIN_LOCKOUT_IP_FAILURES", 20), 900, 900),
}
# A mail client's login that succeeded (HTTP Basic, SMTP AUTH) is remembered this long in
# the cache, so repeating it costs no password hash; any change to the credential ends it
# at once (apps.accounts.auth.remembered). 0: every request verifies its password hash.
MAILADMIN_BASIC_AUTH_CACHE_SECONDS = env_int("MAILADMIN_BASIC_AUTH_CACHE_SECONDS", 60)
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

# --- REST API -------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "mailadmin.api.auth.BearerTokenAuthentication",
        "mailadmin.api.auth.BasicAuthentication",
        "mailadmin.api.auth.SessionAuthentication",
    ],
    # Fail closed: a view that declares no permission is refused (mailadmin.api.permissions).
    "DEFAULT_PERMISSION_CLASSES": ["mailadmin.api.permissions.Undeclared"],
    "DEFAULT_RENDERER_CLASSES": [
        "mailadmin.api.renderers.JSONRenderer",
        "mailadmin.api.renderers.XMLRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": ["mailadmin.api.parsers.JSONParser"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "mailadmin.api.renderers.ContentNegotiation",
    "EXCEPTION_HANDLER": "mailadmin.api.exceptions.problem_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "mailadmin.api.schema.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "mailadmin API",
    "DESCRIPTION": "Management API of a multi-tenant mail service.",
    "VERSION": "0.1.0",
    # 3.1: JSON Schema proper, so a body that is always null can say so ({"type": "null"}).
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # No badge from validator.swagger.io: it would send our schema's URL to a third party
    # (and the Content-Security-Policy blocks it anyway).
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    # Several outputs have a "status" of their own: name each set of values.
    "ENUM_NAME_OVERRIDES": {
        "DomainStatusEnum": "apps.domains.serializers.DOMAIN_STATUSES",
        "ApiKeyStatusEnum": "apps.accounts.auth.api_keys.API_KEY_STATUSES",
        "MailboxFetchTypeEnum": "apps.queue.models.FetchJob.Protocol",
    },
    "REDOC_DIST": "SIDECAR",
}

# --- Static files, i18n ---------------------------------------------------------------
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "staticfiles")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = not PRODUCTION
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Security -------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # htmx reads nothing from it: the token rides in hx-headers
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if PRODUCTION:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# mailadmin's own records for superadmins (GET /api/logs, Telemetry -> Logs): JSON lines
# in a size-rotated file (apps.telemetry.logs), at MAILADMIN_LOG_FILE_LEVEL and above.
MAILADMIN_LOG_FILE = Path(env_str("MAILADMIN_LOG_FILE", str(VAR_DIR / "logs" / "mailadmin.jsonl")))
MAILADMIN_LOG_FILE_MAX_BYTES = env_int("MAILADMIN_LOG_FILE_MAX_BYTES", 5 * 1024 * 1024)
MAILADMIN_LOG_FILE_BACKUPS = env_int("MAILADMIN_LOG_FILE_BACKUPS", 4)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
        "store": {
            "()": "apps.telemetry.logs.JsonLinesHandler",
            "filename": MAILADMIN_LOG_FILE,
            "max_bytes": MAILADMIN_LOG_FILE_MAX_BYTES,
            "backups": MAILADMIN_LOG_FILE_BACKUPS,
            "level": env_str("MAILADMIN_LOG_FILE_LEVEL", "INFO"),
        },
    },
    "root": {"handlers": ["console", "store"], "level": env_str("MAILADMIN_LOG_LEVEL", "INFO")},
    "loggers": {
        "mail.log": {"level": "WARNING"},  # aiosmtpd logs every command at INFO
        # dkimpy logs a signature that does not verify as an ERROR; for us it is a result
        # (Authentication-Results, DKIM_* tags), not a fault.
        "dkimpy": {"level": "CRITICAL"},
    },
}
