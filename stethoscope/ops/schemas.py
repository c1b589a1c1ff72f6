"""The models of /health."""

from typing import Literal

from pydantic import ConfigDict, Field

from ..schemas import Out

Answers = Literal["ok", "unavailable"]


def _omitted(value) -> bool:
    return value is None


class DedupStatus(Out):
    """memory: claims; redis: redis (ok or unavailable), fallbacks, cache_hits."""

    backend: Literal["memory", "redis"]
    claims: int | None = Field(None, exclude_if=_omitted)
    redis: Answers | None = Field(None, exclude_if=_omitted)
    fallbacks: int | None = Field(None, exclude_if=_omitted)
    cache_hits: int | None = Field(None, exclude_if=_omitted)


class Health(Out):
    """Whether the database and the deduplicator answer (503 when the
    database does not); other features may report more members."""

    # Members are added by the features (ops.services.add_health_member).
    model_config = ConfigDict(extra="allow", frozen=True)

    status: Answers
    database: Answers
    dedup: DedupStatus
