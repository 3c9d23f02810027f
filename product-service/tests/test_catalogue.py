"""GET /api/products: the original's envelope, validated paging, filters, search, sort,
what the public and admins see, and stable pages."""

import uuid
from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy import insert

from product_service.models import Product
from product_service.repository import contains_pattern
from shared.errors import ServiceUnavailable
from shared.testing import bearer


@pytest.fixture
def seed(engine):
    """Inserts products straight into the table (fast, and with chosen creation times)."""

    async def insert_rows(rows: list[dict]) -> list[str]:
        values = []
        for position, row in enumerate(rows):
            value = {
                "id": uuid.uuid4(),
                "name": f"Product {position}",
                "price": "100.00",
                "stock": 5,
                "is_active": True,
                "created_at": f"2026-01-01T00:00:{position % 60:02d}+00:00",
                **row,
            }
            value["price"] = Decimal(value["price"])
            value["created_at"] = datetime.fromisoformat(value["created_at"].replace("Z", "+00:00"))
            values.append(value)
        async with engine.begin() as connection:
            for value in values:
                await connection.execute(insert(Product).values(**value))
        return [str(value["id"]) for value in values]

    return insert_rows


def names(response) -> list[str]:
    return [product["name"] for product in response.json()["products"]]


async def test_the_originals_envelope_and_defaults(client, seed):
    await seed([{} for _ in range(12)])
    response = await client.get("/api/products")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"products", "totalPages", "currentPage", "totalProducts"}
    assert body["totalProducts"] == 12
    assert body["totalPages"] == 2
    assert body["currentPage"] == 1
    assert len(body["products"]) == 10  # the original's default limit
    assert body["products"][0]["price"] == "100.00"


async def test_an_empty_catalogue(client):
    response = await client.get("/api/products")
    assert response.json() == {
        "products": [],
        "totalPages": 0,
        "currentPage": 1,
        "totalProducts": 0,
    }


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("page=abc", "page"),
        ("page=0", "page"),
        ("page=-1", "page"),
        ("limit=-1", "limit"),
        ("limit=0", "limit"),
        ("limit=1000", "limit"),
        ("limit=ten", "limit"),
        ("minPrice=abc", "minPrice"),
        ("minPrice=-1", "minPrice"),
        ("maxPrice=1.234", "maxPrice"),
        ("minPrice=500&maxPrice=100", "minPrice"),
        ("sort=cheapest", "sort"),
        ("maxStock=-1", "maxStock"),
        ("maxStock=few", "maxStock"),
        ("includeInactive=perhaps", "includeInactive"),
        (f"search={'x' * 201}", "search"),
    ],
)
async def test_bad_query_parameters_are_400_naming_them(client, query, field):
    response = await client.get(f"/api/products?{query}")
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == "Validation error"
    assert field in [detail["field"] for detail in body["details"]]


async def test_a_page_past_the_end_is_empty_with_the_totals(client, seed):
    await seed([{} for _ in range(3)])
    body = (await client.get("/api/products?page=5&limit=2")).json()
    assert body["products"] == []
    assert body["totalProducts"] == 3 and body["totalPages"] == 2 and body["currentPage"] == 5


async def test_newest_first_by_default(client, seed):
    await seed(
        [
            {"name": "old", "created_at": "2026-01-01T00:00:00Z"},
            {"name": "new", "created_at": "2026-03-01T00:00:00Z"},
            {"name": "middle", "created_at": "2026-02-01T00:00:00Z"},
        ]
    )
    assert names(await client.get("/api/products")) == ["new", "middle", "old"]
    assert names(await client.get("/api/products?sort=newest")) == ["new", "middle", "old"]


async def test_sort_by_price_and_by_name(client, seed):
    await seed(
        [
            {"name": "banana", "price": "20.00"},
            {"name": "Apple", "price": "35.50"},
            {"name": "cherry", "price": "5.00"},
        ]
    )
    assert names(await client.get("/api/products?sort=price_asc")) == ["cherry", "banana", "Apple"]
    assert names(await client.get("/api/products?sort=price_desc")) == [
        "Apple",
        "banana",
        "cherry",
    ]
    # Case does not decide the order of names.
    assert names(await client.get("/api/products?sort=name")) == ["Apple", "banana", "cherry"]


@pytest.mark.parametrize("sort", ["newest", "price_asc", "price_desc", "name", "stock_asc"])
async def test_pages_never_repeat_or_skip_when_keys_are_equal(client, seed, sort):
    # 25 products with the same time, price and name: only the id tells them apart.
    ids = await seed(
        [
            {"name": "Same", "price": "10.00", "created_at": "2026-01-01T00:00:00Z"}
            for _ in range(25)
        ]
    )
    seen: list[str] = []
    for page in (1, 2, 3):
        body = (await client.get(f"/api/products?sort={sort}&limit=10&page={page}")).json()
        seen += [product["id"] for product in body["products"]]
    assert len(seen) == 25 and sorted(seen) == sorted(ids)
    again = (await client.get(f"/api/products?sort={sort}&limit=10&page=2")).json()
    assert [p["id"] for p in again["products"]] == seen[10:20]


async def test_filter_by_category_and_price_range(client, seed):
    await seed(
        [
            {"name": "phone", "category": "Electronics", "price": "150000.00"},
            {"name": "cable", "category": "Electronics", "price": "500.00"},
            {"name": "shirt", "category": "Clothing", "price": "1500.00"},
            {"name": "free", "category": "Electronics", "price": "0.00"},
        ]
    )
    electronics = await client.get("/api/products?category=Electronics&sort=price_asc")
    assert names(electronics) == ["free", "cable", "phone"]
    assert electronics.json()["totalProducts"] == 3
    ranged = await client.get("/api/products?minPrice=500&maxPrice=1500.00&sort=price_asc")
    assert names(ranged) == ["cable", "shirt"]  # both ends included
    assert names(await client.get("/api/products?minPrice=0&maxPrice=0")) == ["free"]
    both = await client.get("/api/products?category=Electronics&minPrice=400&maxPrice=600")
    assert names(both) == ["cable"]
    # An empty category or search is no filter, as in the original.
    assert (await client.get("/api/products?category=&search=")).json()["totalProducts"] == 4


async def test_low_stock_products_lowest_first(client, seed):
    await seed(
        [
            {"name": "plenty", "stock": 50},
            {"name": "last one", "stock": 1},
            {"name": "sold out", "stock": 0},
            {"name": "few", "stock": 5},
            {"name": "retired", "stock": 0, "is_active": False},
        ]
    )
    low = await client.get("/api/products?maxStock=5&sort=stock_asc")
    assert names(low) == ["sold out", "last one", "few"]  # the threshold is included
    assert low.json()["totalProducts"] == 3
    assert names(await client.get("/api/products?maxStock=0")) == ["sold out"]


async def test_search_is_case_insensitive_over_name_and_description(client, seed):
    await seed(
        [
            {"name": "iPhone 15 Pro", "description": "Latest iPhone"},
            {"name": "Phone case", "description": None},
            {"name": "Laptop", "description": "Works with your IPHONE"},
            {"name": "Desk", "description": "Oak"},
        ]
    )
    found = await client.get("/api/products?search=iphone&sort=name")
    assert names(found) == ["iPhone 15 Pro", "Laptop"]
    assert found.json()["totalProducts"] == 2
    assert names(await client.get("/api/products?search=PHONE&sort=name")) == [
        "iPhone 15 Pro",
        "Laptop",
        "Phone case",
    ]
    assert names(await client.get("/api/products?search=%20oak%20")) == ["Desk"]
    assert (await client.get("/api/products?search=nothing-like-this")).json()["totalProducts"] == 0


async def test_search_takes_percent_underscore_and_backslash_literally(client, seed):
    await seed(
        [
            {"name": "100% cotton shirt"},
            {"name": "1000 cotton buds"},
            {"name": "snake_case mug"},
            {"name": "snakeXcase mug"},
            {"name": "back\\slash poster"},
            {"name": "backslash poster"},
        ]
    )
    assert names(await client.get("/api/products", params={"search": "100%"})) == [
        "100% cotton shirt"
    ]
    assert names(await client.get("/api/products", params={"search": "%"})) == ["100% cotton shirt"]
    assert names(await client.get("/api/products", params={"search": "snake_case"})) == [
        "snake_case mug"
    ]
    assert names(await client.get("/api/products", params={"search": "_"})) == ["snake_case mug"]
    assert names(await client.get("/api/products", params={"search": "k\\s"})) == [
        "back\\slash poster"
    ]


def test_the_like_pattern_escapes_the_users_wildcards():
    assert contains_pattern("50%_off\\") == "%50\\%\\_off\\\\%"


async def test_the_public_sees_only_active_products(client, seed, customer_headers):
    await seed([{"name": "on sale"}, {"name": "withdrawn", "is_active": False}])
    for headers in ({}, customer_headers):
        body = (await client.get("/api/products", headers=headers)).json()
        assert [p["name"] for p in body["products"]] == ["on sale"]
        assert body["totalProducts"] == 1
        # includeInactive is for admins only: anyone else gets the public catalogue.
        asked = await client.get("/api/products?includeInactive=true", headers=headers)
        assert asked.status_code == 200
        assert names(asked) == ["on sale"]


async def test_admins_list_inactive_products_when_they_ask(client, seed, admin_headers):
    await seed(
        [
            {"name": "on sale", "created_at": "2026-01-02T00:00:00Z"},
            {"name": "withdrawn", "is_active": False, "created_at": "2026-01-01T00:00:00Z"},
        ]
    )
    plain = await client.get("/api/products", headers=admin_headers)
    assert names(plain) == ["on sale"]
    everything = await client.get("/api/products?includeInactive=true", headers=admin_headers)
    assert names(everything) == ["on sale", "withdrawn"]
    assert everything.json()["totalProducts"] == 2
    assert everything.json()["products"][1]["isActive"] is False


async def test_a_bad_token_on_the_public_catalogue_is_just_the_public(client, seed):
    await seed([{"name": "on sale"}, {"name": "withdrawn", "is_active": False}])
    response = await client.get(
        "/api/products?includeInactive=true", headers={"Authorization": "Bearer nonsense"}
    )
    assert response.status_code == 200
    assert names(response) == ["on sale"]


async def test_the_catalogue_stays_readable_when_the_auth_service_is_down(client, seed, make_token):
    await seed([{"name": "on sale"}, {"name": "withdrawn", "is_active": False}])
    token = make_token("admin", status=ServiceUnavailable("Auth service unavailable"))
    listed = await client.get("/api/products?includeInactive=true", headers=bearer(token))
    assert listed.status_code == 200
    assert names(listed) == ["on sale"]
    # A write cannot be judged without the auth service: 503, not a guess.
    refused = await client.post(
        "/api/products", json={"name": "x", "price": 1}, headers=bearer(token)
    )
    assert refused.status_code == 503
    assert refused.json() == {"error": "Auth service unavailable"}
