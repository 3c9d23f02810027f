from alembic import context

from order_service.config import get_settings
from order_service.models import Base
from shared.migrations import run_migrations

run_migrations(context, Base.metadata, lambda: get_settings().database_url)
