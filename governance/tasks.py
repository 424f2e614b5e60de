"""Thin Celery tasks of governance."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="governance.tasks.deliver_webhook", autoretry_for=(), ignore_result=True)
def deliver_webhook(endpoint_id: int, payload: dict) -> str:
    from governance.webhooks import webhook_deliver

    return webhook_deliver(endpoint_id, payload)


@shared_task(name="governance.tasks.drift_check")
def drift_check() -> int:
    from governance.policy import drift_check as check

    return len(check())
