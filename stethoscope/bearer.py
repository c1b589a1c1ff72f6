"""Bearer secrets, whoever holds them: how one is made and how it is kept.

Gateway tokens (registry), users' API tokens (accounts) and login sessions
(accounts) are all random secrets of which the database keeps only a hash.
A SHA-256 is enough, with no salt or slow hash: the secret has 256 bits of
entropy, so there is nothing to guess, and a check must stay cheap enough to
run on every request.

Each kind of token starts with a prefix of its own (``stg_``, ``stu_``), so
that the security policy knows which table to look in without trying both,
and so that a token pasted in the wrong place is recognised (and secret
scanners can spot a leaked one).
"""

import hashlib
import secrets
from dataclasses import dataclass

# How many characters of the secret, after the kind's prefix, lists show to
# tell tokens apart: enough for that, far too few to guess the rest.
SHOWN_CHARACTERS = 6


def hash_token(token: str) -> str:
    """What the database keeps of ``token`` (sha256, hex)."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class NewToken:
    token: str  # the secret: shown once, never stored
    token_hash: str
    prefix: str  # the kind's prefix and a few characters, for lists


def new_token(kind_prefix: str) -> NewToken:
    """A fresh secret of the kind that starts with ``kind_prefix``."""
    token = kind_prefix + secrets.token_urlsafe(32)
    return NewToken(
        token=token,
        token_hash=hash_token(token),
        prefix=token[: len(kind_prefix) + SHOWN_CHARACTERS],
    )
