"""The auth service's app factory (`uvicorn --factory auth_service.main:create_app`)."""

import uuid

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from auth_service import accounts, repository
from auth_service.config import AuthSettings, get_settings
from auth_service.routes import admin_router, internal_router, router, well_known_router
from auth_service.state import open_state
from shared.app import create_app as create_service_app
from shared.user_status import UserStatus, UserStatusSource
from shared.user_token_keys import UserTokenKeys


def _status_from_database(sessionmaker: async_sessionmaker[AsyncSession]) -> UserStatusSource:
    """This service is where user status lives: read it from the database, no cache."""

    async def fetch(user_id: uuid.UUID) -> UserStatus | None:
        async with sessionmaker() as session:
            return await repository.get_user_status(session, user_id)

    return fetch


def _own_keys(settings: AuthSettings) -> UserTokenKeys:
    """This service verifies user tokens with its own keys: nothing to fetch."""
    return UserTokenKeys(settings.jwt_public_keys)


def create_app(settings: AuthSettings | None = None) -> FastAPI:
    settings = settings or get_settings()
    return create_service_app(
        name="auth",
        title="Auth Service",
        description="Users, passwords and tokens.",
        settings=settings,
        routers=[router, admin_router, internal_router, well_known_router],
        database_url=settings.database_url,
        state=open_state,
        user_status_source=_status_from_database,
        user_status_ttl=0,
        user_token_keys=_own_keys,
        on_startup=[accounts.bootstrap_admin],
    )
