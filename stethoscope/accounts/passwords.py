"""Password hashing with argon2id (argon2-cffi)."""

import argon2
from argon2.exceptions import InvalidHashError, VerificationError


class Passwords:
    """Hashes and verifies passwords; ``profile`` names an argon2 profile.

    ``cheapest`` exists for the test suite only: production keeps
    argon2-cffi's default (RFC 9106 low-memory) parameters.
    """

    MIN_LENGTH = 10

    def __init__(self, profile: str = "default"):
        if profile == "cheapest":
            self._hasher = argon2.PasswordHasher.from_parameters(
                argon2.profiles.CHEAPEST
            )
        else:
            self._hasher = argon2.PasswordHasher()
        # Verified against when the user does not exist, so that an unknown
        # username takes as long to refuse as a wrong password.
        self._dummy = self._hasher.hash("not a password of anyone")

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash or self._dummy, password) and (
                password_hash is not None
            )
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)

    @classmethod
    def problem(cls, password: str) -> str | None:
        """Why ``password`` is not acceptable, or None."""
        if len(password) < cls.MIN_LENGTH:
            return f"must be at least {cls.MIN_LENGTH} characters"
        if len(password) > 1024:
            return "must be at most 1024 characters"
        return None
