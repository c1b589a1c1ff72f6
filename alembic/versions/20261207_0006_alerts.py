"""Alerts: the alerts table, the stays it watches, rooms' max_stay_minutes.

Revision ID: 0006_alerts
Revises: 0005_user_tokens
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006_alerts"
down_revision = "0005_user_tokens"
branch_labels = None
depends_on = None

UTC = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade():
    with op.batch_alter_table("rooms") as batch:
        batch.add_column(sa.Column("max_stay_minutes", sa.Integer(), nullable=True))
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("opened_at", UTC, nullable=False),
        sa.Column("cleared_at", UTC, nullable=True),
        sa.Column("last_checked_at", UTC, nullable=False),
        sa.Column("details", JSON, nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["sites.id"],
            name=op.f("fk_alerts_site_id_sites"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    op.create_index("ix_alerts_site_id_opened_at", "alerts", ["site_id", "opened_at"])
    # At most one open alert per (site, kind, subject).
    op.create_index(
        "uq_alerts_open",
        "alerts",
        ["site_id", "kind", "subject"],
        unique=True,
        sqlite_where=sa.text("cleared_at IS NULL"),
        postgresql_where=sa.text("cleared_at IS NULL"),
    )
    op.create_table(
        "alert_stays",
        sa.Column("badge_id", sa.String(64), nullable=False),
        sa.Column("site_id", sa.String(64), nullable=False),
        sa.Column("room_id", sa.String(64), nullable=False),
        sa.Column("since", UTC, nullable=False),
        sa.Column("checked_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["sites.id"],
            name=op.f("fk_alert_stays_site_id_sites"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("badge_id", name=op.f("pk_alert_stays")),
    )


def downgrade():
    op.drop_table("alert_stays")
    op.drop_table("alerts")
    with op.batch_alter_table("rooms") as batch:
        batch.drop_column("max_stay_minutes")
