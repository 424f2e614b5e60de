"""Checks of the backing services, for /healthz, the banner and the self-test job."""

from __future__ import annotations

import os
import time
from pathlib import Path
from urllib.parse import urlparse

import requests
from django.conf import settings
from django.core.cache import cache
from django.db import connection

OK, DOWN = "ok", "down"


def check_database() -> dict:
    started = time.monotonic()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return {"status": DOWN, "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"status": OK, "latency_ms": round((time.monotonic() - started) * 1000, 1)}


def check_broker() -> dict:
    from kombu import Connection

    url = settings.CELERY_BROKER_URL
    scheme = urlparse(url).scheme
    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    started = time.monotonic()
    try:
        if scheme == "filesystem":
            # kombu's filesystem transport "connects" to anything: check its folder instead.
            folder = Path(options.get("data_folder_in", ""))
            if not folder.is_dir() or not os.access(folder, os.W_OK):
                raise OSError(f"broker folder {folder} is missing or not writable")
        else:
            with Connection(url, transport_options=options, connect_timeout=settings.HEALTH_TIMEOUT_SECONDS) as conn:
                conn.ensure_connection(max_retries=1, timeout=settings.HEALTH_TIMEOUT_SECONDS)
    except Exception as exc:
        return {"status": DOWN, "transport": scheme, "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"status": OK, "transport": scheme, "latency_ms": round((time.monotonic() - started) * 1000, 1)}


def check_mlflow() -> dict:
    uri = settings.MLFLOW_TRACKING_URI
    if not uri.startswith(("http://", "https://")):
        return {"status": OK, "uri": uri, "note": "local file store"}
    started = time.monotonic()
    try:
        response = requests.get(uri.rstrip("/") + "/health", timeout=settings.HEALTH_TIMEOUT_SECONDS)
        response.raise_for_status()
    except requests.RequestException as exc:
        return {"status": DOWN, "uri": uri, "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"status": OK, "uri": uri, "latency_ms": round((time.monotonic() - started) * 1000, 1)}


CHECKS = {"database": check_database, "broker": check_broker, "mlflow": check_mlflow}


def health_report() -> dict:
    checks = {name: fn() for name, fn in CHECKS.items()}
    if checks["database"]["status"] != OK:
        status = "down"
    elif any(c["status"] != OK for c in checks.values()):
        status = "degraded"
    else:
        status = "ok"
    return {"status": status, "checks": checks}


def cached_health_report() -> dict:
    """For the page banner: at most one probe per HEALTH_CACHE_SECONDS."""
    report = cache.get("portal:health")
    if report is None:
        report = health_report()
        cache.set("portal:health", report, settings.HEALTH_CACHE_SECONDS)
    return report
