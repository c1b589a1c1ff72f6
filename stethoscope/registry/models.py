"""Gateways and badges as we have seen them.

Rows are created and updated by stethoscope.ingest.activity from aggregated
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
