"""Request-scoped context (actor, request id, client address) for audit events and logs.

Middleware sets it for every request; tasks set it explicitly with
:func:`audit_context` so events written by a worker name who started the work.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class AuditContext:
    actor_id: int | None = None
    actor: str = "system"
    request_id: str = ""
    client_ip: str = ""


_current: ContextVar[AuditContext] = ContextVar("portal_audit_context", default=AuditContext())  # noqa: B039 (frozen dataclass)


def current() -> AuditContext:
    return _current.get()


def new_request_id() -> str:
    return uuid.uuid4().hex


@contextlib.contextmanager
def audit_context(*, user=None, request_id: str | None = None, client_ip: str = "") -> Iterator[AuditContext]:
    ctx = AuditContext(
        actor_id=getattr(user, "pk", None),
        actor=getattr(user, "username", None) or "system",
        request_id=request_id or new_request_id(),
        client_ip=client_ip,
    )
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)


def set_actor(user) -> None:
    """Update the actor once authentication has happened (DRF authenticates late)."""
    _current.set(replace(current(), actor_id=user.pk, actor=user.username))


class RequestIdLogFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current().request_id or "-"
        return True
