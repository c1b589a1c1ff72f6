"""Model versions and their activations: which trained model locates a site.

The artifact (the estimator and its manifest) lives in a write-once
directory of the model store; a ``model_versions`` row is inserted only
after that directory is complete, so a row always names a whole artifact.
Which version is active is the newest ``model_activations`` row of the site:
activations are appended, never updated, so rolling back is activating the
version that was active before, and the models page can show the history.
"""

import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..db import Base, JSONDocument, utcnow


class ModelVersion(Base):
    """One trained model of one site, as written to the model store."""

    __tablename__ = "model_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id", ondelete="RESTRICT"))
    # 1, 2, 3, … per site: what people call "model 3 of Rose Cottage".
    version: Mapped[int] = mapped_column(Integer)
    algorithm: Mapped[str] = mapped_column(String(32))
    # Relative to stethoscope.model_dir, so the store can move as a whole.
    directory: Mapped[str] = mapped_column(String(255), unique=True)
    # sha256 of the model file, as the manifest records it.
    sha256: Mapped[str] = mapped_column(String(64))
    sklearn_version: Mapped[str] = mapped_column(String(32))
    n_readings: Mapped[int] = mapped_column(Integer)
    n_runs: Mapped[int] = mapped_column(Integer)
    data_start: Mapped[datetime.datetime | None]
    data_end: Mapped[datetime.datetime | None]
    # Cross-validated figures (grouped by training run) and the warnings of
    # training: what the models page and --activate compare.
    metrics: Mapped[dict] = mapped_column(JSONDocument)
    created_at: Mapped[datetime.datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64))

    __table_args__ = (UniqueConstraint("site_id", "version"),)


class ModelActivation(Base):
    """``model_version`` became the site's active model (append-only)."""

    __tablename__ = "model_activations"

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id", ondelete="RESTRICT"))
    model_version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id", ondelete="RESTRICT")
    )
    # "activate" or "rollback".
    action: Mapped[str] = mapped_column(String(16))
    activated_at: Mapped[datetime.datetime] = mapped_column(default=utcnow)
    activated_by: Mapped[str] = mapped_column(String(64))

    model_version: Mapped[ModelVersion] = relationship()

    __table_args__ = (Index("ix_model_activations_site_id_id", "site_id", "id"),)
