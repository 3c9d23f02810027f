from cart_service.config import get_settings
from shared.server import serve

settings = get_settings()
serve(
    "cart_service.main:create_app",
    name="cart",
    host=settings.host,
    port=settings.port,
    log_level=settings.log_level,
    loop=settings.event_loop,
)
