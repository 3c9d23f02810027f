from alembic import context

from cart_service.config import CartSettings
from cart_service.models import Base
from shared.migrations import database_url_setting, run_migrations

run_migrations(context, Base.metadata, database_url_setting(CartSettings))
