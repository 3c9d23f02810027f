"""The auth service's queries."""

import uuid
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, bindparam, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.models import User
from shared.db import DirectStatement, HotPath
from shared.pagination import equals, paginated
from shared.user_status import UserStatus

# Built once: an ORM statement costs more to build and key for the cache than to run
# (this one runs for every request with a token).
_USER_BY_ID = select(User).where(User.id == bindparam("user_id"))


async def get_user(session: AsyncSession, user_id: uuid.UUID) -> User | None:
    return await session.scalar(_USER_BY_ID, {"user_id": user_id})


_USERS = User.__table__


@dataclass(frozen=True)
class UserView:
    """A user as read for the profile (no password hash): the row, not an ORM object."""

    id: uuid.UUID
    name: str
    email: str
    role: str
    phone_number: str | None
    is_active: bool
    created_at: datetime
    updated_at: datetime
    tokens_valid_after: datetime | None


# The view's fields are the table's column names: the query is made from them, once, in
# asyncpg's own SQL (`$1` parameters).
_USER_VIEW = DirectStatement.of(
    select(*(_USERS.c[field.name] for field in fields(UserView))).where(
        _USERS.c.id == bindparam("user_id")
    )
)


async def get_user_view(reads: HotPath, user_id: uuid.UUID) -> UserView | None:
    row = await reads.fetchrow(_USER_VIEW.sql, *_USER_VIEW.args(user_id=user_id))
    return UserView(**row) if row is not None else None


async def get_user_status(session: AsyncSession, user_id: uuid.UUID) -> UserStatus | None:
    """Only what the user status cache needs, without loading the whole row into the ORM."""
    row = (
        await session.execute(
            select(User.role, User.is_active, User.tokens_valid_after).where(User.id == user_id)
        )
    ).first()
    if row is None:
        return None
    valid_after = row.tokens_valid_after
    return UserStatus(
        role=row.role,
        is_active=row.is_active,
        tokens_valid_after=int(valid_after.timestamp()) if valid_after else 0,
    )


async def get_user_by_email(session: AsyncSession, email: str) -> User | None:
    return await session.scalar(select(User).where(User.email == email.lower()))


async def insert_user_if_absent(session: AsyncSession, **values: Any) -> uuid.UUID | None:
    """Inserts unless the email is taken (by anyone, even concurrently); the new id or None."""
    statement = (
        insert(User)
        .values(id=uuid.uuid4(), **values)
        .on_conflict_do_nothing(index_elements=[User.email])
        .returning(User.id)
    )
    return await session.scalar(statement)


async def lock_active_admins(session: AsyncSession) -> list[User]:
    """Active admins, locked until the transaction ends: two admins demoting each other at
    the same moment cannot both see the other as the one who remains."""
    result = await session.scalars(
        select(User).where(User.role == "admin", User.is_active.is_(True)).with_for_update()
    )
    return list(result)


async def list_users(
    session: AsyncSession,
    *,
    role: str | None,
    is_active: bool | None,
    offset: int,
    limit: int,
    search: str | None = None,
) -> tuple[list[User], int]:
    found_by_search: ColumnElement[bool] | None = None
    if search:
        pattern = "%" + like_escaped(search) + "%"
        found_by_search = User.email.ilike(pattern, escape="\\") | User.name.ilike(
            pattern, escape="\\"
        )
    conditions = [
        found_by_search,
        equals(User.role, role),
        None if is_active is None else User.is_active.is_(is_active),
    ]
    return await paginated(session, User, conditions, offset=offset, limit=limit)


def like_escaped(text: str) -> str:
    """`text` matched literally inside a LIKE pattern (its % and _ are not wildcards)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
