from order_service.config import get_settings
from shared.server import serve_service

settings = get_settings()
serve_service("order_service.main:create_app", settings, name="order", loop=settings.event_loop)
