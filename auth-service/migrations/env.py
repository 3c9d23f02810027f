from alembic import context

from auth_service.config import AuthSettings
from auth_service.models import Base
from shared.migrations import database_url_setting, run_migrations

run_migrations(context, Base.metadata, database_url_setting(AuthSettings))
