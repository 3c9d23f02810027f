from alembic import context

from order_service.config import OrderSettings
from order_service.models import Base
from shared.migrations import database_url_setting, run_migrations

run_migrations(context, Base.metadata, database_url_setting(OrderSettings))
