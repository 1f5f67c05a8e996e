"""Settings, read only from the environment.

The defaults give the embedded mode of DESIGN.md: SQLite, a filesystem Celery broker and
no cross-process channel layer, all under DATA_DIR. Production sets DATABASE_URL,
CELERY_BROKER_URL, REDIS_URL, SECRET_KEY and FERNET_KEYS.
"""

import os
from pathlib import Path

import dj_database_url

from cloud.beat import every
from cloud.env import Env, secret_file
from cloud.logs import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent
env = Env()

DATA_DIR = env.path("DATA_DIR", BASE_DIR / "var")
DATA_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env.bool("DEBUG", False)
# From the environment, else the files `manage.py init_secrets` writes under DATA_DIR
# (embedded mode). Importing settings only reads: with neither, Django refuses to sign
# and portal.secrets refuses to encrypt, each with a one-line error naming the fix.
SECRET_KEY = env.str("SECRET_KEY", "") or secret_file(DATA_DIR / "secret_key")
# Rotating SECRET_KEY: put the old one here until no live node needs it (guest tokens and
# metadata proxies' signatures are checked against these too), then drop it.
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])
# Fernet keys for secrets at rest (cluster CA keys, join tokens, hypervisor credentials);
# the first encrypts, all decrypt, so keys can be rotated by prepending a new one.
FERNET_KEYS = env.list("FERNET_KEYS", []) or [
    key for key in [secret_file(DATA_DIR / "fernet_key")] if key
]
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", ["localhost", "127.0.0.1"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", [])
PORT = env.int("PORT", 8000)
# Where guests and the simulator reach the portal (cloud-init seed URL, phone-home).
PORTAL_URL = env.str("PORTAL_URL", f"http://127.0.0.1:{PORT}").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "django_htmx",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "portal",
    "provisioning",
    "networking",
    "observability",
]

MIDDLEWARE = [
    "observability.http_metrics.RequestTimer",  # first: it times everything below
    "observability.log_context.CorrelationMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",  # request.user.is_verified(): staff's 2nd factor
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it turns locked-out logins into a response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "cloud.urls"
ASGI_APPLICATION = "cloud.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.context_processors.organisations",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
DATABASE_URL = env.str("DATABASE_URL", "")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL)}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Under ASGI every request runs in a fresh thread: without a pool each one would
        # open (and leak until garbage collection) its own PostgreSQL connection.
        DATABASES["default"]["OPTIONS"] = {
            "pool": {"min_size": 2, "max_size": env.int("DATABASE_POOL_SIZE", 20), "timeout": 30},
            "server_side_binding": True,
            "prepare_threshold": 5,
        }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(DATA_DIR / "portal.sqlite3"),
            # WAL lets readers run beside the one writer; IMMEDIATE takes the write lock
            # at BEGIN so two writers queue on busy_timeout instead of failing mid-way.
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "portal:home"
LOGOUT_REDIRECT_URL = "login"

# Failed logins: lock a username+address pair after 5 failures for 15 minutes.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = 0.25
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False

EMAIL_BACKEND = env.str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", "portal@localhost")

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        # Vendored files carry their version in their names, so no manifest is needed.
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
    },
}
# Tests and the embedded mode serve straight from the finders, no collectstatic needed.
WHITENOISE_USE_FINDERS = env.bool("WHITENOISE_USE_FINDERS", True)
WHITENOISE_AUTOREFRESH = DEBUG

# --- Security (all on unless the embedded mode runs on plain HTTP) --------------------
HTTPS = env.bool("HTTPS", False)
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = HTTPS
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", 31536000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if HTTPS else None
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
# What authenticator apps show next to a staff member's code.
OTP_TOTP_ISSUER = "K3s cloud"
SECURE_REFERRER_POLICY = "same-origin"
# Only the portal's own files: no inline script or style, no eval (htmx's allowEval is
# off), websockets to this origin ('self' covers ws:/wss: of the same host).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# --- API ------------------------------------------------------------------------------
# DRF and the OpenAPI document (drf-spectacular): fixed, so kept apart.
from cloud.api_settings import REST_FRAMEWORK, SPECTACULAR_SETTINGS  # noqa: E402, F401

# --- Channels -------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", "")
CHANNEL_LAYERS = (
    {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # Reads must outlast channels-redis's 5 s blocking pop, or a slow answer
            # under load raises a timeout inside a consumer and drops its websocket.
            "CONFIG": {
                "hosts": [{"address": REDIS_URL, "socket_timeout": 30}],
                # One process's watchers share one Redis list, and a group send past its
                # capacity is dropped silently: leave room for every watcher of a cluster.
                "capacity": env.int("CHANNEL_CAPACITY", 5000),
            },
        }
    }
    if REDIS_URL
    else {}
)

# --- Cache -----------------------------------------------------------------------------
# Shared by every web process, so DRF throttles (phone-home) count across all of them.
# cache.clear() flushes its whole Redis database: give CACHE_URL its own database when
# REDIS_URL's also carries the channel layer. Embedded mode uses a table in the database
# (created by the portal migration 0003_cache_table).
CACHE_URL = env.str("CACHE_URL", REDIS_URL)
CACHES = {
    "default": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": "portal",
        }
        if CACHE_URL
        else {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "portal_cache"}
    ),
}
# Guest reports' throttle counts on every report: never in the database (five queries a
# report); without Redis in memory, each web process counting its own.
CACHES["throttle"] = (
    CACHES["default"] if CACHE_URL else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
)

# --- Celery ---------------------------------------------------------------------------
BROKER_DIR = DATA_DIR / "broker"
# atomicfs:// is kombu's filesystem transport with atomic writes (cloud/broker.py).
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", "atomicfs://")
if CELERY_BROKER_URL.startswith(("atomicfs", "filesystem")):
    for folder in ("queue", "processed", "control"):
        (BROKER_DIR / folder).mkdir(parents=True, exist_ok=True)
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
        # The 1 s default makes every hop between web and worker wait up to a second.
        "polling_interval": 0.05,
    }
    if CELERY_BROKER_URL.startswith(("atomicfs", "filesystem"))
    else {}
)
# Django's LOGGING applies in workers too (JSON lines with the launch's context).
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
# How often the worker says it is alive (read by /readyz).
WORKER_HEARTBEAT_SECONDS = env.int("WORKER_HEARTBEAT_SECONDS", 10)

# --- Portal ---------------------------------------------------------------------------
API_TOKEN_DEFAULT_DAYS = env.int("API_TOKEN_DEFAULT_DAYS", 90)
DEFAULT_QUOTA = {
    "clusters": env.int("QUOTA_CLUSTERS", 10),
    "nodes": env.int("QUOTA_NODES", 40),
    "vcpus": env.int("QUOTA_VCPUS", 80),
    "memory_mib": env.int("QUOTA_MEMORY_MIB", 163840),
    "networks": env.int("QUOTA_NETWORKS", 5),
}

# JSON lines with the launch's context (observability.log_context); LOG_FORMAT=plain for
# a human at a terminal.
LOG_FORMAT = env.str("LOG_FORMAT", "json")
LOGGING = logging_config(LOG_FORMAT, env.str("LOG_LEVEL", "INFO"))

# Seconds between inventory rounds (every hypervisor's totals and domains).
INVENTORY_SYNC_SECONDS = env.float("INVENTORY_SYNC_SECONDS", 10)

# --- Launch pipeline ------------------------------------------------------------------
# Domains on libvirt's test driver boot no guest, so a simulator plays their guests and
# phones home over HTTP like a real one; real hosts are never simulated.
GUEST_SIMULATOR = env.bool("CLOUD_GUEST_SIMULATOR", True)
# The simulator's own queue ("": the default): the launch bench gives it a worker of its own.
GUEST_SIM_QUEUE = env.str("GUEST_SIM_QUEUE", "")
# Multiplies the simulated guest's realistic step durations (0 = instant).
GUEST_SIM_SCALE = env.float("CLOUD_GUEST_SIM_SCALE", 0.3)
# "step:probability,..." injects failures at any of the five steps (tests and demos).
CLOUD_FAULTS = env.str("CLOUD_FAULTS", "")
# Seconds a step may take before the reaper fails the node.
STEP_TIMEOUT_SECONDS = env.int("STEP_TIMEOUT_SECONDS", 300)
REAPER_SECONDS = env.float("REAPER_SECONDS", 15)
# A guest that has not phoned home this long after its VM started is failed at cloud_init
# (guest_unreachable, with its console's last lines). TCG boots here take 75-85 s.
GUEST_BOOT_DEADLINE_SECONDS = env.int("GUEST_BOOT_DEADLINE_SECONDS", 240)

# --- Host agents ----------------------------------------------------------------------
# On: tasks that touch a hypervisor go to its own queue host.<name>, consumed by the host
# agent (`manage.py host_agent NAME`) next to it; a host whose agent has been silent for
# AGENT_SILENT_SECONDS takes no new nodes. Off (embedded): one worker does everything.
HOST_QUEUES = env.bool("HOST_QUEUES", False)
AGENT_SILENT_SECONDS = env.int("AGENT_SILENT_SECONDS", 60)
AGENT_PING_SECONDS = env.float("AGENT_PING_SECONDS", 10)
# Set by `manage.py host_agent NAME --uri URI`: in that agent, the hypervisor's stored URI
# (e.g. qemu+ssh://host/system, as the central workers reach it) is opened as the local URI.
LIBVIRT_URI_ALIASES = (
    {env.str("HOST_AGENT_STORED_URI", ""): env.str("HOST_AGENT_URI", "")}
    if env.str("HOST_AGENT_STORED_URI", "") and env.str("HOST_AGENT_URI", "")
    else {}
)

# --- Tenant networks ------------------------------------------------------------------
# VXLAN VNIs handed to tenant networks, per region (24-bit; the default starts above the
# 802.1Q VLAN range so a VNI is never mistaken for a VLAN tag on the same fabric).
NETWORK_VNI_MIN = env.int("NETWORK_VNI_MIN", 4097)
NETWORK_VNI_MAX = env.int("NETWORK_VNI_MAX", 16777215)
# The lease dnsmasq gives each static DHCP host (dnsmasq's floor is 120 s; libvirt's own
# default would be 1 h). A freed address is quarantined as long: a lease granted at the
# guest's last renewal expires at most that long after the guest went away.
DHCP_LEASE_SECONDS = max(120, env.int("DHCP_LEASE_SECONDS", 300))
ADDRESS_QUARANTINE_SECONDS = env.int("ADDRESS_QUARANTINE_SECONDS", DHCP_LEASE_SECONDS)
# The ports of a host's public address forwarded to server nodes' Kubernetes API (6443).
API_FORWARD_PORT_MIN = env.int("API_FORWARD_PORT_MIN", 16443)
API_FORWARD_PORT_MAX = env.int("API_FORWARD_PORT_MAX", 17442)
# Where a real host's agent keeps its tenant networks' files (dnsmasq, metadata proxy).
HOSTNET_RUN_DIR = env.path("HOSTNET_RUN_DIR", DATA_DIR / "hostnet")
# What guests are told to fetch their seed from and report to: the metadata proxy of their
# network's namespace, which forwards to PORTAL_URL.
METADATA_URL = env.str("METADATA_URL", "http://169.254.169.254").rstrip("/")
# Lines of a silent guest's serial console kept on the node (guest_unreachable).
CONSOLE_TAIL_LINES = env.int("CONSOLE_TAIL_LINES", 40)
# Running nodes' heartbeats (provisioning.node_health): how often a guest sends one, how
# long a silent one stays healthy, and how much history the cluster page charts.
HEARTBEAT_SECONDS = env.int("HEARTBEAT_SECONDS", 30)
HEARTBEAT_STALE_SECONDS = env.int("HEARTBEAT_STALE_SECONDS", 3 * HEARTBEAT_SECONDS)
HEARTBEAT_HISTORY_SECONDS = env.int("HEARTBEAT_HISTORY_SECONDS", 3600)

# --- Metrics -------------------------------------------------------------------------
# prometheus-client's multi-process mode: every process writes its samples here and a
# scrape adds them up. Set before anything imports prometheus-client.
PROMETHEUS_MULTIPROC_DIR = env.path("PROMETHEUS_MULTIPROC_DIR", DATA_DIR / "metrics")
PROMETHEUS_MULTIPROC_DIR.mkdir(parents=True, exist_ok=True)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(PROMETHEUS_MULTIPROC_DIR)
# Traces over OTLP (observability.tracing) when set, e.g. http://collector:4318; off when not.
OTEL_EXPORTER_OTLP_ENDPOINT = env.str("OTEL_EXPORTER_OTLP_ENDPOINT", "")
# A span per SQL statement too (psycopg's instrumentation): about 10 % of launch throughput
# and 13 % more CPU per node (bench/launch.py --observe both), so only when asked.
OTEL_TRACE_SQL = env.bool("OTEL_TRACE_SQL", False)
# A bearer token Prometheus scrapes /metrics with; staff may read it in the browser too.
METRICS_TOKEN = env.str("METRICS_TOKEN", "")
# CIDRs webhooks may reach although private, loopback, ... (observability.webhooks).
WEBHOOK_ALLOWED_NETWORKS = env.list("WEBHOOK_ALLOWED_NETWORKS", [])

# --- Reconciliation -------------------------------------------------------------------
# Seconds a domain with the portal's prefix that no node owns is left alone (and shown to
# staff) before reconciliation undefines it and its disk.
ORPHAN_GRACE_SECONDS = env.int("ORPHAN_GRACE_SECONDS", 600)
RECONCILE_SECONDS = env.float("RECONCILE_SECONDS", 30)

# --- Periodic tasks (run by beat, which `serve` starts inside the worker) ---------------
CELERY_BEAT_SCHEDULE = every(
    {
        "observability.tasks.heartbeat": WORKER_HEARTBEAT_SECONDS,
        "provisioning.sync_inventory": INVENTORY_SYNC_SECONDS,
        "provisioning.reap_stalled": REAPER_SECONDS,
        "provisioning.watch_health": HEARTBEAT_SECONDS / 2,
        "provisioning.drain_hosts": 10,
        "provisioning.roll_upgrades": 10,
        "provisioning.simulate_heartbeats": HEARTBEAT_SECONDS,
        "provisioning.reconcile": RECONCILE_SECONDS,
        "provisioning.ping_agents": AGENT_PING_SECONDS,
        "observability.webhooks.sweep": 10,  # deliveries due (retries, lost messages)
    }
)
# Tasks that touch a hypervisor go to its agent's queue when HOST_QUEUES is on.
CELERY_TASK_ROUTES = ("provisioning.queues.route",)
