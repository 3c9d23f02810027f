from product_service.config import get_settings
from shared.server import serve

settings = get_settings()
serve(
    "product_service.main:create_app",
    name="product",
    host=settings.host,
    port=settings.port,
    log_level=settings.log_level,
    loop=settings.event_loop,
)
