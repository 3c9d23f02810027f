from cart_service.config import get_settings
from shared.server import serve_service

settings = get_settings()
serve_service("cart_service.main:create_app", settings, name="cart", loop=settings.event_loop)
