"""What a running service holds, typed: one frozen dataclass per service.

`create_app` opens what every service needs (settings, the pooled client for calls to
other services, the user status cache, the keys user tokens are verified with and,
with a database, the engine and the sessionmaker) into a `ServiceState` or
`DatabaseState`; a service that holds more (the clients of its neighbours, its payment
providers) declares a subclass in its `state.py` and builds it from that base
(`create_app(state=...)`).

Business code never reads `app.state`: routes get the state through a dependency
(`state_dependency(OrderState)`), workers and scrape hooks are given it, and functions of
the service layer take it (or only the part they need) as an argument.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from fastapi import FastAPI, Request

from shared.http_client import ServiceClient
from shared.settings import ServiceSettings
from shared.user_status import UserStatusCache
from shared.user_token_keys import UserTokenKeys

if TYPE_CHECKING:  # SQLAlchemy is loaded by the services with a database only
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

    from shared.db import HotPath

SettingsT = TypeVar("SettingsT", bound=ServiceSettings, covariant=True)
StateT = TypeVar("StateT", bound="ServiceState[Any]")
# state_of reads any kind of state (the admin console's holds no user status cache).
AnyState = TypeVar("AnyState")


@dataclass(frozen=True, kw_only=True)
class ServiceState(Generic[SettingsT]):
    settings: SettingsT
    # Calls to the other services of this system (internal token, request id).
    services: ServiceClient
    # Users' current status and role, for the CurrentUser / AdminUser dependencies.
    user_status: UserStatusCache
    # The auth service's public keys, that user tokens are verified with.
    user_token_keys: UserTokenKeys

    def base(self) -> dict[str, Any]:
        """This state's fields as keyword arguments, to build a subclass's state from it."""
        return {field.name: getattr(self, field.name) for field in fields(self)}


@dataclass(frozen=True, kw_only=True)
class DatabaseState(ServiceState[SettingsT]):
    engine: "AsyncEngine"
    # One `async with sessionmaker() as session, session.begin():` is one transaction.
    sessionmaker: "async_sessionmaker[AsyncSession]"
    # For reads only: statements without a transaction around them (shared.db).
    read_sessionmaker: "async_sessionmaker[AsyncSession]"
    # The busiest one-row reads, with asyncpg itself (shared.db.HotPath).
    hot_path: "HotPath"


def state_of(app: FastAPI, kind: type[AnyState]) -> AnyState:
    """The app's state, checked to be a `kind`."""
    state = getattr(app.state, "service", None)
    if not isinstance(state, kind):
        raise RuntimeError(f"the app holds {type(state).__name__}, not {kind.__name__}")
    return state


def state_dependency(kind: type[StateT]) -> Callable[[Request], Awaitable[StateT]]:
    """A FastAPI dependency that gives a route the app's state as a `kind`:
    `State = Annotated[OrderState, Depends(state_dependency(OrderState))]`.
    `async def` although it awaits nothing: FastAPI runs a plain `def` dependency in a
    thread of its pool, a hand-over that cost about a tenth of a request's time."""

    async def dependency(request: Request) -> StateT:
        return state_of(request.app, kind)

    dependency.__name__ = f"{kind.__name__[0].lower()}{kind.__name__[1:]}"
    return dependency


def service_state(request: Request) -> ServiceState[ServiceSettings]:
    return state_of(request.app, ServiceState)


def database_state(request: Request) -> DatabaseState[ServiceSettings]:
    return state_of(request.app, DatabaseState)
