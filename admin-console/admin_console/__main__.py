from admin_console.config import get_settings
from shared.server import serve_service

settings = get_settings()
serve_service("admin_console.main:create_app", settings, name="console")
