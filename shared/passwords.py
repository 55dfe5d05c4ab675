"""Password hashing: argon2id, never stored or logged in clear.

The default cost is OWASP's argon2id recommendation (19 MiB, 2 passes, 1 lane): a
production setting that keeps a 10:00 opening minute of sign-ups within two cores.
``PASSWORD_HASH`` in the config can raise it (``time_cost``, ``memory_cost`` in KiB,
``parallelism``).
"""

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

DEFAULTS = {"time_cost": 2, "memory_cost": 19 * 1024, "parallelism": 1}


class PasswordHasher:
    def __init__(self, **params):
        self.params = {**DEFAULTS, **params}
        self._h = argon2.PasswordHasher(type=argon2.Type.ID, **self.params)
        self._dummy = self._h.hash("kaowu-dummy-password-for-timing")

    @classmethod
    def from_config(cls, config):
        return cls(**((config or {}).get("PASSWORD_HASH") or {}))

    def hash(self, password: str) -> str:
        return self._h.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        if not password_hash:
            return False
        try:
            return self._h.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def verify_dummy(self, password: str) -> None:
        """Spend what a real check costs, so timing does not tell which usernames exist."""
        self.verify(self._dummy, password)
