"""Dependencies that validate and load."""

import uuid
from typing import Annotated

from fastapi import Depends

from auth_service import service
from auth_service.config import AuthSettings, get_settings
from auth_service.models import User
from shared.auth import CurrentUser
from shared.db import SessionDep
from shared.errors import Unauthorized

Settings = Annotated[AuthSettings, Depends(get_settings)]


async def current_user_record(user: CurrentUser, session: SessionDep) -> User:
    record = await session.get(User, user.id)
    if record is None:
        raise Unauthorized("Invalid token")
    return record


async def valid_user_id(user_id: uuid.UUID, session: SessionDep) -> User:
    return await service.get_user_or_404(session, user_id)


CurrentUserRecord = Annotated[User, Depends(current_user_record)]
ValidUser = Annotated[User, Depends(valid_user_id)]
