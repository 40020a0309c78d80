"""Settings for the wallet service, read from the environment (twelve-factor).

Every variable is listed with a one-line comment in `.env.example`.

Two modes:

* **Service mode** (`DATABASE_URL` and `REDIS_URL` set): PostgreSQL for the
  ledger, Redis for the per-balance locks and throttles. This is the only mode
  that is safe with more than one process.
* **Single-process development mode** (either of them unset, `DEBUG` on):
  SQLite and/or an in-process lock, so that `make run` works on a machine that
  has only Python. It says so loudly on start. With `DEBUG` off the settings
  refuse to start in this mode.
"""

from __future__ import annotations

import base64
import hashlib
import os
import sys
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

from django.core.exceptions import ImproperlyConfigured
from redis.backoff import NoBackoff
from redis.retry import Retry

BASE_DIR = Path(__file__).resolve().parent.parent

DEVELOPMENT_SECRET_KEY = "development-only-secret-key-do-not-use-in-production-0123456789"
# Every key this code has ever been published with: the development default,
# the former defaults of the compose file and .env.example, the image build's,
# the tests' and the benchmark's. Anyone can read them, and SECRET_KEY also
# signs the API's tokens (JWT_SIGNING_KEY defaults to it): with one of these,
# anyone could mint a token for any user.
PUBLISHED_SECRET_KEYS = frozenset(
    {
        DEVELOPMENT_SECRET_KEY,
        "compose-dev-default-INSECURE-change-me-in-.env-0123456789abcdefghij",
        "change-me-to-a-long-random-string-of-at-least-50-characters",
        "build-time-placeholder-secret-key-not-used-at-runtime-0123456789",
        "test-secret-key-that-is-long-enough-for-hs256-0123456789",
        "a-production-secret-key-that-is-long-and-random-0123456789-abcdefghij",
        "a-separate-jwt-signing-key-of-more-than-32-bytes",
        "bench-secret-key-" + "x" * 64,
    }
)
# Words that mark a key as a placeholder someone was meant to replace.
_PLACEHOLDER_WORDS = ("change-me", "changeme", "insecure", "placeholder", "do-not-use", "not-a-secret", "example")


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a whole number, got {raw!r}") from exc


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


def unsafe_key(name: str, key: str, *, min_length: int) -> str | None:
    """Why a signing key must not be used in production, or None when it may."""
    if key in PUBLISHED_SECRET_KEYS or any(word in key.lower() for word in _PLACEHOLDER_WORDS):
        return f"{name} is a published or placeholder value: anyone could sign sessions and tokens with it."
    if len(key) < min_length or len(set(key)) < 5:
        return (
            f"{name} must be at least {min_length} characters of random data "
            '(python -c "import secrets; print(secrets.token_urlsafe(50))").'
        )
    return None


def host_and_port(name: str, item: str) -> tuple[str, int]:
    """`host:port` (or `[v6-address]:port`) as a pair; anything else refuses to start, naming the variable."""
    host, _, port = item.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ImproperlyConfigured(f"{name} holds {item!r}: write host:port, comma-separated.")
    return host, int(port)


def sentinel_location(url: str, master: str) -> str:
    """REDIS_URL with the Sentinel master's name in place of its host and port: django-redis's Sentinel
    factory reads the name from there (the credentials, database and options stay as they are)."""
    parts = urlsplit(url)
    credentials, _, _ = parts.netloc.rpartition("@")
    return urlunsplit((parts.scheme, f"{credentials}@{master}" if credentials else master, parts.path, parts.query, ""))


def database_from_url(url: str, *, name: str = "DATABASE_URL") -> dict:
    """Turn `postgres://user:password@host:port/name?option=value` into a DATABASES entry."""
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql", "pgsql"}:
        raise ImproperlyConfigured(f"{name} must hold postgres:// URLs, got scheme {parts.scheme!r}")
    options: dict[str, object] = dict(parse_qsl(parts.query))
    options.setdefault("connect_timeout", "2")
    # Behind a pooler in transaction mode (PgBouncer's `pool_mode = transaction`)
    # each transaction may run on another server connection, so nothing may
    # outlive a transaction on the server: no cursor kept open across them, no
    # prepared statement unless the pooler keeps track of them.
    transaction_pooling = env_bool("DB_TRANSACTION_POOLING", False)
    # Server-side parameters and prepared statements (psycopg prepares a query
    # after its fifth run on a connection): PostgreSQL then plans the movement's
    # statements once per connection instead of once per request, a sixth of a
    # transfer's time. Off by default behind a transaction pooler: PgBouncer
    # before 1.21 (or with `max_prepared_statements = 0`) would hand one
    # client's prepared statement to another's transaction. Without them,
    # Django's psycopg backend binds parameters on the client and prepares
    # nothing (`prepare_threshold` None).
    if env_bool("DB_PREPARED_STATEMENTS", not transaction_pooling):
        options["server_side_binding"] = True
        options["prepare_threshold"] = 5
    return {
        # Django's backend, with a health check that skips its round trip when it can (wallet_project/postgres).
        "ENGINE": "wallet_project.postgres",
        "NAME": unquote(parts.path.lstrip("/")) or "postgres",
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
        # Persistent connections: a new PostgreSQL connection per request costs
        # more than the whole transfer does inside the database.
        "CONN_MAX_AGE": env_int("DB_CONN_MAX_AGE", 600),
        "CONN_HEALTH_CHECKS": True,
        "ATOMIC_REQUESTS": False,  # the money services own their transactions
        # `.iterator()` outside a transaction declares a cursor `WITH HOLD` and fetches from it in later
        # transactions, which a transaction pooler may send to another server connection.
        "DISABLE_SERVER_SIDE_CURSORS": transaction_pooling,
        "OPTIONS": options,
    }


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY", DEVELOPMENT_SECRET_KEY)
DATABASE_URL = env_str("DATABASE_URL")
REDIS_URL = env_str("REDIS_URL")
DEVELOPMENT_MODE = not DATABASE_URL or not REDIS_URL

if not DEBUG:
    missing = [name for name, value in (("DATABASE_URL", DATABASE_URL), ("REDIS_URL", REDIS_URL)) if not value]
    if missing:
        raise ImproperlyConfigured(
            f"{' and '.join(missing)} must be set when DEBUG is off: the SQLite and in-process "
            "lock fallbacks are for single-process development only."
        )
    # Django's own deploy check asks for 50 characters; HS256 wants at least 32 bytes of key.
    for problem in (
        unsafe_key("SECRET_KEY", SECRET_KEY, min_length=50),
        env_str("JWT_SIGNING_KEY") and unsafe_key("JWT_SIGNING_KEY", env_str("JWT_SIGNING_KEY"), min_length=32),
    ):
        if problem:
            raise ImproperlyConfigured(f"{problem} Refused while DEBUG is off.")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if not DEBUG else "*")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    # Django's admin with the back office's site: the password, then a second factor (mfa/admin_site.py).
    "mfa.apps.BackOfficeAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "accounts",
    "wallets",
    "transactions",
    "events",
    "django_otp",
    "mfa",
    "loyalty",
    "backoffice",
]

MIDDLEWARE = [
    "wallet_project.middleware.RequestIdMiddleware",
    # A user's successful writes keep their reads on the primary for a moment; gone without read replicas.
    "wallet_project.replicas.recent_writes.RecentWritesMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # The admin's middleware, stepped around for /api/ (wallet_project/middleware.py).
    "wallet_project.middleware.SiteSessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "wallet_project.middleware.SiteAuthenticationMiddleware",
    # Which second factor verified the admin session (django-otp), also stepped around for /api/.
    "mfa.middleware.SiteOTPMiddleware",
    "wallet_project.middleware.SiteMessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "wallet_project.urls"
WSGI_APPLICATION = "wallet_project.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # The admin's 403/404 pages and the ReDoc page without external fonts.
        "DIRS": [BASE_DIR / "wallet_project" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

if DATABASE_URL:
    DATABASES = {"default": database_from_url(DATABASE_URL)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": BASE_DIR / "db.sqlite3",
            "ATOMIC_REQUESTS": False,
        }
    }

# Read replicas (wallet_project/replicas): streaming replicas of DATABASE_URL, comma-separated, as the aliases
# replica_1, replica_2, ... Only the reads marked as tolerating a little staleness go to one (history lists, the
# events feed, the admin's changelists, exports); everything else, and everything not marked, reads the primary.
# Without it nothing of the replica machinery runs: no router, no middleware, no marker in Redis.
DATABASE_REPLICA_URLS = env_list("DATABASE_REPLICA_URLS")
DATABASE_REPLICAS: list[str] = []
for _number, _url in enumerate(DATABASE_REPLICA_URLS, start=1):
    _alias = f"replica_{_number}"
    # The test runner makes no database of its own for a replica: it reads the test database.
    DATABASES[_alias] = {**database_from_url(_url, name="DATABASE_REPLICA_URLS"), "TEST": {"MIRROR": "default"}}
    DATABASE_REPLICAS.append(_alias)
if DATABASE_REPLICAS:
    if DEVELOPMENT_MODE:
        raise ImproperlyConfigured(
            "DATABASE_REPLICA_URLS needs DATABASE_URL and REDIS_URL: a user's recent writes are remembered in Redis."
        )
    DATABASE_ROUTERS = ["wallet_project.replicas.router.ReplicaRouter"]
# Seconds after a user's write during which that user reads only the primary (read-your-writes). Keep it above
# REPLICA_MAX_LAG_SECONDS plus the one second between lag checks, so that a replica a user is sent back to
# already holds what they wrote.
REPLICA_STICKY_SECONDS = env_int("REPLICA_STICKY_SECONDS", 5)
if REPLICA_STICKY_SECONDS < 1:
    raise ImproperlyConfigured("REPLICA_STICKY_SECONDS must be at least 1.")
# A replica whose replay is further behind than this (seconds) is not read until it catches up.
try:
    REPLICA_MAX_LAG_SECONDS = float(env_str("REPLICA_MAX_LAG_SECONDS", "3"))
except ValueError:
    raise ImproperlyConfigured("REPLICA_MAX_LAG_SECONDS must be a number of seconds.") from None
if not REPLICA_MAX_LAG_SECONDS > 0:
    raise ImproperlyConfigured("REPLICA_MAX_LAG_SECONDS must be positive.")

# Redis: the per-balance locks (wallets.locks) and DRF's throttles. Timeouts are
# short on purpose: with Redis down a money movement must answer 503 at once,
# not after redis-py's default five seconds and retries.
REDIS_CONNECT_TIMEOUT = float(env_str("REDIS_CONNECT_TIMEOUT", "0.25"))
# A hung Redis (up, never answering) costs one socket timeout per call: a movement
# pays the throttle's and the lock's, and must still answer 503 in under a second.
REDIS_SOCKET_TIMEOUT = float(env_str("REDIS_SOCKET_TIMEOUT", "0.25"))
# Redis Sentinel: with REDIS_SENTINELS (host:port, comma-separated) the locks, the throttles and the cache
# ask the sentinels where the primary named REDIS_SENTINEL_MASTER is, whenever they open a connection, and
# go there (wallet_project/redis_connections.py); REDIS_URL then gives only the credentials and the
# database number, its host and port are not used. While the primary is down and no replica has been
# promoted yet, movements answer 503 at once, as with Redis down.
REDIS_SENTINELS = [host_and_port("REDIS_SENTINELS", item) for item in env_list("REDIS_SENTINELS")]
REDIS_SENTINEL_MASTER = env_str("REDIS_SENTINEL_MASTER", "mymaster")
if REDIS_SENTINELS:
    if not REDIS_URL:
        raise ImproperlyConfigured("REDIS_SENTINELS needs REDIS_URL too: it gives the database number and password.")
    if urlsplit(REDIS_URL).scheme != "redis":
        raise ImproperlyConfigured("With REDIS_SENTINELS, REDIS_URL must be a redis:// URL (no TLS through Sentinel).")
    if not REDIS_SENTINEL_MASTER:
        raise ImproperlyConfigured("REDIS_SENTINEL_MASTER must name the primary the sentinels monitor.")
# The sentinels' own connections: as short and as free of retries as the primary's, so that a sentinel
# that is down costs one connect timeout before the next one is asked.
REDIS_SENTINEL_KWARGS = {
    "socket_connect_timeout": REDIS_CONNECT_TIMEOUT,
    "socket_timeout": REDIS_SOCKET_TIMEOUT,
    "retry": Retry(NoBackoff(), 0),
}
# Seconds a movement waits for the locks of its balances before it answers 429.
LOCK_WAIT_SECONDS = float(env_str("LOCK_WAIT_SECONDS", "5"))
# Seconds after which a lock frees itself if its holder died. Whole seconds
# (python-redis-lock rounds down); must exceed the lock wait.
LOCK_EXPIRE_SECONDS = env_int("LOCK_EXPIRE_SECONDS", 15)
if LOCK_EXPIRE_SECONDS <= LOCK_WAIT_SECONDS:
    raise ImproperlyConfigured("LOCK_EXPIRE_SECONDS must be greater than LOCK_WAIT_SECONDS.")
if LOCK_WAIT_SECONDS <= 0:
    raise ImproperlyConfigured("LOCK_WAIT_SECONDS must be positive.")

# The four movements' plain requests are served without DRF's request and
# response machinery, to the same bytes (transactions/fast_path.py); false
# sends every request through DRF.
MOVEMENTS_FAST_PATH = env_bool("MOVEMENTS_FAST_PATH", True)

# How long an Idempotency-Key and its stored answer are kept.
IDEMPOTENCY_TTL_SECONDS = env_int("IDEMPOTENCY_TTL_SECONDS", 24 * 3600)

# The back office's new-rate confirmation warns loudly when a rate moves by more than this, in percent.
try:
    ADMIN_RATE_WARN_PERCENT = Decimal(env_str("ADMIN_RATE_WARN_PERCENT", "10"))
except InvalidOperation:
    raise ImproperlyConfigured("ADMIN_RATE_WARN_PERCENT must be a number.") from None
if not (ADMIN_RATE_WARN_PERCENT.is_finite() and ADMIN_RATE_WARN_PERCENT > 0):
    raise ImproperlyConfigured("ADMIN_RATE_WARN_PERCENT must be positive.")

# How long the admin's dashboard keeps the figures that add up whole tables (money per currency, the largest
# balances, today's movements), shared by every staff member (backoffice/dashboard.py). 0 reads them every time.
BACKOFFICE_DASHBOARD_CACHE_SECONDS = env_int("BACKOFFICE_DASHBOARD_CACHE_SECONDS", 60)
if BACKOFFICE_DASHBOARD_CACHE_SECONDS < 0:
    raise ImproperlyConfigured("BACKOFFICE_DASHBOARD_CACHE_SECONDS must be 0 or more.")

# Webhooks (events/webhooks). Endpoints must be https and resolve only to public addresses, checked when
# registered and again at every delivery. WEBHOOKS_ALLOW_INSECURE lifts both rules so that a receiver on this
# machine (http://127.0.0.1:…) can be used in development; with DEBUG off it refuses to start, since it would
# let any user make the service call its own private network.
WEBHOOKS_ALLOW_INSECURE = env_bool("WEBHOOKS_ALLOW_INSECURE", False)
if WEBHOOKS_ALLOW_INSECURE and not DEBUG:
    raise ImproperlyConfigured(
        "WEBHOOKS_ALLOW_INSECURE lets webhooks reach private and loopback addresses: development only, "
        "refused while DEBUG is off."
    )
# Seconds a receiver has to answer a delivery (2xx), and to accept its connection.
WEBHOOKS_TIMEOUT_SECONDS = float(env_str("WEBHOOKS_TIMEOUT_SECONDS", "10"))
WEBHOOKS_CONNECT_TIMEOUT_SECONDS = float(env_str("WEBHOOKS_CONNECT_TIMEOUT_SECONDS", "3"))
if not 0 < WEBHOOKS_CONNECT_TIMEOUT_SECONDS <= WEBHOOKS_TIMEOUT_SECONDS:
    raise ImproperlyConfigured(
        "WEBHOOKS_CONNECT_TIMEOUT_SECONDS must be positive and at most WEBHOOKS_TIMEOUT_SECONDS."
    )

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "wallet"),
            "OPTIONS": {
                "SOCKET_CONNECT_TIMEOUT": REDIS_CONNECT_TIMEOUT,
                "SOCKET_TIMEOUT": REDIS_SOCKET_TIMEOUT,
                # Fail fast: no retries with backoff when Redis is down (throttles fail open).
                "CONNECTION_POOL_KWARGS": {"retry_on_timeout": False, "retry": Retry(NoBackoff(), 0)},
            },
        }
    }
    if REDIS_SENTINELS:
        # django-redis's own Sentinel support: writes (and the throttles' counts) go to the primary the
        # sentinels name; its pool asks them again after a connection fails.
        CACHES["default"]["LOCATION"] = sentinel_location(REDIS_URL, REDIS_SENTINEL_MASTER)
        CACHES["default"]["OPTIONS"].update(
            {
                "CLIENT_CLASS": "django_redis.client.SentinelClient",
                "CONNECTION_FACTORY": "django_redis.pool.SentinelConnectionFactory",
                "SENTINELS": REDIS_SENTINELS,
                "SENTINEL_KWARGS": REDIS_SENTINEL_KWARGS,
            }
        )
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    # Django's list and verdicts, read at each check rather than held by every worker (accounts/passwords.py).
    {"NAME": "accounts.passwords.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
# The admin shows times with seconds and their zone (wallet_project/formats/en/formats.py).
FORMAT_MODULE_PATH = ["wallet_project.formats"]

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# Serve the sidecar's Swagger UI files straight from the installed packages,
# so /docs/ works under gunicorn even before `collectstatic` has run.
WHITENOISE_USE_FINDERS = True

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["wallet_project.authentication.StatelessJWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["wallet_project.parsers.DecimalJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "wallet_project.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "wallet_project.schema.WalletAutoSchema",
    "DEFAULT_PAGINATION_CLASS": "wallet_project.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "COERCE_DECIMAL_TO_STRING": True,
    "UNAUTHENTICATED_USER": None,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "DEFAULT_THROTTLE_CLASSES": [
        "wallet_project.throttling.AnonThrottle",
        "wallet_project.throttling.UserThrottle",
    ],
}

# DRF rate syntax: N/second, N/minute, N/hour, N/day.
THROTTLE_ANON_RATE = env_str("THROTTLE_ANON_RATE", "1200/minute")
# 100 requests a second per user, what Stripe allows a live account.
THROTTLE_USER_RATE = env_str("THROTTLE_USER_RATE", "6000/minute")
THROTTLE_LOGIN_RATE = env_str("THROTTLE_LOGIN_RATE", "10/minute")

# Set apart from SECRET_KEY to rotate tokens without touching sessions. HS256
# wants at least 32 bytes (PyJWT warns below that): a shorter key is stretched
# by SHA-256, the same way in every process.
JWT_SIGNING_KEY = env_str("JWT_SIGNING_KEY") or SECRET_KEY
if len(JWT_SIGNING_KEY.encode()) < 32:
    JWT_SIGNING_KEY = hashlib.sha256(JWT_SIGNING_KEY.encode()).hexdigest()
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(seconds=env_int("JWT_ACCESS_LIFETIME_SECONDS", 15 * 60)),
    "REFRESH_TOKEN_LIFETIME": timedelta(seconds=env_int("JWT_REFRESH_LIFETIME_SECONDS", 7 * 24 * 3600)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
    "SIGNING_KEY": JWT_SIGNING_KEY,
    "ALGORITHM": "HS256",
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "user_id",
}

# --- Second factors (mfa/) -----------------------------------------------------------------------

# Fernet keys that encrypt the TOTP secrets at rest, comma-separated: the first encrypts, each one decrypts,
# so a new key goes first and the old one stays until `manage.py rotate_mfa_key` has re-encrypted every
# secret. A dump of the database alone then reveals no secret. Required with DEBUG off; in development a
# key is derived from SECRET_KEY.
MFA_ENCRYPTION_KEYS = env_list("MFA_ENCRYPTION_KEY")
if not MFA_ENCRYPTION_KEYS:
    if not DEBUG:
        raise ImproperlyConfigured(
            "MFA_ENCRYPTION_KEY must be set when DEBUG is off: it encrypts the users' TOTP secrets. Make one with "
            'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
        )
    MFA_ENCRYPTION_KEYS = [
        base64.urlsafe_b64encode(hashlib.sha256(b"wallet mfa development key " + SECRET_KEY.encode()).digest()).decode()
    ]
for _key in MFA_ENCRYPTION_KEYS:
    # What Fernet's constructor checks, without loading cryptography into every web worker (mfa/crypto.py).
    try:
        _valid_key = len(base64.urlsafe_b64decode(_key.encode("ascii"))) == 32
    except (ValueError, UnicodeEncodeError):
        _valid_key = False
    if not _valid_key:
        raise ImproperlyConfigured(
            "MFA_ENCRYPTION_KEY holds a value that is not a Fernet key (32 bytes, URL-safe base64)."
        )
# The name authenticator apps show next to the account.
MFA_TOTP_ISSUER = env_str("MFA_TOTP_ISSUER", "Wallet")

# Step-up: an API movement that takes more than this amount (in MFA_STEP_UP_CURRENCY, converted at the
# current rate) out of its owner's hands needs an access token whose second factor is at most
# MFA_STEP_UP_MAX_AGE seconds old (mfa/step_up.py). Empty: off.
try:
    MFA_STEP_UP_AMOUNT = Decimal(env_str("MFA_STEP_UP_AMOUNT")) if env_str("MFA_STEP_UP_AMOUNT") else None
except InvalidOperation:
    raise ImproperlyConfigured("MFA_STEP_UP_AMOUNT must be an amount, or empty (off).") from None
if MFA_STEP_UP_AMOUNT is not None and not (MFA_STEP_UP_AMOUNT.is_finite() and MFA_STEP_UP_AMOUNT >= 0):
    raise ImproperlyConfigured("MFA_STEP_UP_AMOUNT must be zero or more.")
MFA_STEP_UP_CURRENCY = env_str("MFA_STEP_UP_CURRENCY", "USD").upper()
MFA_STEP_UP_MAX_AGE = env_int("MFA_STEP_UP_MAX_AGE", 600)
if MFA_STEP_UP_MAX_AGE <= 0:
    raise ImproperlyConfigured("MFA_STEP_UP_MAX_AGE must be a positive number of seconds.")

# Staff give a TOTP code after their password to use the admin, and one without a device enrols first.
# Off in development (DEBUG) unless set: staff who enrolled are still asked for their code.
ADMIN_REQUIRE_MFA = env_bool("ADMIN_REQUIRE_MFA", not DEBUG)

SYSTEM_FONTS = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif'
MONOSPACE_FONTS = 'ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace'
SPECTACULAR_SETTINGS = {
    "TITLE": "Wallet API",
    "DESCRIPTION": (
        "Wallets with one balance per currency, and the money movements between them: "
        "deposits, withdrawals, payments, transfers (also across currencies) and refunds. "
        "Amounts are decimal strings. Every error has the shape "
        '`{"error": {"code", "message", "details"}}`.\n\n'
        "Authenticate with `POST /api/v1/auth/token/` (email and password): it answers an `access` token, "
        "sent as `Authorization: Bearer <access>` on every other request, and a `refresh` token for "
        "`POST /api/v1/auth/token/refresh/`. With two-factor authentication on (an authenticator app added with "
        "`POST /api/v1/auth/mfa/totp/`), the login answers an `mfa_token` instead, exchanged with a code for the "
        "tokens at `POST /api/v1/auth/token/mfa/`; large movements may need such a recent second factor (403 "
        "`mfa_required`). Money movements accept an `Idempotency-Key` header; a replayed answer carries "
        "`Idempotent-Replayed: true`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The operations' ids and tags are made from paths under "/" ("api_v1_…"), as when drf-spectacular guessed
    # the prefix from every view's path, its own among them: they are now functions imported at their first
    # request (wallet_project/urls.py), not views it counts, and the API's paths alone would give "/api/v1".
    "SCHEMA_PATH_PREFIX": "/",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # ReDoc in the system's fonts (the page loads none from elsewhere: wallet_project/templates).
    "REDOC_UI_SETTINGS": {
        "theme": {
            "typography": {
                "fontFamily": SYSTEM_FONTS,
                "headings": {"fontFamily": SYSTEM_FONTS},
                "code": {"fontFamily": MONOSPACE_FONTS},
            }
        }
    },
    # The docstrings of our own base classes describe our machinery, not the API.
    "GET_LIB_DOC_EXCLUDES": "wallet_project.schema.lib_doc_excludes",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "wallet_project.schema.add_links",
        "wallet_project.schema.add_known_currencies",
    ],
    "COMPONENT_SPLIT_REQUEST": True,
    # The ledger's entry types, shared by the entries and a statement's totals: one component, under its usual name.
    "ENUM_NAME_OVERRIDES": {"TypeEnum": "transactions.models.TransactionType"},
    # No validator badge: Swagger UI would ask validator.swagger.io about our schema.
    "SWAGGER_UI_SETTINGS": {"persistAuthorization": True, "validatorUrl": None},
    "TAGS": [
        {
            "name": "auth",
            "description": "Registration, JWT access and refresh tokens, logout, and two-factor authentication: "
            "an authenticator app (TOTP), recovery codes, the login's second step.",
        },
        {"name": "wallets", "description": "Wallets, balances, currencies and exchange rates."},
        {"name": "transactions", "description": "Money movements and the history of your ledger entries."},
        {
            "name": "holds",
            "description": "Money reserved now and captured, voided or expired later: `held` and `available` on "
            "each balance.",
        },
        {
            "name": "events",
            "description": "What happened, in order and with no gap: the feed, and the webhooks that push it.",
        },
        {
            "name": "loyalty",
            "description": "Cashback on your payments: what each earned, booked or pending, and your totals.",
        },
        {
            "name": "webhooks",
            "description": "Endpoints where your events are POSTed as they happen, signed (Standard Webhooks), "
            "and their deliveries.",
        },
    ],
}

# Security headers; production sits behind a TLS-terminating proxy.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
# By default TLS ends at the proxy in front of gunicorn, which also redirects
# plain HTTP and sends HSTS; the service itself then serves plain HTTP on the
# private network, and `check --deploy` need not warn about either. Set this
# to false when gunicorn faces the internet itself (and then set
# SECURE_SSL_REDIRECT and SECURE_HSTS_SECONDS).
TLS_TERMINATED_BY_PROXY = env_bool("TLS_TERMINATED_BY_PROXY", True)
SILENCED_SYSTEM_CHECKS = ["security.W004", "security.W008"] if TLS_TERMINATED_BY_PROXY else []
# How many proxies in front of gunicorn append to X-Forwarded-For. The
# throttles take the client's address from that header, this many entries
# from its end (wallet_project.throttling.client_ip); behind a proxy, the
# socket's address is the proxy's, shared by every client. One by default
# behind the TLS proxy; 0 trusts only the socket's address.
NUM_PROXIES = env_int("NUM_PROXIES", 1 if TLS_TERMINATED_BY_PROXY else 0)
if NUM_PROXIES < 0:
    raise ImproperlyConfigured("NUM_PROXIES must be 0 or more.")
REST_FRAMEWORK["NUM_PROXIES"] = NUM_PROXIES

LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "wallet_project.logging.JsonFormatter"}},
    "handlers": {"stdout": {"class": "logging.StreamHandler", "stream": sys.stdout, "formatter": "json"}},
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        # Django's request logger repeats every 4xx as a warning; the access
        # line of our middleware already has them. Crashes still get logged.
        "django.request": {"level": "ERROR"},
        "django.server": {"level": "WARNING"},
        "redis_lock": {"level": "WARNING"},
    },
}
