"""Accounts: registration, login, profile, passwords, admin changes of a user, the first
admin. Each function is one transaction of the caller's `session` unless it says
otherwise."""

import logging
import uuid
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from auth_service import repository
from auth_service.config import AuthSettings
from auth_service.exceptions import AccountDeactivated, UserNotFound
from auth_service.models import User
from auth_service.repository import UserView
from auth_service.schemas import (
    AdminUserUpdate,
    ChangePasswordRequest,
    ProfileUpdate,
    RegisterRequest,
    normalize_email,
)
from auth_service.state import AuthState
from shared.auth import AuthenticatedUser
from shared.db import HotPath
from shared.errors import BadRequest, Unauthorized
from shared.passwords import hash_password, verify_password
from shared.schemas import Page
from shared.tokens import issue_user_token
from shared.user_status import UserStatus

logger = logging.getLogger(__name__)


def issue_token(user: User, settings: AuthSettings) -> str:
    return issue_user_token(
        user_id=user.id,
        email=user.email,
        role=user.role,
        signing_key=settings.jwt_signing_key,
        expires_in=settings.jwt_expires_in,
    )


def status_of(user: User | UserView) -> UserStatus:
    valid_after = user.tokens_valid_after
    return UserStatus(
        role=user.role,
        is_active=user.is_active,
        tokens_valid_after=int(valid_after.timestamp()) if valid_after else 0,
    )


async def register(
    session: AsyncSession, data: RegisterRequest, settings: AuthSettings
) -> tuple[User, str]:
    user_id = await repository.insert_user_if_absent(
        session,
        name=data.name,
        email=data.email,
        password_hash=await hash_password(data.password),
        phone_number=data.phone_number,
        role="customer",  # never from the request
    )
    if user_id is None:
        raise BadRequest("User already exists")
    user = await repository.get_user(session, user_id)
    assert user is not None
    return user, issue_token(user, settings)


async def login(
    session: AsyncSession, email: str, password: str, settings: AuthSettings
) -> tuple[User, str]:
    user = await repository.get_user_by_email(session, email.strip())
    # Unknown email and wrong password: the same answer, after the same work.
    matches, new_hash = await verify_password(password, user.password_hash if user else None)
    if user is None or not matches:
        raise Unauthorized("Invalid credentials")
    if not user.is_active:
        raise AccountDeactivated()
    if new_hash is not None:  # a bcrypt hash of the original system, upgraded to argon2id
        user.password_hash = new_hash
    return user, issue_token(user, settings)


async def update_profile(session: AsyncSession, user: User, data: ProfileUpdate) -> User:
    sent = data.model_fields_set
    if "name" in sent:
        if data.name is None:
            raise BadRequest(
                "Validation error", details=[{"field": "name", "message": "Field required"}]
            )
        user.name = data.name
    if "phone_number" in sent:
        user.phone_number = data.phone_number
    await session.flush()
    await session.refresh(user)
    return user


async def change_password(
    session: AsyncSession, user: User, data: ChangePasswordRequest, settings: AuthSettings
) -> str:
    matches, _ = await verify_password(data.current_password, user.password_hash)
    if not matches:
        raise BadRequest("Current password is incorrect")
    user.password_hash = await hash_password(data.new_password)
    # Tokens carry whole seconds: older tokens (iat < this second) stop working.
    user.tokens_valid_after = datetime.now(UTC).replace(microsecond=0)
    await session.flush()
    return issue_token(user, settings)


async def update_user_as_admin(
    session: AsyncSession, actor: AuthenticatedUser, user: User, changes: AdminUserUpdate
) -> User:
    sent = changes.model_fields_set
    new_role = changes.role if "role" in sent and changes.role is not None else user.role
    new_active = (
        changes.is_active
        if "is_active" in sent and changes.is_active is not None
        else user.is_active
    )
    loses_admin = (
        user.role == "admin" and user.is_active and (new_role != "admin" or not new_active)
    )
    if loses_admin:
        admins = await repository.lock_active_admins(session)
        if not any(admin.id != user.id for admin in admins):
            raise BadRequest("Cannot demote or deactivate the last active admin")
    user.role = new_role
    user.is_active = new_active
    await session.flush()
    await session.refresh(user)
    logger.info(
        "user updated by admin",
        extra={
            "userId": str(user.id),
            "adminId": str(actor.id),
            "role": user.role,
            "isActive": user.is_active,
        },
    )
    return user


async def get_user(session: AsyncSession, user_id: uuid.UUID) -> User | None:
    return await repository.get_user(session, user_id)


async def get_user_view(reads: HotPath, user_id: uuid.UUID) -> UserView | None:
    """The user as the profile shows them, read without a session (shared.db.HotPath)."""
    return await repository.get_user_view(reads, user_id)


async def get_user_or_404(session: AsyncSession, user_id: uuid.UUID) -> User:
    user = await repository.get_user(session, user_id)
    if user is None:
        raise UserNotFound()
    return user


async def list_users(
    session: AsyncSession,
    *,
    role: str | None,
    is_active: bool | None,
    search: str | None,
    page: Page,
) -> tuple[list[User], int]:
    return await repository.list_users(
        session,
        role=role,
        is_active=is_active,
        search=search,
        offset=page.offset,
        limit=page.limit,
    )


async def user_status(session: AsyncSession, user_id: uuid.UUID) -> UserStatus:
    """What the other services' user status caches are filled from."""
    user = await get_user_or_404(session, user_id)
    return status_of(user)


async def bootstrap_admin(state: AuthState) -> None:
    """Creates the admin of `ADMIN_EMAIL` / `ADMIN_PASSWORD` once (its own transaction, at
    start). Safe to run at every start and from several replicas at once; never promotes
    an account someone else registered."""
    settings = state.settings
    if not settings.admin_email or settings.admin_password is None:
        return
    email = normalize_email(settings.admin_email)
    async with state.sessionmaker() as session, session.begin():
        created = await repository.insert_user_if_absent(
            session,
            name=settings.admin_name,
            email=email,
            password_hash=await hash_password(settings.admin_password.get_secret_value()),
            role="admin",
        )
        if created:
            logger.info("admin account created", extra={"email": email})
            return
        existing = await repository.get_user_by_email(session, email)
        if existing is not None and existing.role != "admin":
            logger.error(
                "ADMIN_EMAIL belongs to an existing customer account; it was not made admin. "
                "Choose another ADMIN_EMAIL, or promote that account through an existing admin.",
                extra={"email": email},
            )
        else:
            logger.info("admin account already exists", extra={"email": email})
