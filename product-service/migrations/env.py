from alembic import context

from product_service.config import get_settings
from product_service.models import Base
from shared.migrations import run_migrations

run_migrations(context, Base.metadata, lambda: get_settings().database_url)
