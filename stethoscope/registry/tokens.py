"""Gateway bearer tokens: created and revoked by admins, checked on ingest."""

import hmac
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import event, select
from sqlalchemy.orm import Session, SessionTransaction

from ..audit.services import no_audit
from ..bearer import hash_token, new_token
from ..db import utcnow
from ..errors import NotFound, ValidationError
from ..schemas import IDENTIFIER
from .models import GatewayToken

TOKEN_PREFIX = "stg_"


class GatewayTokenService:
    """Creates, lists and revokes tokens, recording each creation and
    revocation with ``audit(action, target=, details=)`` in the caller's
    transaction. A token is shown once, when created."""

    def __init__(
        self,
        session: Session,
        cache: "TokenCache",
        *,
        audit: Callable[..., object] = no_audit,
    ):
        self.session = session
        self.cache = cache
        self.audit = audit

    def create(self, gateway_id: str, actor: str) -> tuple[str, GatewayToken]:
        if not IDENTIFIER.fullmatch(gateway_id or ""):
            raise ValidationError(
                "gateway_id", "1 to 64 printable characters, no spaces"
            )
        minted = new_token(TOKEN_PREFIX)
        row = GatewayToken(
            gateway_id=gateway_id,
            token_hash=minted.token_hash,
            prefix=minted.prefix,
            created_at=utcnow(),
            created_by=actor,
        )
        self.session.add(row)
        self.session.flush()
        self._audit("token.create", row)
        return minted.token, row

    def revoke(self, token_id: int, actor: str) -> tuple[GatewayToken, bool]:
        """Revoke a token; also say whether it was live until now."""
        row = self.session.get(GatewayToken, token_id)
        if row is None:
            raise NotFound(f"no token {token_id}")
        if row.revoked_at is not None:
            return row, False
        row.revoked_at = utcnow()
        row.revoked_by = actor
        # Forgotten now and again when the transaction ends: until then
        # another transaction still reads the token as live (PostgreSQL's
        # READ COMMITTED) and would cache it again for ``ttl_s``.
        self.cache.revoking(row.token_hash)
        _when_transaction_ends(self.session, self.cache, row.token_hash)
        self._audit("token.revoke", row)
        return row, True

    def list(
        self, gateway_id: str | None = None, include_revoked=True
    ) -> list[GatewayToken]:
        query = select(GatewayToken).order_by(GatewayToken.gateway_id, GatewayToken.id)
        if gateway_id is not None:
            query = query.where(GatewayToken.gateway_id == gateway_id)
        if not include_revoked:
            query = query.where(GatewayToken.revoked_at.is_(None))
        return list(self.session.scalars(query))

    def _audit(self, action: str, row: GatewayToken) -> None:
        # The prefix, never the token: it tells tokens apart and proves nothing.
        self.audit(
            action,
            target=row.gateway_id,
            details={"token_id": row.id, "prefix": row.prefix},
        )


_REVOKING = "stethoscope.tokens.revoking"


def _when_transaction_ends(session: Session, cache: "TokenCache", digest: str) -> None:
    """Call ``cache.revoked(digest)`` when the session's transaction ends,
    committed or not (a savepoint's end is not the transaction's)."""
    pending = session.info.setdefault(_REVOKING, [])
    pending.append((cache, digest))
    if not event.contains(session, "after_transaction_end", _transaction_ended):
        event.listen(session, "after_transaction_end", _transaction_ended)


def _transaction_ended(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is not None:
        return
    for cache, digest in session.info.pop(_REVOKING, ()):
        cache.revoked(digest)


@dataclass(frozen=True)
class TokenGrant:
    token_id: int
    gateway_id: str


class TokenCache:
    """Verified tokens, kept ``ttl_s`` so that ingest does not query per POST.

    A revocation made in this process takes effect when it commits; one
    made in another process within ``ttl_s`` seconds
    (stethoscope.ingest.token_cache_seconds).

    A verification that overlaps a revocation of this process is answered
    from what it read but not cached: its query may have read the token
    before the revocation committed.
    """

    def __init__(self, ttl_s: int, clock=time.monotonic):
        self.ttl_s = ttl_s
        self._clock = clock
        self._grants: dict[str, tuple[float, TokenGrant]] = {}
        self._lock = threading.Lock()
        # Digests being revoked by transactions not ended yet (how many).
        self._revoking: dict[str, int] = {}
        # Counts the revocations begun and ended: a verification caches
        # only when none of them happened while it queried.
        self._generation = 0

    def verify(self, session_factory, token: str) -> TokenGrant | None:
        """The grant of a live token; ``session_factory()`` is used on a miss."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 128:
            return None
        digest = hash_token(token)
        cached = self._grants.get(digest)
        if cached is not None and cached[0] > self._clock():
            return cached[1]
        generation = self._generation
        row = session_factory().scalar(
            select(GatewayToken).where(
                GatewayToken.token_hash == digest, GatewayToken.revoked_at.is_(None)
            )
        )
        if row is None or not hmac.compare_digest(row.token_hash, digest):
            return None
        grant = TokenGrant(row.id, row.gateway_id)
        if self.ttl_s:
            with self._lock:
                if generation == self._generation and digest not in self._revoking:
                    self._grants[digest] = (self._clock() + self.ttl_s, grant)
        return grant

    def cached_grant(self, token: str) -> TokenGrant | None:
        """The grant of ``token`` if this process verified it lately, without
        a query; None when it did not (which says nothing of the token)."""
        cached = self._grants.get(hash_token(token))
        if cached is not None and cached[0] > self._clock():
            return cached[1]
        return None

    def forget(self, digest: str) -> None:
        """Drop the token's grant (it is verified again when next used)."""
        with self._lock:
            self._grants.pop(digest, None)

    def revoking(self, digest: str) -> None:
        """A transaction is revoking the token: forget it, and cache it no
        more until that transaction ends (``revoked``)."""
        with self._lock:
            self._revoking[digest] = self._revoking.get(digest, 0) + 1
            self._grants.pop(digest, None)
            self._generation += 1

    def revoked(self, digest: str) -> None:
        """The transaction revoking the token ended, committed or not: forget
        what a verification meanwhile may have cached after all."""
        with self._lock:
            left = self._revoking.pop(digest, 1) - 1
            if left:
                self._revoking[digest] = left
            self._grants.pop(digest, None)
            self._generation += 1
