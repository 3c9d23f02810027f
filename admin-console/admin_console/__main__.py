from admin_console.config import get_settings
from shared.server import serve

settings = get_settings()
serve(
    "admin_console.main:create_app",
    name="console",
    host=settings.host,
    port=settings.port,
    log_level=settings.log_level,
)
