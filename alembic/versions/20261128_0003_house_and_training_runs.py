"""The house (sites, rooms, beacons; names and places of gateways and badges)
and training runs.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

UTC = sa.DateTime(timezone=True)


def upgrade():
    op.create_table(
        "sites",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sites")),
    )
    op.create_table(
        "rooms",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("site_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("floor", sa.SmallInteger(), nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_rooms_site_id_sites")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rooms")),
    )
    op.create_index(op.f("ix_rooms_site_id"), "rooms", ["site_id"])
    op.create_table(
        "room_adjacency",
        sa.Column("room_id", sa.String(64), nullable=False),
        sa.Column("adjacent_id", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(
            ["room_id"],
            ["rooms.id"],
            name=op.f("fk_room_adjacency_room_id_rooms"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["adjacent_id"],
            ["rooms.id"],
            name=op.f("fk_room_adjacency_adjacent_id_rooms"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "room_id", "adjacent_id", name=op.f("pk_room_adjacency")
        ),
    )
    op.create_table(
        "beacons",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("room_id", sa.String(64), nullable=True),
        sa.Column("label", sa.String(200), nullable=True),
        sa.Column("first_heard", UTC, nullable=True),
        sa.Column("last_heard", UTC, nullable=True),
        sa.ForeignKeyConstraint(
            ["room_id"],
            ["rooms.id"],
            name=op.f("fk_beacons_room_id_rooms"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_beacons")),
    )
    op.create_index(op.f("ix_beacons_room_id"), "beacons", ["room_id"])
    op.create_table(
        "training_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("badge_id", sa.String(64), nullable=False),
        sa.Column("room_id", sa.String(64), nullable=False),
        sa.Column("started_at", UTC, nullable=False),
        sa.Column("ended_at", UTC, nullable=True),
        sa.Column("cancelled_at", UTC, nullable=True),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.CheckConstraint(
            "ended_at IS NULL OR ended_at > started_at",
            name=op.f("ck_training_runs_ended_after_start"),
        ),
        sa.ForeignKeyConstraint(
            ["room_id"],
            ["rooms.id"],
            name=op.f("fk_training_runs_room_id_rooms"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_training_runs")),
    )
    op.create_index(
        "ix_training_runs_badge_id_started_at",
        "training_runs",
        ["badge_id", "started_at"],
    )
    op.create_index("ix_training_runs_room_id", "training_runs", ["room_id"])

    # Admins may describe a gateway or badge before it is ever heard.
    with op.batch_alter_table("gateways") as batch:
        batch.add_column(sa.Column("name", sa.String(200), nullable=True))
        batch.add_column(sa.Column("site_id", sa.String(64), nullable=True))
        batch.alter_column("first_seen", existing_type=UTC, nullable=True)
        batch.alter_column("last_seen", existing_type=UTC, nullable=True)
        batch.create_foreign_key(
            op.f("fk_gateways_site_id_sites"), "sites", ["site_id"], ["id"]
        )
        batch.create_index(op.f("ix_gateways_site_id"), ["site_id"])
    with op.batch_alter_table("badges") as batch:
        batch.add_column(sa.Column("wearer", sa.String(200), nullable=True))
        batch.add_column(sa.Column("site_id", sa.String(64), nullable=True))
        batch.add_column(
            sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch.alter_column("first_seen", existing_type=UTC, nullable=True)
        batch.alter_column("last_seen", existing_type=UTC, nullable=True)
        batch.create_foreign_key(
            op.f("fk_badges_site_id_sites"), "sites", ["site_id"], ["id"]
        )
        batch.create_index(op.f("ix_badges_site_id"), ["site_id"])


def downgrade():
    with op.batch_alter_table("badges") as batch:
        batch.drop_index(op.f("ix_badges_site_id"))
        batch.drop_constraint(op.f("fk_badges_site_id_sites"), type_="foreignkey")
        batch.drop_column("active")
        batch.drop_column("site_id")
        batch.drop_column("wearer")
    with op.batch_alter_table("gateways") as batch:
        batch.drop_index(op.f("ix_gateways_site_id"))
        batch.drop_constraint(op.f("fk_gateways_site_id_sites"), type_="foreignkey")
        batch.drop_column("site_id")
        batch.drop_column("name")
    op.drop_table("training_runs")
    op.drop_table("beacons")
    op.drop_table("room_adjacency")
    op.drop_table("rooms")
    op.drop_table("sites")
