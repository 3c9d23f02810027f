"""Dependencies that validate and load."""

import uuid
from typing import Annotated

from fastapi import Depends, Request

from auth_service import accounts
from auth_service.models import User
from auth_service.state import AuthState
from shared.auth import DocumentedBearer, bearer_token
from shared.db import SessionDep
from shared.errors import Unauthorized
from shared.openapi import answers
from shared.state import state_dependency
from shared.tokens import InvalidToken

State = Annotated[AuthState, Depends(state_dependency(AuthState))]


@answers((401, "No token, or one that is not valid (any more)"))
async def current_user_record(
    request: Request, state: State, session: SessionDep, _: DocumentedBearer = None
) -> User:
    """The caller's row. This service owns the users table, so the token is checked against
    the row itself (active, not revoked): one query, and always current."""
    token = bearer_token(request)
    if token is None:
        raise Unauthorized("No token provided")
    try:
        claims = await state.user_token_keys.decode(token)
    except InvalidToken:
        raise Unauthorized("Invalid token") from None
    user = await accounts.get_user(session, claims.id)
    if user is None or claims.issued_at < accounts.status_of(user).tokens_valid_after:
        raise Unauthorized("Invalid token")
    if not user.is_active:
        raise Unauthorized("Account is deactivated")
    return user


@answers((404, "User not found"))
async def valid_user_id(user_id: uuid.UUID, session: SessionDep) -> User:
    return await accounts.get_user_or_404(session, user_id)


CurrentUserRecord = Annotated[User, Depends(current_user_record)]
ValidUser = Annotated[User, Depends(valid_user_id)]
