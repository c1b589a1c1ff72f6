"""Readings, and gateways and badges as seen.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

UTC = sa.DateTime(timezone=True)


def _seen_table(name: str, source_column: str) -> None:
    op.create_table(
        name,
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("first_seen", UTC, nullable=False),
        sa.Column("last_seen", UTC, nullable=False),
        sa.Column(source_column, sa.String(64), nullable=True),
        sa.Column("posts", sa.BigInteger(), nullable=False),
        sa.Column("duplicates", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{name}")),
    )


def upgrade():
    _seen_table("badges", "last_gateway_id")
    _seen_table("gateways", "last_ip")
    op.create_table(
        "readings",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("badge_id", sa.String(64), nullable=False),
        sa.Column("gateway_id", sa.String(64), nullable=False),
        sa.Column("received_at", UTC, nullable=False),
        sa.Column("observed_at", UTC, nullable=False),
        sa.Column("badge_strength", sa.SmallInteger(), nullable=True),
        sa.Column(
            "beacons",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            nullable=False,
        ),
        sa.Column("fingerprint", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_readings")),
    )
    op.create_index("ix_readings_badge_id_id", "readings", ["badge_id", "id"])
    op.create_index(
        "ix_readings_badge_id_observed_at", "readings", ["badge_id", "observed_at"]
    )
    op.create_index("ix_readings_observed_at", "readings", ["observed_at"])


def downgrade():
    op.drop_table("readings")
    op.drop_table("gateways")
    op.drop_table("badges")
