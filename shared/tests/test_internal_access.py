"""The table of shared.internal_access: the money paths answer one caller each, and a
route the table does not list answers nobody. (Each service's tests call every route of
the table as every identity.)"""

import logging
import re
from pathlib import Path

import pytest

from shared.internal_access import IDENTITIES, INTERNAL_ROUTES, callers_of, may_call

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("service", "method", "path", "only_caller"),
    [
        ("product", "POST", "/api/internal/reserve", "order"),
        ("product", "POST", "/api/internal/release", "order"),
        ("product", "POST", "/api/internal/update-stock", "order"),
        ("cart", "POST", "/api/internal/cart/checkout", "order"),
        ("cart", "POST", "/api/internal/cart/clear", "order"),
        ("order", "POST", "/api/internal/update-status", "payment"),
        ("order", "GET", "/api/internal/orders", "payment"),
        ("order", "GET", "/api/internal/orders/6f1c2a52-3a57-4a4c-9c67-0e0b8d1f7a10", "payment"),
    ],
)
def test_stock_and_money_paths_answer_one_caller(service, method, path, only_caller):
    admitted = [caller for caller in IDENTITIES if may_call(caller, service, method, path)]
    assert admitted == [only_caller]


def test_every_service_and_the_gateway_read_user_status():
    path = "/api/internal/users/6f1c2a52-3a57-4a4c-9c67-0e0b8d1f7a10"
    admitted = {caller for caller in IDENTITIES if may_call(caller, "auth", "GET", path)}
    assert admitted == {"gateway", "product", "cart", "order", "payment"}


def test_a_route_missing_from_the_table_answers_nobody(caplog):
    with caplog.at_level(logging.WARNING, logger="shared.internal_access"):
        admitted = [c for c in IDENTITIES if may_call(c, "order", "DELETE", "/api/internal/orders")]
    assert admitted == []
    assert len(caplog.records) == len(IDENTITIES)
    assert caplog.records[0].getMessage() == (
        "internal call refused: caller=gateway route=order DELETE /api/internal/orders"
    )


def test_a_path_longer_than_a_template_is_not_that_route():
    assert not may_call("payment", "order", "GET", "/api/internal/orders/1/items")


def test_callers_of_a_service_for_its_network_policy():
    assert callers_of("product") == {"order", "cart"}
    assert callers_of("order") == {"payment"}
    assert callers_of("payment") == set()


def _documented_table(markdown: str) -> set[tuple[str, str, str, frozenset[str]]]:
    rows = re.findall(r"^\| (\w+) \| `(GET|POST) ([^`]+)` \| ([\w, -]+) \|$", markdown, re.M)
    return {
        (service, method, re.sub(r"\{(\w+)\}", _snake_parameter, path), _callers(callers))
        for service, method, path, callers in rows
    }


def _snake_parameter(match: re.Match[str]) -> str:
    return "{" + re.sub(r"([A-Z])", r"_\1", match.group(1)).lower() + "}"


def _callers(text: str) -> frozenset[str]:
    return frozenset(name.strip() for name in text.split(","))


@pytest.mark.parametrize("document", ["README.md", "docs/internal-api.md"])
def test_the_documents_show_the_table_of_the_code(document):
    in_code = {(s, m, p, callers) for (s, m, p), callers in INTERNAL_ROUTES.items()}
    assert _documented_table((ROOT / document).read_text()) == in_code
