"""What the running auth service holds (shared.state): its database, nothing more."""

from dataclasses import dataclass

from auth_service.config import AuthSettings
from shared.state import DatabaseState


@dataclass(frozen=True, kw_only=True)
class AuthState(DatabaseState[AuthSettings]):
    pass


async def open_state(base: DatabaseState[AuthSettings]) -> AuthState:
    return AuthState(**base.base())
