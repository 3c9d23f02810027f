"""What the running console holds (shared.state's `app.state.service`): its settings and
the pooled client for its calls to the gateway. No database."""

from dataclasses import dataclass

from starlette.requests import Request

from admin_console.config import ConsoleSettings
from shared.http_client import ServiceClient
from shared.state import state_of


@dataclass(frozen=True, kw_only=True)
class ConsoleState:
    settings: ConsoleSettings
    # Calls to the public API through the gateway, with the console's internal token.
    gateway: ServiceClient


def console_state(request: Request) -> ConsoleState:
    return state_of(request.app, ConsoleState)


def console_settings(request: Request) -> ConsoleSettings:
    return console_state(request).settings
