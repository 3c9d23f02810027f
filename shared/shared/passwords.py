"""Passwords with pwdlib: argon2id for new hashes; bcrypt hashes from the
original system verify and are replaced by argon2id at the next login.

Hashing is CPU-bound (tens of milliseconds by design), so it runs in a worker
thread and never blocks the event loop."""

from anyio import to_thread
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from pwdlib.hashers.bcrypt import BcryptHasher

# The first hasher makes new hashes; the others only verify.
_password_hash = PasswordHash((Argon2Hasher(), BcryptHasher()))
# Verified when the email is unknown, so that a login takes the same time either way.
_DUMMY_HASH = _password_hash.hash("dummy password for unknown users")


async def hash_password(password: str) -> str:
    return await to_thread.run_sync(_password_hash.hash, password)


async def verify_password(password: str, password_hash: str | None) -> tuple[bool, str | None]:
    """(matches, new hash to store or None). With no hash, a dummy is checked and False returned."""
    if password_hash is None:
        await to_thread.run_sync(_password_hash.verify, password, _DUMMY_HASH)
        return False, None
    try:
        return await to_thread.run_sync(_password_hash.verify_and_update, password, password_hash)
    except Exception:  # an unreadable hash in the database is a failed login, not a 500
        return False, None
