from alembic import context

from product_service.config import ProductSettings
from product_service.models import Base
from shared.migrations import database_url_setting, run_migrations

run_migrations(context, Base.metadata, database_url_setting(ProductSettings))
