"""Gateways and badges as we have seen them.

Rows are created and updated by stethoscope.registry.activity from aggregated
counts, never once per POST. Later features add names, sites and wearers.
"""

import datetime

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base


class Gateway(Base):
    __tablename__ = "gateways"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    first_seen: Mapped[datetime.datetime]
    last_seen: Mapped[datetime.datetime]
    last_ip: Mapped[str | None] = mapped_column(String(64))
    posts: Mapped[int] = mapped_column(BigInteger, default=0)
    duplicates: Mapped[int] = mapped_column(BigInteger, default=0)


class Badge(Base):
    __tablename__ = "badges"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    first_seen: Mapped[datetime.datetime]
    last_seen: Mapped[datetime.datetime]
    last_gateway_id: Mapped[str | None] = mapped_column(String(64))
    posts: Mapped[int] = mapped_column(BigInteger, default=0)
    duplicates: Mapped[int] = mapped_column(BigInteger, default=0)


class GatewayToken(Base):
    """A bearer token a gateway posts with. Only its sha256 is stored.

    Several tokens of one gateway may be live at once, so that a rotation
    lets the old token work until the new one is installed and the old one
    revoked.
    """

    __tablename__ = "gateway_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    gateway_id: Mapped[str] = mapped_column(String(64), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The first characters of the token, to tell tokens apart in lists.
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime.datetime]
    created_by: Mapped[str] = mapped_column(String(64))
    revoked_at: Mapped[datetime.datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(String(64))

    def as_json(self) -> dict:
        return {
            "id": self.id,
            "gateway_id": self.gateway_id,
            "prefix": self.prefix,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "revoked_by": self.revoked_by,
        }
