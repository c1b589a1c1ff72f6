"""The house: sites, rooms, beacons, gateways and badges.

Ids are chosen by admins (or by the devices themselves: beacon, gateway and
badge ids are what readings carry), up to 64 printable characters; room ids
may be UUIDs from an external system. Readings refer to badges, gateways and
beacons by id without foreign keys: ingest must never refuse a reading
because the registry does not know a device yet. Devices seen in readings but
not yet placed are listed for an admin to place.

Traffic columns (first/last seen, posts, duplicates, last IP or gateway,
first/last heard) are written by stethoscope.registry.activity from
aggregated counts, never once per POST; the descriptive columns by admins.
"""

import datetime

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    SmallInteger,
    String,
    Table,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..db import Base, utcnow

room_adjacency = Table(
    "room_adjacency",
    Base.metadata,
    Column("room_id", ForeignKey("rooms.id", ondelete="CASCADE"), primary_key=True),
    Column("adjacent_id", ForeignKey("rooms.id", ondelete="CASCADE"), primary_key=True),
)


class Site(Base):
    """A house. Its IANA timezone is used for display and for "a day"."""

    __tablename__ = "sites"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime.datetime] = mapped_column(default=utcnow)

    rooms: Mapped[list["Room"]] = relationship(back_populates="site")


class Room(Base):
    __tablename__ = "rooms"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    floor: Mapped[int | None] = mapped_column(SmallInteger)
    # A resident here longer than this is an alert (stethoscope.alerts).
    max_stay_minutes: Mapped[int | None]
    created_at: Mapped[datetime.datetime] = mapped_column(default=utcnow)

    site: Mapped[Site] = relationship(back_populates="rooms")
    # Stored both ways round (a is next to b and b to a); see RegistryService.
    adjacent: Mapped[list["Room"]] = relationship(
        secondary=room_adjacency,
        primaryjoin=lambda: Room.id == room_adjacency.c.room_id,
        secondaryjoin=lambda: Room.id == room_adjacency.c.adjacent_id,
        order_by=lambda: Room.id,
    )


class Beacon(Base):
    __tablename__ = "beacons"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    room_id: Mapped[str | None] = mapped_column(
        ForeignKey("rooms.id", ondelete="SET NULL"), index=True
    )
    label: Mapped[str | None] = mapped_column(String(200))
    first_heard: Mapped[datetime.datetime | None]
    last_heard: Mapped[datetime.datetime | None]

    room: Mapped[Room | None] = relationship()


class Traffic:
    """A device's traffic: when it was first and last seen, its posts and
    duplicates (written by stethoscope.registry.activity)."""

    first_seen: Mapped[datetime.datetime | None]
    last_seen: Mapped[datetime.datetime | None]
    posts: Mapped[int] = mapped_column(BigInteger, default=0)
    duplicates: Mapped[int] = mapped_column(BigInteger, default=0)


class Gateway(Traffic, Base):
    __tablename__ = "gateways"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    site_id: Mapped[str | None] = mapped_column(ForeignKey("sites.id"), index=True)
    last_ip: Mapped[str | None] = mapped_column(String(64))


class Badge(Traffic, Base):
    __tablename__ = "badges"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Who wears it, as staff know them (e.g. "Room 4, Mrs B."): sensitive.
    wearer: Mapped[str | None] = mapped_column(String(200))
    site_id: Mapped[str | None] = mapped_column(ForeignKey("sites.id"), index=True)
    # The migration that added it gave existing badges TRUE on the server;
    # the model says so too, so that alembic finds nothing to change.
    active: Mapped[bool] = mapped_column(default=True, server_default=true())
    last_gateway_id: Mapped[str | None] = mapped_column(String(64))


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
