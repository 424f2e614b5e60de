"""Configuration of third-party libraries: DRF, drf-spectacular, Celery, allauth."""

from __future__ import annotations

from datetime import timedelta

from portal.settings.env import env_bool, env_int, env_list, env_str

# --- Django REST Framework ------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "portal.api.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "portal.api.permissions.TokenScopePermission",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "portal.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "ML Platform Portal API",
    "DESCRIPTION": (
        "REST API of the ML platform portal. Authenticate CI pipelines with "
        "`Authorization: Bearer <token>` (create one with `manage.py create_token` or "
        "in the browser under Tokens)."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": r"/api/v1",
}

# --- Celery ---------------------------------------------------------------------
# The embedded default is kombu's filesystem transport (no Redis needed);
# CELERY_BROKER_URL=redis://… switches to Redis.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_TASK_DEFAULT_QUEUE", "portal")
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_BEAT_SCHEDULE = {
    "reap-stale-jobs": {
        "task": "portal.tasks.reap_jobs",
        "schedule": timedelta(seconds=env_int("JOB_REAPER_EVERY_SECONDS", 30)),
    },
    "catalog-sync-mlflow": {
        "task": "catalog.tasks.schedule_mlflow_sync",
        "schedule": timedelta(seconds=env_int("CATALOG_SYNC_EVERY_SECONDS", 300)),
    },
    "catalog-refresh-locations": {
        "task": "catalog.tasks.refresh_locations",
        "schedule": timedelta(seconds=env_int("CATALOG_LOCATIONS_EVERY_SECONDS", 900)),
    },
    "audit-checkpoint": {
        "task": "portal.tasks.audit_checkpoint",
        "schedule": timedelta(seconds=env_int("AUDIT_CHECKPOINT_EVERY_SECONDS", 60)),
    },
}

# --- django-allauth -------------------------------------------------------------
ACCOUNT_LOGIN_METHODS = {"username", "email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "username*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_LOGOUT_ON_GET = False
ACCOUNT_SESSION_REMEMBER = None
ACCOUNT_ADAPTER = "portal.auth_adapters.AccountAdapter"
SOCIALACCOUNT_ADAPTER = "portal.auth_adapters.SocialAccountAdapter"
PORTAL_ALLOW_SIGNUP = env_bool("PORTAL_ALLOW_SIGNUP", False)
# allauth's defaults, written out: failed logins are limited per IP and per
# account; the limits live in the cache.
ACCOUNT_RATE_LIMITS = {
    "login_failed": env_str("LOGIN_RATE_LIMIT", "10/m/ip,5/5m/key"),
    "login": "30/m/ip",
}
SOCIALACCOUNT_EMAIL_AUTHENTICATION = False
SOCIALACCOUNT_LOGIN_ON_GET = False
SOCIALACCOUNT_ONLY = False

# Single sign-on through OpenID Connect, configured from the environment.
OIDC_SERVER_URL = env_str("OIDC_SERVER_URL", "")
OIDC_GROUPS_CLAIM = env_str("OIDC_GROUPS_CLAIM", "groups")
# "idp-group=team:<slug>:<member|maintainer>" or "idp-group=role:<platform role>", comma-separated.
OIDC_GROUP_MAP = env_list("OIDC_GROUP_MAP")
OIDC_SYNC_REMOVES = env_bool("OIDC_SYNC_REMOVES", True)
SOCIALACCOUNT_PROVIDERS = {}
if OIDC_SERVER_URL:
    SOCIALACCOUNT_PROVIDERS["openid_connect"] = {
        "OAUTH_PKCE_ENABLED": True,
        "APPS": [
            {
                "provider_id": env_str("OIDC_PROVIDER_ID", "sso"),
                "name": env_str("OIDC_PROVIDER_NAME", "Single sign-on"),
                "client_id": env_str("OIDC_CLIENT_ID"),
                "secret": env_str("OIDC_CLIENT_SECRET"),
                "settings": {
                    "server_url": OIDC_SERVER_URL,
                    "scope": env_list("OIDC_SCOPES", ["openid", "profile", "email", "groups"]),
                },
            }
        ],
    }
