"""Dependencies that validate and load."""

import uuid
from typing import Annotated

from fastapi import Depends, Request

from auth_service import service
from auth_service.config import AuthSettings
from auth_service.models import User
from shared.auth import bearer_token
from shared.db import SessionDep
from shared.errors import Unauthorized
from shared.tokens import InvalidToken, decode_user_token


async def app_settings(request: Request) -> AuthSettings:
    return request.app.state.settings


Settings = Annotated[AuthSettings, Depends(app_settings)]


async def current_user_record(request: Request, session: SessionDep) -> User:
    """The caller's row. This service owns the users table, so the token is checked against
    the row itself (active, not revoked): one query, and always current."""
    token = bearer_token(request)
    if token is None:
        raise Unauthorized("No token provided")
    settings: AuthSettings = request.app.state.settings
    try:
        claims = decode_user_token(token, settings.jwt_secret.get_secret_value())
    except InvalidToken:
        raise Unauthorized("Invalid token") from None
    user = await session.get(User, claims.id)
    if user is None or claims.issued_at < service.status_of(user).tokens_valid_after:
        raise Unauthorized("Invalid token")
    if not user.is_active:
        raise Unauthorized("Account is deactivated")
    return user


async def valid_user_id(user_id: uuid.UUID, session: SessionDep) -> User:
    return await service.get_user_or_404(session, user_id)


CurrentUserRecord = Annotated[User, Depends(current_user_record)]
ValidUser = Annotated[User, Depends(valid_user_id)]
