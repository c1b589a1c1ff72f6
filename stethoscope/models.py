"""Every mapped class, imported so that Base.metadata knows all tables."""

from .accounts.models import AuthSession, User
from .audit.models import AuditEvent
from .db import Base
from .ingest.models import Reading
from .registry.models import Badge, Gateway, GatewayToken

__all__ = [
    "AuditEvent",
    "AuthSession",
    "Badge",
    "Base",
    "Gateway",
    "GatewayToken",
    "Reading",
    "User",
]
