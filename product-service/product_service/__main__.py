from product_service.config import get_settings
from shared.server import serve_service

settings = get_settings()
serve_service("product_service.main:create_app", settings, name="product", loop=settings.event_loop)
