"""Dependencies that validate and load."""

import uuid
from typing import Annotated, TypeVar

from fastapi import Depends, Request

from auth_service import accounts
from auth_service.models import User
from auth_service.repository import UserView
from auth_service.state import AuthState
from shared.auth import DocumentedBearer, bearer_token
from shared.db import SessionDep
from shared.errors import Unauthorized
from shared.openapi import answers
from shared.state import state_dependency
from shared.tokens import InvalidToken, UserClaims

UserT = TypeVar("UserT", User, UserView)

State = Annotated[AuthState, Depends(state_dependency(AuthState))]


async def _token_claims(request: Request, state: AuthState) -> UserClaims:
    token = bearer_token(request)
    if token is None:
        raise Unauthorized("No token provided")
    try:
        return await state.user_token_keys.decode(token)
    except InvalidToken:
        raise Unauthorized("Invalid token") from None


def _token_holder(user: UserT | None, claims: UserClaims) -> UserT:
    """The user, if the token still stands for them: they exist, the token is not revoked
    (issued before a password change), they are active."""
    if user is None or claims.issued_at < accounts.status_of(user).tokens_valid_after:
        raise Unauthorized("Invalid token")
    if not user.is_active:
        raise Unauthorized("Account is deactivated")
    return user


@answers((401, "No token, or one that is not valid (any more)"))
async def current_user_record(
    request: Request, state: State, session: SessionDep, _: DocumentedBearer = None
) -> User:
    """The caller's row, to change. This service owns the users table, so the token is
    checked against the row itself (active, not revoked): one query, and always current."""
    claims = await _token_claims(request, state)
    return _token_holder(await accounts.get_user(session, claims.id), claims)


@answers((401, "No token, or one that is not valid (any more)"))
async def current_user_view(request: Request, state: State, _: DocumentedBearer = None) -> UserView:
    """The caller, to read (GET /profile, the busiest route with a token): checked as
    `current_user_record` does, against the row read without a session."""
    claims = await _token_claims(request, state)
    return _token_holder(await accounts.get_user_view(state.hot_path, claims.id), claims)


@answers((404, "User not found"))
async def valid_user_id(user_id: uuid.UUID, session: SessionDep) -> User:
    return await accounts.get_user_or_404(session, user_id)


CurrentUserRecord = Annotated[User, Depends(current_user_record)]
CurrentUserView = Annotated[UserView, Depends(current_user_view)]
ValidUser = Annotated[User, Depends(valid_user_id)]
