from auth_service.config import get_settings
from shared.server import serve_service

settings = get_settings()
serve_service("auth_service.main:create_app", settings, name="auth", loop=settings.event_loop)
