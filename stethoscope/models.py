"""Every mapped class, imported so that Base.metadata knows all tables."""

from .accounts.models import AuthSession, User, UserToken
from .alerts.models import Alert, AlertStay
from .audit.models import AuditEvent
from .db import Base
from .ingest.models import Reading
from .labels.models import TrainingRun
from .learning.models import ModelActivation, ModelVersion
from .registry.models import Badge, Beacon, Gateway, GatewayToken, Room, Site
from .retention.models import ArchivedStay

__all__ = [
    "Alert",
    "AlertStay",
    "ArchivedStay",
    "AuditEvent",
    "AuthSession",
    "Badge",
    "Base",
    "Beacon",
    "Gateway",
    "GatewayToken",
    "ModelActivation",
    "ModelVersion",
    "Reading",
    "Room",
    "Site",
    "TrainingRun",
    "User",
    "UserToken",
]
