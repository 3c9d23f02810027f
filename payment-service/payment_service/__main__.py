from payment_service.config import get_settings
from shared.server import serve_service

settings = get_settings()
serve_service("payment_service.main:create_app", settings, name="payment", loop=settings.event_loop)
