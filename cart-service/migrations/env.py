from alembic import context

from cart_service.config import get_settings
from cart_service.models import Base
from shared.migrations import run_migrations

run_migrations(context, Base.metadata, lambda: get_settings().database_url)
