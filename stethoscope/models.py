"""Every mapped class, imported so that Base.metadata knows all tables."""

from .db import Base
from .ingest.models import Reading
from .registry.models import Badge, Gateway

__all__ = ["Base", "Badge", "Gateway", "Reading"]
