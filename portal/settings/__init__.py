"""Portal settings, read from the environment.

Embedded defaults (SQLite, a filesystem Celery broker, a local MLflow) give a
working demo with no configuration. ``PORTAL_MODE=production`` refuses to
start without a real secret key and turns on the secure defaults that
``manage.py check --deploy`` asks for.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from portal.settings.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(env_str("PORTAL_VAR_DIR", str(BASE_DIR / "var")))

MODE = env_str("PORTAL_MODE", "development")
if MODE not in {"development", "production"}:
    raise ImproperlyConfigured("PORTAL_MODE must be 'development' or 'production'.")
PRODUCTION = MODE == "production"

_DEV_SECRET = "insecure-development-key-change-me"
SECRET_KEY = env_str("SECRET_KEY", "" if PRODUCTION else _DEV_SECRET)
if PRODUCTION and (not SECRET_KEY or SECRET_KEY == _DEV_SECRET or len(SECRET_KEY) < 50):
    raise ImproperlyConfigured(
        "PORTAL_MODE=production needs SECRET_KEY (or SECRET_KEY_FILE) of at least 50 characters."
    )

DEBUG = env_bool("DEBUG", default=not PRODUCTION)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [] if PRODUCTION else ["127.0.0.1", "localhost", "[::1]"])
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("PORTAL_MODE=production needs ALLOWED_HOSTS (the portal's host names).")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
SITE_URL = env_str("SITE_URL", f"http://127.0.0.1:{env_int('PORTAL_PORT', 8000)}")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "django_htmx",
    "portal",
    "catalog",
    "scaffolder",
    "governance",
    "dashboards",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "portal.middleware.RequestContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

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
                "django.template.context_processors.csp",
                "portal.context_processors.portal",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------
_default_db = f"sqlite:///{VAR_DIR / 'portal.sqlite3'}"
# Connections are kept across requests (per thread): opening one costs about a millisecond,
# a quarter of a search request, on SQLite as on PostgreSQL.
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", _default_db), conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60), conn_health_checks=True
    )
}
_db = DATABASES["default"]
# Tests get their own database name, so two runs on one machine never collide.
_test_suffix = env_str("PORTAL_TEST_DB_SUFFIX", f"{os.getpid()}_{uuid.uuid4().hex[:6]}")
if _db["ENGINE"] == "django.db.backends.sqlite3":
    _db["OPTIONS"] = {
        # IMMEDIATE takes the write lock at BEGIN, so the audit chain's
        # read-then-append never races another writer.
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=20000;",
    }
    # A file, not :memory:, so a real Celery worker process can see the test data.
    _db["TEST"] = {"NAME": str(Path(tempfile.gettempdir()) / f"portal_test_{_test_suffix}.sqlite3")}
else:
    _db["TEST"] = {"NAME": f"test_portal_{_test_suffix}"}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "portal",
    }
}
if env_str("CACHE_URL", ""):
    CACHES["default"] = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": env_str("CACHE_URL"),
    }

# --- Auth -------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"

# --- I18N / static ------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = not PRODUCTION
if not PRODUCTION:
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns when it is missing

# --- Security -----------------------------------------------------------------
from django.utils.csp import CSP  # noqa: E402

SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF, CSP.UNSAFE_INLINE],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "font-src": [CSP.SELF, "data:"],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF] + env_list("CSP_FORM_ACTION_EXTRA"),
    "base-uri": [CSP.SELF],
    "object-src": [CSP.NONE],
}
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if PRODUCTION:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Portal -------------------------------------------------------------------
MLFLOW_TRACKING_URI = env_str("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{env_int('MLFLOW_PORT', 5000)}")
# HMAC secret MLflow signs its model-registry webhooks with; empty disables the endpoint.
MLFLOW_WEBHOOK_SECRET = env_str("MLFLOW_WEBHOOK_SECRET", "" if PRODUCTION else "demo-webhook-secret")
# Descriptor locations (git repositories of mlplatform.yaml / model.yaml files)
CATALOG_ALLOW_FILE_LOCATIONS = env_bool("CATALOG_ALLOW_FILE_LOCATIONS", not PRODUCTION)
CATALOG_ALLOW_PRIVATE_HOSTS = env_bool("CATALOG_ALLOW_PRIVATE_HOSTS", False)
CATALOG_ALLOW_SSH_LOCATIONS = env_bool("CATALOG_ALLOW_SSH_LOCATIONS", False)
CATALOG_ALLOW_HTTP_LOCATIONS = env_bool("CATALOG_ALLOW_HTTP_LOCATIONS", False)
CATALOG_LOCATION_CLONE_TIMEOUT_SECONDS = env_int("CATALOG_LOCATION_CLONE_TIMEOUT_SECONDS", 60)
CATALOG_LOCATION_MAX_FILES = env_int("CATALOG_LOCATION_MAX_FILES", 200)
CATALOG_DESCRIPTOR_MAX_BYTES = env_int("CATALOG_DESCRIPTOR_MAX_BYTES", 262144)
CATALOG_DESCRIPTOR_MAX_ALIASES = env_int("CATALOG_DESCRIPTOR_MAX_ALIASES", 100)
CATALOG_DESCRIPTOR_MAX_NODES = env_int("CATALOG_DESCRIPTOR_MAX_NODES", 20000)
CATALOG_GIT_BINARY = env_str("CATALOG_GIT_BINARY", "git")
# Scaffolder (docs/scaffolder.md): golden-path templates rendered in an isolated process, pushed to a git server.
GIT_PROVIDER = env_str("GIT_PROVIDER", "embedded")
GIT_REPOS_DIR = Path(env_str("GIT_REPOS_DIR", str(VAR_DIR / "git")))
# Base URL users clone from (and the portal pushes to); the embedded server answers under /git/.
GIT_SERVER_URL = env_str("GIT_SERVER_URL", SITE_URL.rstrip("/") + "/git").rstrip("/")
GIT_MAX_PUSH_MB = env_int("GIT_MAX_PUSH_MB", 200)
GIT_TIMEOUT_SECONDS = env_int("GIT_TIMEOUT_SECONDS", 60)
SCAFFOLDER_WORK_DIR = Path(env_str("SCAFFOLDER_WORK_DIR", str(VAR_DIR / "scaffolder")))
SCAFFOLDER_SANDBOX = env_str("SCAFFOLDER_SANDBOX", "auto")
if SCAFFOLDER_SANDBOX not in {"auto", "namespaces", "none"}:
    raise ImproperlyConfigured("SCAFFOLDER_SANDBOX must be 'auto', 'namespaces' or 'none'.")
SCAFFOLDER_ALLOW_UNISOLATED = env_bool("SCAFFOLDER_ALLOW_UNISOLATED", False)
SCAFFOLDER_SANDBOX_UID = env_int("SCAFFOLDER_SANDBOX_UID", 65534)
SCAFFOLDER_SANDBOX_HIDE = env_list("SCAFFOLDER_SANDBOX_HIDE")
SCAFFOLDER_RENDER_TIMEOUT_SECONDS = env_int("SCAFFOLDER_RENDER_TIMEOUT_SECONDS", 60)
SCAFFOLDER_RENDER_CPU_SECONDS = env_int("SCAFFOLDER_RENDER_CPU_SECONDS", 60)
SCAFFOLDER_RENDER_MEMORY_MB = env_int("SCAFFOLDER_RENDER_MEMORY_MB", 1024)
SCAFFOLDER_RENDER_MAX_FILE_MB = env_int("SCAFFOLDER_RENDER_MAX_FILE_MB", 20)
SCAFFOLDER_RENDER_MAX_FILES = env_int("SCAFFOLDER_RENDER_MAX_FILES", 5000)
SCAFFOLDER_RENDER_MAX_TOTAL_MB = env_int("SCAFFOLDER_RENDER_MAX_TOTAL_MB", 100)
AUDIT_SIGNING_KEY_FILE = Path(env_str("AUDIT_SIGNING_KEY_FILE", str(VAR_DIR / "audit-signing-key.pem")))
AUDIT_CHECKPOINT_EVERY_SECONDS = env_int("AUDIT_CHECKPOINT_EVERY_SECONDS", 60)
JOB_HEARTBEAT_SECONDS = env_int("JOB_HEARTBEAT_SECONDS", 5)
JOB_STALE_AFTER_SECONDS = env_int("JOB_STALE_AFTER_SECONDS", 60)
JOB_RETRY_SECONDS = env_int("JOB_RETRY_SECONDS", 15)  # first retry of a transient failure; doubles each time

# --- Governance -------------------------------------------------------------
# The environment manifest repository the apply job commits to (GitOps): a git URL or a local
# path; a local path that does not exist yet is created as a bare repository.
GOVERNANCE_MANIFEST_REPO = env_str("GOVERNANCE_MANIFEST_REPO", str(VAR_DIR / "git" / "environments.git"))
GOVERNANCE_APPLY_ATTEMPTS = env_int("GOVERNANCE_APPLY_ATTEMPTS", 5)
# Outgoing webhooks to loopback, link-local, private or metadata addresses are refused unless this is on.
GOVERNANCE_WEBHOOK_ALLOW_PRIVATE = env_bool("GOVERNANCE_WEBHOOK_ALLOW_PRIVATE", False)

# --- E-mail (notifications) -------------------------------------------------
# Django 6.1's MAILERS. Outside production, mail is written to files under VAR_DIR/mail (one per message)
# unless EMAIL_BACKEND says otherwise; in production the SMTP settings below apply.
_smtp = {
    "host": env_str("EMAIL_HOST", "localhost"),
    "port": env_int("EMAIL_PORT", 25),
    "username": env_str("EMAIL_HOST_USER", ""),
    "password": env_str("EMAIL_HOST_PASSWORD", ""),
    "use_tls": env_bool("EMAIL_USE_TLS", False),
}
_mail_backend = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend" if PRODUCTION else "django.core.mail.backends.filebased.EmailBackend",
)
_mail_options: dict = {}
if _mail_backend.endswith(".smtp.EmailBackend"):
    _mail_options = _smtp
elif _mail_backend.endswith(".filebased.EmailBackend"):
    _mail_options = {"file_path": env_str("EMAIL_FILE_PATH", str(VAR_DIR / "mail"))}
MAILERS = {"default": {"BACKEND": _mail_backend, "OPTIONS": _mail_options}}
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "ML Platform Portal <portal@localhost>")
HEALTH_TIMEOUT_SECONDS = float(env_str("HEALTH_TIMEOUT_SECONDS", "1.5"))
HEALTH_CACHE_SECONDS = env_int("HEALTH_CACHE_SECONDS", 15)
DEMO_PASSWORD = env_str("DEMO_PASSWORD", "demo")
API_TOKEN_DEFAULT_DAYS = env_int("API_TOKEN_DEFAULT_DAYS", 90)

from portal.settings.thirdparty import *  # noqa: E402,F403

if CELERY_BROKER_URL.startswith("filesystem"):  # noqa: F405
    _broker_dir = Path(env_str("CELERY_FILESYSTEM_DIR", str(VAR_DIR / "celery-broker")))
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
        # The worker lists the folder this often (kombu's default is 1 s): jobs start within ~0.1 s.
        "polling_interval": float(env_str("CELERY_FILESYSTEM_POLL_SECONDS", "0.1")),
    }

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "filters": {"request_id": {"()": "portal.context.RequestIdLogFilter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["request_id"]},
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
