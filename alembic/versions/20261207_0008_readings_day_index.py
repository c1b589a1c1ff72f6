"""Readings: a badge-day read from an index alone (history, stays).

Two partial indexes that together hold every reading: the covering one
(badge, time, id and beacons) for beacon documents that fit a PostgreSQL
index entry, and a plain one for the few larger (``DAY_COVERED`` in
stethoscope/ingest/models.py).

On PostgreSQL they are built CONCURRENTLY, outside a transaction: the
table keeps taking inserts while they build (minutes on a large
database). A run cut short keeps the indexes it finished and leaves the one
it was building invalid; running the migration again keeps the first,
drops the invalid one and builds it anew. SQLite holds its one
writer while it builds either way.

Revision ID: 0008_readings_day_index
Revises: 0007_archived_stays
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_readings_day_index"
down_revision = "0007_archived_stays"
branch_labels = None
depends_on = None

# As in the model, written out: a migration never imports the models.
COVERED = sa.text("length(CAST(beacons AS TEXT)) <= 1200")
UNCOVERED = sa.text("length(CAST(beacons AS TEXT)) > 1200")


# An index-only scan reads the table for every row of a page not yet
# marked all-visible by a vacuum. Autovacuum visits an insert-only table
# after 20 % of it is new by default: 2 M readings of a 10 M table, half a
# day of a large house. After 1 % (and the first 1,000): 100,000, 42
# minutes of 200 badges.
INSERT_VACUUM = "autovacuum_vacuum_insert_scale_factor"


INDEXES = {
    "ix_readings_day_covered": (["badge_id", "observed_at", "id", "beacons"], COVERED),
    "ix_readings_day_uncovered": (["badge_id", "observed_at"], UNCOVERED),
}


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        for name, (columns, where) in INDEXES.items():
            op.create_index(name, "readings", columns, sqlite_where=where)
        return
    op.execute(f"ALTER TABLE readings SET ({INSERT_VACUUM} = 0.01)")
    # Commits what came before: CREATE INDEX CONCURRENTLY refuses to run
    # in a transaction.
    with op.get_context().autocommit_block():
        for name, (columns, where) in INDEXES.items():
            if _invalid(name):
                op.execute(sa.text(f"DROP INDEX CONCURRENTLY {name}"))
            op.create_index(
                name,
                "readings",
                columns,
                postgresql_where=where,
                postgresql_concurrently=True,
                if_not_exists=True,
            )


def _invalid(name: str) -> bool:
    """Whether an earlier build of index ``name`` was cut short."""
    return bool(
        op.get_bind().scalar(
            sa.text(
                "SELECT NOT indisvalid FROM pg_index"
                " JOIN pg_class ON pg_class.oid = pg_index.indexrelid"
                " WHERE pg_class.relname = :name"
            ),
            {"name": name},
        )
    )


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE readings RESET ({INSERT_VACUUM})")
    op.drop_index("ix_readings_day_uncovered", table_name="readings")
    op.drop_index("ix_readings_day_covered", table_name="readings")
