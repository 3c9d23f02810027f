"""Who may call the product service's internal routes: shared.internal_access's table, every
route against every identity of the system."""

import pytest

from shared.internal_access import INTERNAL_ROUTES
from shared.testing import assert_internal_access, internal_access_cases, internal_routes_of

SERVICE = "product"


def test_every_internal_route_is_in_the_table(app):
    listed = {(method, path) for service, method, path in INTERNAL_ROUTES if service == SERVICE}
    assert internal_routes_of(app) == listed


@pytest.mark.parametrize(
    "case", internal_access_cases(SERVICE), ids=lambda case: "-".join(map(str, case))
)
async def test_only_the_callers_in_the_table_are_answered(client, keys, case, caplog):
    await assert_internal_access(client, keys, SERVICE, case, caplog)
