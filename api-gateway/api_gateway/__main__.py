from api_gateway.config import get_settings
from shared.server import serve

settings = get_settings()
serve(
    "api_gateway.main:create_app",
    name="gateway",
    host=settings.host,
    port=settings.port,
    log_level=settings.log_level,
    loop=settings.event_loop,
)
