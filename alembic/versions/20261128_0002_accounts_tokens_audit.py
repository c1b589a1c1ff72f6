"""Staff accounts and sessions, gateway tokens, the audit log.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UTC = sa.DateTime(timezone=True)

# The audit log is append-only: the database itself refuses to change it.
SQLITE_GUARDS = [
    f"""
    CREATE TRIGGER audit_events_no_{verb.lower()} BEFORE {verb} ON audit_events
    BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END
    """
    for verb in ("UPDATE", "DELETE")
]
POSTGRES_GUARD = [
    """
    CREATE FUNCTION audit_events_append_only() RETURNS trigger AS $$
    BEGIN RAISE EXCEPTION 'audit_events is append-only'; END
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE
    ON audit_events FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()
    """,
]


def upgrade():
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("password_hash", sa.String(256), nullable=False),
        sa.Column(
            "role",
            sa.Enum(
                "viewer",
                "staff",
                "admin",
                name="role",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("password_changed_at", UTC, nullable=False),
        sa.Column("last_login_at", UTC, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "auth_sessions",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("last_seen_at", UTC, nullable=False),
        sa.Column("ip", sa.String(64), nullable=True),
        sa.Column("user_agent", sa.String(200), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_auth_sessions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auth_sessions")),
    )
    op.create_table(
        "gateway_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("gateway_id", sa.String(64), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("revoked_at", UTC, nullable=True),
        sa.Column("revoked_by", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gateway_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_gateway_tokens_token_hash")),
    )
    op.create_index(
        op.f("ix_gateway_tokens_gateway_id"), "gateway_tokens", ["gateway_id"]
    )
    op.create_table(
        "audit_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("at", UTC, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("actor_type", sa.String(16), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(200), nullable=True),
        sa.Column("ip", sa.String(64), nullable=True),
        sa.Column(
            "details",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            nullable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    op.create_index("ix_audit_events_at", "audit_events", ["at"])
    op.create_index("ix_audit_events_action_at", "audit_events", ["action", "at"])
    postgres = op.get_bind().dialect.name == "postgresql"
    for statement in POSTGRES_GUARD if postgres else SQLITE_GUARDS:
        op.execute(statement)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_events_append_only ON audit_events")
        op.execute("DROP FUNCTION audit_events_append_only()")
    op.drop_table("audit_events")
    op.drop_table("gateway_tokens")
    op.drop_table("auth_sessions")
    op.drop_table("users")
