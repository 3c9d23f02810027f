from api_gateway.config import get_settings
from shared.server import serve_service

settings = get_settings()
serve_service("api_gateway.main:create_app", settings, name="gateway", loop=settings.event_loop)
