"""Recording and reading the audit log."""

import functools
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db import UNSAFE_METHODS
from ..singletons import DATABASE
from .models import AuditEvent

# Who runs a console script, in its request's environ
# (stethoscope.scripts._console): the app's services record as them.
CONSOLE_ACTOR = "stethoscope.console_actor"


def no_audit(action: str, *, target: str | None = None, details=None) -> None:
    """The audit callable of a service used where nobody acts (the simulator's
    set-up, tests): records nothing."""


class AuditService:
    """Appends audit events in the caller's transaction, and lists them."""

    def __init__(self, session: Session):
        self.session = session

    def record(
        self,
        action: str,
        *,
        actor: str,
        actor_type: str,
        target: str | None = None,
        ip: str | None = None,
        details: dict | None = None,
    ) -> AuditEvent:
        """Append one event; it commits or aborts with the change it records."""
        event = AuditEvent(
            action=action,
            actor=actor[:64],
            actor_type=actor_type,
            target=target[:200] if target else None,
            ip=ip,
            details=details,
        )
        self.session.add(event)
        self.session.flush()
        return event

    def page(
        self,
        *,
        before: int | None = None,
        limit: int = 100,
        action: str | None = None,
        actor: str | None = None,
    ) -> list[AuditEvent]:
        """Newest first; ``before`` is the id to continue below."""
        query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
        if before is not None:
            query = query.where(AuditEvent.id < before)
        if action:
            query = query.where(AuditEvent.action.startswith(action, autoescape=True))
        if actor:
            query = query.where(AuditEvent.actor == actor)
        return list(self.session.scalars(query))

    def actions(self) -> list[str]:
        return list(
            self.session.scalars(
                select(AuditEvent.action).distinct().order_by(AuditEvent.action)
            )
        )


def record(
    request,
    action: str,
    *,
    target: str | None = None,
    details: dict | None = None,
    actor: str | None = None,
    actor_type: str | None = None,
):
    """Record ``action`` by whoever made ``request``, from its address; a
    console script's request by the console user, from no address."""
    console = request.environ.get(CONSOLE_ACTOR)
    identity = None if console is not None else request.identity
    if actor is None:
        actor = console or (identity.actor if identity is not None else "-")
    if actor_type is None:
        if console is not None:
            actor_type = "console"
        elif identity is None:
            actor_type = "anonymous"
        else:
            actor_type = "gateway" if hasattr(identity, "gateway_id") else "user"
    event = {
        "actor": actor,
        "actor_type": actor_type,
        "target": target,
        "ip": None if console is not None else request.client_ip,
        "details": details,
    }
    if request.method in UNSAFE_METHODS:
        # A change: the event commits or aborts with it.
        return request.find_service(AuditService).record(action, **event)
    # A read (who looked at whose history): the request's transaction is a
    # read transaction, which must not write (on SQLite it cannot become a
    # write once another writer has committed: "database is locked"). The
    # event commits in a short transaction of its own, before the answer.
    database = request.registry[DATABASE]
    with database.session(write=True) as session, session.begin():
        return AuditService(session).record(action, **event)


def audited(service: Callable[..., Any], *singletons: str) -> Callable:
    """The service factory (pyramid_services) of a service that changes
    what the audit log records: ``service(request.db, *the registry's
    singletons named, audit=...)``, each change recorded (``record``) as
    made by whoever made the request."""

    def factory(context, request):
        return service(
            request.db,
            *(request.registry[name] for name in singletons),
            audit=functools.partial(record, request),
        )

    return factory
