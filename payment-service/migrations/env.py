from alembic import context

from payment_service.config import PaymentSettings
from payment_service.models import Base
from shared.migrations import database_url_setting, run_migrations

run_migrations(context, Base.metadata, database_url_setting(PaymentSettings))
