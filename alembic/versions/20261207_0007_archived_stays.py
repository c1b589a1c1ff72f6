"""Archived stays: a pruned badge-day's stays, kept with their model version.

Revision ID: 0007_archived_stays
Revises: 0006_alerts
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_archived_stays"
down_revision = "0006_alerts"
branch_labels = None
depends_on = None

UTC = sa.DateTime(timezone=True)


def upgrade():
    op.create_table(
        "archived_stays",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("badge_id", sa.String(64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("site_id", sa.String(64), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("room_id", sa.String(64), nullable=False),
        sa.Column("room_name", sa.String(200), nullable=False),
        sa.Column("from_at", UTC, nullable=False),
        sa.Column("to_at", UTC, nullable=False),
        sa.Column("readings", sa.Integer(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("model_version_id", sa.Integer(), nullable=False),
        sa.Column("archived_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["sites.id"],
            name=op.f("fk_archived_stays_site_id_sites"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_versions.id"],
            name=op.f("fk_archived_stays_model_version_id_model_versions"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_archived_stays")),
    )
    op.create_index(
        "ix_archived_stays_badge_id_day_from_at",
        "archived_stays",
        ["badge_id", "day", "from_at"],
    )


def downgrade():
    op.drop_table("archived_stays")
